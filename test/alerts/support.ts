import type { Sample, Series } from '../../alerts/rules.ts';

export type Metrics = Readonly<Record<string, readonly Series[]>>;

export function sample(at: number, metrics: Metrics): Sample {
  return { at, metrics: new Map(Object.entries(metrics)) };
}

/** One series of a metric labelled by account. */
export const per = (appid: string, value: number): Series[] => [{ labels: { appid }, value }];
/** One series of an unlabelled metric. */
export const one = (value: number): Series[] => [{ labels: {}, value }];

export const THRESHOLDS = { lostShare: 0.001, lostCount: 100, quotaShare: 0.1, refusedPerMinute: 30 };
