/**
 * Snapshot progress for a person: a redrawn bar on a terminal, plain throttled lines elsewhere (logs and
 * pipes must not fill with carriage returns).
 */
import { MAX_PAGE_OPENIDS } from '../../lib/contracts/snapshot.ts';
import type { Progress } from './runner.ts';

export interface ProgressView {
  /** Pages the crawl will need in all, from the latest total: one per 10,000 plus the end-of-list answer. */
  readonly expectedPages: number;
  readonly rate: number;
  /** Seconds left at the current rate; undefined before a rate is known. */
  readonly etaSeconds: number | undefined;
}

export function viewOf(p: Progress, nowMs: number): ProgressView {
  const expectedPages = Math.max(p.pages, Math.ceil(p.total / MAX_PAGE_OPENIDS) + 1);
  const seconds = (nowMs - p.runStartedAt) / 1000;
  const rate = seconds > 0 ? p.openidsThisRun / seconds : 0;
  const left = Math.max(0, p.total - p.openids);
  return { expectedPages, rate, etaSeconds: rate > 0 ? left / rate : undefined };
}

function eta(seconds: number | undefined): string {
  if (seconds === undefined) return '?';
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export function progressLine(p: Progress, view: ProgressView): string {
  return `${p.appid} ${p.snapshotId}: page ${p.pages}/${view.expectedPages}, ${p.openids.toLocaleString('en-US')}/${p.total.toLocaleString('en-US')} openids, ` +
    `${Math.round(view.rate).toLocaleString('en-US')} openids/s, ETA ${eta(view.etaSeconds)}`;
}

export function progressBar(p: Progress, view: ProgressView, width = 30): string {
  const filled = Math.min(width, Math.round((p.pages / view.expectedPages) * width));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.pages}/${view.expectedPages} pages  ` +
    `${Math.round(view.rate).toLocaleString('en-US')} openids/s  ETA ${eta(view.etaSeconds)}`;
}

export interface ProgressOutput {
  readonly isTTY?: boolean;
  write(chunk: string): boolean;
}

export interface ProgressReporter {
  update(p: Progress): void;
  /** Ends the bar's line so what follows starts on its own. */
  finish(): void;
}

export function progressReporter(out: ProgressOutput, now: () => number = Date.now, plainEveryMs = 2000): ProgressReporter {
  const tty = out.isTTY === true;
  let lastAt = -Infinity;
  let latest: Progress | undefined;
  return {
    update(p) {
      const at = now();
      latest = p;
      if (tty) {
        if (at - lastAt < 100) return;
        lastAt = at;
        out.write(`\r\x1b[2K${progressBar(p, viewOf(p, at))}`);
      } else if (at - lastAt >= plainEveryMs) {
        lastAt = at;
        out.write(`${progressLine(p, viewOf(p, at))}\n`);
      }
    },
    finish() {
      if (tty && latest !== undefined) out.write(`\r\x1b[2K${progressBar(latest, viewOf(latest, now()))}\n`);
    },
  };
}
