import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ComparisonReport, DifferenceRow, SnapshotListing } from '../../producers/reconcile/compare.ts';
import type { Side } from '../../producers/reconcile/compare-plan.ts';
import { SimHarness } from '../lib/wechat/sim-harness.ts';
import { testEnv, waitFor, type TestEnv } from '../support/env.ts';
import { freePorts } from '../../lib/ports.ts';
import { adminFetch, startRun, wxsync as run, type Ran } from '../support/wxsync.ts';

interface ChurnEvent { openid: string; type: 'subscribe' | 'unsubscribe'; dropped: boolean; deliveries: number; scene?: string; eventKey?: string }
interface Truth { readonly explained: boolean; readonly scene: string; readonly campaign: string }

// Issue 13.4's acceptance: between two snapshots with known churn, a third of whose pushes WeChat lost, the comparison
// `wxsync run` records after its reconcile, and `wxsync compare` through its API, find exactly the truth's set
// differences, explained exactly where a push was delivered; with WXSYNC_SNAPSHOT_KEEP=2 the third snapshot's
// reconcile drops the first one's members.
describe('wxsync run: snapshot comparisons equal the truth', { timeout: 600_000 }, () => {
  let t: TestEnv;
  let sim: SimHarness;
  let port: number;
  const wxsync = (args: readonly string[]): Promise<Ran> => run(t.env, args);

  before(async () => {
    [port = 0] = await freePorts(1);
    sim = await SimHarness.start({ followers: [20_000], mode: 'safe', callbackUrl: `http://127.0.0.1:${port}/wechat` });
    t = testEnv({
      PORT: String(port),
      WXSYNC_RECONCILE_WINDOW_MARGIN_S: '1',
      WXSYNC_RECONCILE_GRACE_S: '1',
      WXSYNC_RECONCILE_POLL_S: '1',
      WXSYNC_SNAPSHOT_KEEP: '2',
    });
    sim.configure(t);
  });
  after(async () => {
    await sim.close();
    t.cleanup();
  });

  it('added and removed equal the truth\'s set differences; explained and unexplained the delivered and the dropped pushes', async () => {
    const appid = sim.account().appid;
    const snapshot = async (): Promise<string> => {
      const ran = await wxsync(['snapshot', appid, '--json']);
      assert.equal(ran.code, 0, ran.stderr);
      return (JSON.parse(ran.stdout) as { snapshotId: string }).snapshotId;
    };
    const listing = async (): Promise<SnapshotListing> => (await (await adminFetch(t.env, `/api/snapshots/${appid}`)).json()) as SnapshotListing;
    /** Until the reconcile role has reconciled the snapshot and recorded what follows a reconcile. */
    const reconciled = (snapshotId: string, comparison: boolean): Promise<SnapshotListing> => waitFor(`the reconcile of ${snapshotId}`, 240_000, async () => {
      const now = await listing();
      const entry = now.snapshots.find((s) => s.snapshotId === snapshotId);
      return entry?.reconcile?.status === 'done' && (!comparison || entry.comparison !== null) ? now : undefined;
    }, 500);

    const running = await startRun(t.env, port, 'callback,consumer,reconcile,api');
    try {
      const first = await snapshot();
      await reconciled(first, false);
      const before = new Set(await sim.followers());

      const churn = await sim.admin('POST', `/__sim/accounts/${appid}/churn`, { subscribe: 3000, unsubscribe: 2000, dropRate: 0.3 }) as { failed: number; dropped: number; events: ChurnEvent[] };
      assert.equal(churn.failed, 0, 'every push sent was answered success');
      assert.ok(churn.dropped > 1000, `about 30% of 5,000 pushes lost: ${churn.dropped}`);
      // Older than T0 − δ of the next snapshot, so the reconcile takes the churn as before it.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const second = await snapshot();
      const after = new Set(await sim.followers());

      // The truth: the set differences, and for each the pushes of its kind (a user may follow, leave and come back).
      const truth = new Map<Side, Map<string, Truth>>([['added', new Map()], ['removed', new Map()]]);
      const follows = new Map<string, number>();
      for (const e of churn.events) if (e.type === 'subscribe') follows.set(e.openid, (follows.get(e.openid) ?? 0) + 1);
      for (const openid of after) if (!before.has(openid)) truth.get('added')?.set(openid, { explained: false, scene: '', campaign: '' });
      for (const openid of before) if (!after.has(openid)) truth.get('removed')?.set(openid, { explained: false, scene: '', campaign: '' });
      for (const e of churn.events) {
        const side: Side = e.type === 'subscribe' ? 'added' : 'removed';
        const known = truth.get(side)?.get(e.openid);
        if (known === undefined) continue;
        const delivered = !e.dropped && e.deliveries > 0;
        const campaign = e.eventKey?.replace(/^qrscene_/, '') ?? '';
        truth.get(side)?.set(e.openid, side === 'added'
          ? { explained: known.explained || delivered, scene: e.scene ?? '', campaign }
          : { ...known, explained: known.explained || delivered });
      }
      const count = (side: Side, explained: boolean): number => [...truth.get(side)?.values() ?? []].filter((v) => v.explained === explained).length;
      assert.ok(count('added', false) > 0 && count('removed', false) > 0 && count('added', true) > 0, 'both kinds on both sides');

      const recorded = await reconciled(second, true);
      const report = JSON.parse((await wxsync(['compare', appid, '--format', 'jsonl'])).stdout) as ComparisonReport;
      assert.deepEqual([report.from.snapshotId, report.to.snapshotId], [first, second]);
      assert.deepEqual(report.added, { total: truth.get('added')?.size, explained: count('added', true), unexplained: count('added', false) });
      assert.deepEqual(report.removed, { total: truth.get('removed')?.size, explained: count('removed', true), unexplained: count('removed', false) });
      assert.equal(report.unexplainedShare, (count('added', false) + count('removed', false)) / (report.added.total + report.removed.total));
      const entry = recorded.snapshots.find((s) => s.snapshotId === second);
      assert.deepEqual(entry?.comparison && { ...entry.comparison, computedAt: '' }, {
        fromSnapshotId: first, added: report.added.total, addedUnexplained: report.added.unexplained, removed: report.removed.total,
        removedUnexplained: report.removed.unexplained, unexplainedShare: report.unexplainedShare, computedAt: '',
      }, 'the comparison recorded after the reconcile is the one computed now');

      for (const side of ['added', 'removed'] as const) {
        const listed = await wxsync(['compare', appid, '--list', side, '--format', 'jsonl']);
        assert.equal(listed.code, 0, listed.stderr);
        const rows = listed.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as DifferenceRow);
        const expected = truth.get(side) ?? new Map<string, Truth>();
        assert.deepEqual(rows.map((r) => r.openid), [...expected.keys()].sort(), `${side}: the truth's set difference, in openid order`);
        const wrong = rows.filter((r) => r.explained !== expected.get(r.openid)?.explained);
        assert.deepEqual(wrong, [], `${side}: explained exactly where a push was delivered`);
        if (side === 'added') {
          // The subscribe that brought each (users who followed once in the churn; a user who came back has several): a
          // delivered callback names only a QR code, a correction carries batchget's scene.
          const scenes = rows.filter((r) => follows.get(r.openid) === 1).filter((r) => r.campaign !== expected.get(r.openid)?.campaign
            || r.scene !== (r.explained ? (expected.get(r.openid)?.campaign === '' ? '' : 'ADD_SCENE_QR_CODE') : expected.get(r.openid)?.scene));
          assert.deepEqual(scenes, [], 'added: the scene and campaign of the follow');
        }
      }

      // A third snapshot: with two kept, its reconcile drops the first one's members.
      const third = await snapshot();
      await reconciled(third, true);
      // Retention runs after the comparison is recorded, so the listing may show the comparison a moment before the drop.
      const last = await waitFor(`retention of ${first}`, 60_000, async () => {
        const now = await listing();
        return now.snapshots.find((s) => s.snapshotId === first)?.data === 'dropped' ? now : undefined;
      }, 500);
      assert.deepEqual(last.snapshots.map((s) => [s.snapshotId, s.data, s.comparison?.fromSnapshotId ?? null]), [
        [first, 'dropped', null], [second, 'kept', first], [third, 'kept', second],
      ]);
      const dropped = await wxsync(['compare', appid, '--from', first]);
      assert.equal(dropped.code, 1);
      assert.match(dropped.stderr, new RegExp(`^wxsync: SNAPSHOT_UNAVAILABLE: snapshot ${first} of ${appid} was dropped by retention`));
      assert.equal(dropped.stdout, '');
      const table = await wxsync(['snapshots', appid]);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, new RegExp(`\\n${first} .* complete +dropped +done, 20,000 corrections `));
    } finally {
      assert.equal(await running.stop(), 0, `wxsync run stopped cleanly on SIGTERM\n${running.stderr()}`);
    }
  });
});
