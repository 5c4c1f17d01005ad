import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { progressReporter, viewOf } from '../../../producers/snapshot/progress.ts';
import type { Progress } from '../../../producers/snapshot/runner.ts';

const p: Progress = { appid: 'wxa', snapshotId: 's1', pages: 2, openids: 20_000, total: 25_001, pagesThisRun: 2, openidsThisRun: 20_000, runStartedAt: 0 };

describe('snapshot progress', () => {
  it('derives rate and ETA', () => {
    const view = viewOf(p, 2000);
    assert.equal(view.expectedPages, 4);
    assert.equal(view.rate, 10_000);
    assert.ok(Math.abs((view.etaSeconds ?? 0) - 0.5001) < 1e-9);
  });

  it('redraws a bar on a terminal and writes plain throttled lines elsewhere', () => {
    let clock = 1000;
    const tty: string[] = [];
    const bar = progressReporter({ isTTY: true, write: (s) => { tty.push(s); return true; } }, () => clock);
    bar.update(p);
    bar.finish();
    assert.ok(tty[0]?.startsWith('\r\x1b[2K'));
    assert.match(tty[0] ?? '', /\[#+\.+\] 2\/4 pages {2}20,000 openids\/s {2}ETA 0s$/);
    assert.ok(tty.at(-1)?.endsWith('\n'));
    const plain: string[] = [];
    const lines = progressReporter({ write: (s) => { plain.push(s); return true; } }, () => clock, 2000);
    lines.update(p);
    clock += 500;
    lines.update(p);
    clock += 2000;
    lines.update(p);
    lines.finish();
    assert.equal(plain.length, 2);
    assert.ok(plain.every((l) => !l.includes('\r') && l.endsWith('\n')));
    assert.match(plain[0] ?? '', /wxa s1: page 2\/4, 20,000\/25,001 openids/);
  });
});
