/**
 * Once a day (and at start): per account, the store's daily figures beside WeChat's datacube for the last 7 settled
 * China days, with `report churn --check`'s own code, into `wxsync_datacube_disagreeing_days{appid}`. Settled: up to
 * the day before yesterday, which WeChat has for certain and the store has had a day of reconciles to correct. Days
 * up to the first done reconcile are left out: before it the store knows nothing of who followed and left.
 */
import type { ClickHouseClient } from '../lib/clickhouse.ts';
import type { Config } from '../lib/config.ts';
import { ErrorCode, describeError, isWxsyncError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { Gauge, type Registry } from '../lib/metrics.ts';
import { beijingDay, dayDate, type DatacubeSource, type DayRange } from '../lib/wechat/datacube.ts';
import type { ChurnReport } from '../reports/churn.ts';
import { resolveReport, runReport } from '../reports/request.ts';

/** Days compared at most. */
export const CHECKED_DAYS = 7;

/**
 * The settled days to compare at `nowMs`, given when the account's first done reconcile started (undefined: none
 * yet); undefined when none qualifies.
 */
export function settledRange(nowMs: number, firstReconcileMs: number | undefined): DayRange | undefined {
  if (firstReconcileMs === undefined) return undefined;
  const last = beijingDay(Math.floor(nowMs / 1000)) - 2;
  const first = Math.max(last - CHECKED_DAYS + 1, beijingDay(Math.floor(firstReconcileMs / 1000)) + 1);
  return first > last ? undefined : { from: dayDate(first), to: dayDate(last) };
}

export interface DatacubeCheckDeps {
  readonly config: Config;
  readonly clickhouse: ClickHouseClient;
  readonly datacube: (appid: string) => DatacubeSource;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly now?: () => number;
}

async function firstReconcileMs(clickhouse: ClickHouseClient, database: string, appid: string): Promise<number | undefined> {
  const [row] = await (await clickhouse.query({
    query: `SELECT toUnixTimestamp64Milli(min(started_at)) AS first FROM ${database}.reconcile_runs
      WHERE appid = {appid:String} AND status = 'done' AND dry_run = 0 HAVING count() > 0`,
    query_params: { appid },
    format: 'JSONEachRow',
  })).json<{ first: string }>();
  return row === undefined ? undefined : Number(row.first);
}

/** Compares every account's settled days; an account whose figures cannot be had counts 0, with a log line. */
export function createDatacubeCheck(deps: DatacubeCheckDeps): { run(): Promise<void> } {
  const { config, clickhouse, logger } = deps;
  const now = deps.now ?? Date.now;
  const gauge = new Gauge({
    name: 'wxsync_datacube_disagreeing_days',
    help: 'Settled days of the last 7 where the store\'s daily follows, unfollows or followers differ from WeChat\'s datacube (0 when all agree or the datacube is not available)',
    labelNames: ['appid'],
    registers: [deps.registry],
  });
  const check = async (appid: string): Promise<number> => {
    const nowMs = now();
    const range = settledRange(nowMs, await firstReconcileMs(clickhouse, config.clickhouse.database, appid));
    if (range === undefined) return 0;
    const resolved = resolveReport('churn', { appid, ...range, by: 'day', tz: 'Asia/Shanghai', check: true }, config, nowMs);
    const report = await runReport(config, resolved, { clickhouse, datacube: deps.datacube, now }) as ChurnReport;
    const days = report.check === undefined ? 0 : report.check.compared - report.check.equal;
    if (days > 0) {
      const differing = report.check?.days.filter((d) => d.difference !== null && Object.values(d.difference).some((v) => v !== 0)).map((d) => d.day);
      logger.warn({ appid, days: differing }, 'the store\'s daily figures differ from WeChat\'s datacube');
    }
    return days;
  };
  return {
    async run() {
      for (const { appid } of config.accounts) {
        let days = 0;
        try {
          days = await check(appid);
        } catch (error) {
          if (isWxsyncError(error, ErrorCode.WechatAccountUnverified)) logger.info({ appid }, 'no datacube figures for an unverified account: nothing to compare');
          else logger.warn({ appid, reason: describeError(error) }, 'the datacube comparison failed; it is tried again at the next check');
        }
        gauge.set({ appid }, days);
      }
    },
  };
}
