import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packageRoot } from '../../lib/config.ts';
import type { CampaignsReport } from '../../reports/campaigns.ts';
import type { ChurnReport } from '../../reports/churn.ts';
import { Rng } from '../../sim/random.ts';
import { SimHarness } from '../lib/wechat/sim-harness.ts';
import { testEnv, waitFor, type TestEnv } from '../support/env.ts';
import { freePorts } from '../../lib/ports.ts';
import { startRun, wxsync } from '../support/wxsync.ts';

// Issue 13's acceptance: 30 simulated days through the simulator, Kafka and ClickHouse, 20% of pushes lost. Each
// day at 10:00 (China time) users follow through two QR campaigns and other scenes, some followers leave and some
// former ones come back; at 23:50 the day's snapshot is taken and reconciled. The simulator's ledger of every change
// is the truth the reports are checked against. Each user changes at most once a day: a follow and an unfollow both
// lost between two snapshots leave no trace anywhere but WeChat (`--check` shows such days as a difference).

interface LedgerLine {
  readonly openid: string;
  readonly type: 'subscribe' | 'unsubscribe';
  readonly at: number;
  readonly qrScene: string | null;
  readonly push: string;
}

const DAYS = 30;
const DAY = 86_400;
const chinaDay = (unixSeconds: number): number => Math.floor((unixSeconds + 8 * 3600) / DAY);
const dateOf = (day: number): string => new Date(day * DAY * 1000).toISOString().slice(0, 10);
/** Unix seconds of a China day's midnight. */
const midnight = (day: number): number => day * DAY - 8 * 3600;

interface DayFigures { follows: number; firstFollows: number; returningFollows: number; unfollows: number }
const zero = (): DayFigures => ({ follows: 0, firstFollows: 0, returningFollows: 0, unfollows: 0 });

describe('30 simulated days of churn: reports equal the simulator\'s ledger', { timeout: 1_200_000 }, () => {
  let t: TestEnv;
  let sim: SimHarness;
  let port = 0;
  let clockFile = '';

  before(async () => {
    [port = 0] = await freePorts(1);
    sim = await SimHarness.start({ followers: [300], mode: 'safe', callbackUrl: `http://127.0.0.1:${port}/wechat`, dropRate: 0.2 });
    t = testEnv({ PORT: String(port), WXSYNC_RECONCILE_GRACE_S: '1', WXSYNC_RECONCILE_POLL_S: '1' });
    clockFile = path.join(t.dataDir, 'clock-offset-ms');
    writeFileSync(clockFile, '0');
    t.env['NODE_OPTIONS'] = `--import ${path.join(packageRoot, 'test', 'support', 'shifted-clock.js')}`;
    t.env['WXSYNC_TEST_CLOCK_FILE'] = clockFile;
    sim.configure(t);
  });
  after(async () => {
    await sim.close();
    t.cleanup();
  });

  /** Moves the simulator's clock and wxsync's together to a Unix time (forward only). */
  async function moveTo(unixSeconds: number): Promise<void> {
    const clock = await sim.admin('GET', '/__sim/clock') as { nowMs: number };
    const moved = await sim.admin('POST', '/__sim/clock', { advanceSeconds: Math.max(0, unixSeconds - clock.nowMs / 1000) }) as { offsetSeconds: number };
    writeFileSync(clockFile, String(Math.round(moved.offsetSeconds * 1000)));
  }

  async function ok(args: string[]): Promise<string> {
    const ran = await wxsync(t.env, args);
    assert.equal(ran.code, 0, `wxsync ${args.join(' ')}: ${ran.stderr}`);
    return ran.stdout;
  }

  it('report churn by day and campaign, --check and report campaigns agree with the ledger', async () => {
    const running = await startRun(t.env, port, 'callback,consumer,snapshot,reconcile,api');
    const appid = sim.account().appid;
    const rng = new Rng(13);
    try {
      // The store learns the followers the account had before: one snapshot and its reconcile.
      const initial = new Set(await sim.followers());
      await ok(['snapshot', appid]);
      await ok(['reconcile', appid]);

      const firstDay = chinaDay(Date.now() / 1000) + 1;
      const following = new Set(initial);
      const left = new Set<string>();
      const snapshotDay = new Map<number, number>();
      for (let d = 0; d < DAYS; d += 1) {
        const day = firstDay + d;
        await moveTo(midnight(day) + 10 * 3600);
        const leaving = [...following].sort().filter(() => rng.chance(0.04)).slice(0, 12);
        const returning = [...left].sort().filter(() => rng.chance(0.3)).slice(0, 3);
        for (const request of [
          { subscribe: 6, qrScene: 'campA', resubscribeRate: 0 },
          { subscribe: 4, qrScene: 'campB', resubscribeRate: 0 },
          { subscribe: 5, qrRate: 0, resubscribeRate: 0 },
          { subscribe: 0, unsubscribe: 0, unsubscribeOpenids: leaving, resubscribeOpenids: returning },
        ]) {
          const churn = await sim.admin('POST', `/__sim/accounts/${appid}/churn`, request) as { events: { openid: string; type: string }[] };
          for (const e of churn.events) {
            if (e.type === 'subscribe') { following.add(e.openid); left.delete(e.openid); } else { following.delete(e.openid); left.add(e.openid); }
          }
        }
        await moveTo(midnight(day) + 23 * 3600 + 50 * 60);
        snapshotDay.set(day, midnight(day) + 23 * 3600 + 50 * 60);
        if (d === DAYS - 1) {
          // Before the day's reconcile the store misses exactly the day's lost pushes.
          const ledger = await readLedger(appid);
          const today = ledger.filter((l) => chinaDay(l.at) === day);
          const delivered = today.filter((l) => l.push === 'delivered');
          assert.ok(delivered.length < today.length, 'some of the day\'s pushes were lost');
          await waitFor('the day\'s delivered pushes in the report', 120_000, async () => {
            const report = JSON.parse(await ok(['report', 'churn', appid, '--from', dateOf(day), '--to', dateOf(day), '--fresh', '--format', 'json'])) as ChurnReport;
            const [period] = report.periods;
            return period?.follows === delivered.filter((l) => l.type === 'subscribe').length
              && period.unfollows === delivered.filter((l) => l.type === 'unsubscribe').length ? true : undefined;
          }, 500);
        }
        await ok(['snapshot', appid]);
        const reconciled = JSON.parse(await ok(['reconcile', appid, '--json'])) as { status: string };
        assert.equal(reconciled.status, 'done');
      }

      // The ledger's daily figures per campaign; every follow after the first of a user is a return.
      const ledger = await readLedger(appid);
      const expected = new Map<string, DayFigures>();
      const followersEnd = new Map<number, number>();
      const followedBefore = new Set(initial);
      const now = new Set(initial);
      for (const line of ledger) {
        const key = `${dateOf(chinaDay(line.at))} ${line.qrScene ?? ''}`;
        const figures = expected.get(key) ?? zero();
        expected.set(key, figures);
        if (line.type === 'subscribe') {
          figures.follows += 1;
          if (followedBefore.has(line.openid)) figures.returningFollows += 1;
          else figures.firstFollows += 1;
          followedBefore.add(line.openid);
          now.add(line.openid);
        } else {
          figures.unfollows += 1;
          now.delete(line.openid);
        }
        followersEnd.set(chinaDay(line.at), now.size);
      }
      assert.ok(ledger.some((l) => l.push === 'dropped'), 'pushes were lost');

      const report = await waitFor('the last reconcile\'s corrections in the report', 120_000, async () => {
        const got = JSON.parse(await ok(['report', 'churn', appid, '--days', String(DAYS), '--by', 'day', '--split', 'campaign', '--fresh', '--format', 'json'])) as ChurnReport;
        return got.total.followersEnd === following.size ? got : undefined;
      }, 1000);
      assert.equal(report.from, dateOf(firstDay));
      const got = new Map<string, DayFigures>();
      for (const split of report.splits) {
        for (const p of split.periods) {
          if (p.follows + p.unfollows === 0) continue;
          got.set(`${p.period} ${split.key}`, { follows: p.follows, firstFollows: p.firstFollows, returningFollows: p.returningFollows, unfollows: p.unfollows });
        }
      }
      assert.deepEqual(Object.fromEntries([...got].sort()), Object.fromEntries([...expected].sort()));
      assert.deepEqual(report.periods.map((p) => p.followersEnd), Array.from({ length: DAYS }, (_, d) => followersEnd.get(firstDay + d)));
      assert.ok(report.total.recoveredFollows + report.total.recoveredUnfollows > 0, 'lost pushes were recovered');

      // WeChat's datacube, once the last day is over (after 08:00 the next morning).
      await moveTo(midnight(firstDay + DAYS) + 9 * 3600);
      const checked = JSON.parse(await ok(['report', 'churn', appid, '--from', dateOf(firstDay), '--to', dateOf(firstDay + DAYS - 1), '--check', '--format', 'json'])) as ChurnReport;
      assert.deepEqual([checked.check?.compared, checked.check?.equal], [DAYS, DAYS], JSON.stringify(checked.check?.days.filter((c) => c.difference?.follows !== 0 || c.difference.unfollows !== 0 || c.difference.followers !== 0)));

      // Campaigns: each QR campaign's first follows and how long they lasted. A lost unfollow is dated at the start
      // of the snapshot that found it; times count whole seconds crossed, as ClickHouse's dateDiff does.
      const campaigns = JSON.parse(await ok(['report', 'campaigns', appid, '--fresh', '--format', 'json'])) as CampaignsReport;
      const reportNow = Date.parse(campaigns.asOf);
      const snapshotStarts = (await ok(['snapshots', appid, '--format', 'jsonl'])).trim().split('\n')
        .map((l) => JSON.parse(l) as { startedAt: number | string })
        .map((s) => (typeof s.startedAt === 'number' ? s.startedAt : Date.parse(s.startedAt)));
      const lostAt = (at: number): number => {
        const start = snapshotStarts.filter((s) => s >= at * 1000).sort((a, b) => a - b)[0];
        assert.ok(start !== undefined && chinaDay(start / 1000) === chinaDay(at), `the snapshot after ${at} is the same day's`);
        return start;
      };
      for (const campaign of ['campA', 'campB']) {
        const spells: { from: number; to: number | undefined }[] = [];
        const open = new Map<string, { from: number; to: number | undefined }>();
        const seen = new Set(initial);
        for (const line of ledger) {
          if (line.type === 'subscribe') {
            if (line.qrScene === campaign && !seen.has(line.openid)) {
              const spell = { from: line.at * 1000, to: undefined };
              spells.push(spell);
              open.set(line.openid, spell);
            }
            seen.add(line.openid);
          } else {
            const spell = open.get(line.openid);
            if (spell !== undefined) spell.to = line.push === 'delivered' ? line.at * 1000 : lostAt(line.at);
            open.delete(line.openid);
          }
        }
        const seconds = (s: { from: number; to: number | undefined }): number => Math.floor((s.to ?? 0) / 1000) - Math.floor(s.from / 1000);
        const ended = spells.filter((s) => s.to !== undefined).map(seconds).sort((a, b) => a - b);
        const median = ended.length === 0 ? null : ((ended[Math.floor((ended.length - 1) / 2)] ?? 0) + (ended[Math.ceil((ended.length - 1) / 2)] ?? 0)) / 2;
        const retention = [1, 7, 30, 90].map((days) => {
          const eligible = spells.filter((s) => s.from <= reportNow - days * DAY * 1000);
          const stayed = eligible.filter((s) => s.to === undefined || seconds(s) >= days * DAY).length;
          return { days, eligible: eligible.length, stayed, share: eligible.length === 0 ? null : stayed / eligible.length };
        });
        const lost = spells.filter((s) => s.from <= reportNow - DAY * 1000 && s.to !== undefined && seconds(s) < DAY).length;
        const figures = campaigns.campaigns.find((c) => c.campaign === campaign);
        assert.deepEqual(figures, {
          campaign, brought: spells.length, stillFollowing: spells.filter((s) => s.to === undefined).length, retention,
          lostWithin24h: lost, lostWithin24hShare: retention[0]?.eligible === 0 ? null : lost / (retention[0]?.eligible ?? 1), medianSecondsToUnfollow: median,
        }, campaign);
      }
    } finally {
      assert.equal(await running.stop(), 0, `wxsync run stopped cleanly\n${running.stderr()}`);
    }
  });

  async function readLedger(appid: string): Promise<LedgerLine[]> {
    const res = await fetch(`${sim.apiBase}/__sim/accounts/${appid}/ledger`);
    return (await res.text()).trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LedgerLine);
  }
});
