import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeSnapshotRecord, type SnapshotRecord } from '../../../lib/contracts/snapshot.ts';
import type { OutRecord, RecordProducer } from '../../../lib/kafka.ts';
import { createLogger } from '../../../lib/logger.ts';
import { WechatClients } from '../../../lib/wechat/client.ts';
import { StateStore } from '../../../producers/snapshot/checkpoint.ts';
import { clickhouseKnownOpenids } from '../../../producers/snapshot/enrich.ts';
import { snapshotLeases } from '../../../producers/snapshot/main.ts';
import { runSnapshot, type SnapshotDeps, type SnapshotResult } from '../../../producers/snapshot/runner.ts';
import { waitFor } from '../../support/env.ts';
import { FAST_RETRY } from '../../lib/wechat/sim-harness.ts';
import { loadedStatus, members, rows, snapshotHarness, type SnapshotHarness } from './support.ts';

const USER_GET = '/cgi-bin/user/get';

async function deps(h: SnapshotHarness, clients: WechatClients, withEnrichment: boolean): Promise<SnapshotDeps> {
  const { config } = h.t;
  return {
    source: clients.get(h.sim.account().appid),
    producer: await h.kafka.producer(),
    topics: config.kafka.topics,
    state: new StateStore(config.snapshot.dir),
    lease: snapshotLeases(h.kafka, config, 'runner test'),
    settings: config.snapshot,
    logger: createLogger(config.logLevel),
    ...(withEnrichment && h.clickhouse !== undefined ? { known: clickhouseKnownOpenids(h.clickhouse, config.clickhouse.database) } : {}),
  };
}

function done(result: SnapshotResult): Extract<SnapshotResult, { status: 'complete' | 'incomplete' }> {
  assert.ok(result.status === 'complete' || result.status === 'incomplete', JSON.stringify(result));
  return result;
}

describe('snapshot runner against the simulator, Kafka and chDB', { timeout: 240_000 }, () => {
  let h: SnapshotHarness;
  let clients: WechatClients;
  before(async () => {
    h = await snapshotHarness({ followers: [25_001] }, true);
    clients = new WechatClients({ apiBase: h.sim.apiBase, accounts: h.t.config.accounts, logger: createLogger('silent'), retry: FAST_RETRY });
  });
  after(async () => {
    clients.close();
    await h.close();
  });

  it('25,001 followers: one complete snapshot equal to the truth, in 4 user/get calls, with profiles of unknown openids', async () => {
    const d = await deps(h, clients, true);
    const result = done(await runSnapshot(h.sim.account().appid, d));
    await d.producer.close();
    assert.equal(result.status, 'complete');
    assert.equal(result.calls, 4);
    assert.equal((await h.sim.calls(0, USER_GET)).calls, 4);
    assert.equal(result.profiles, 25_001, 'the store knew nobody yet');
    const status = await loadedStatus(h, result.snapshotId);
    assert.ok(Boolean(status.complete));
    assert.equal(status.pages, 4);
    assert.deepEqual(await members(h, result.snapshotId), (await h.sim.followers()).sort());
    const db = h.t.config.clickhouse.database;
    const client = h.clickhouse;
    assert.ok(client);
    const profiles = await waitFor('every profile to be loaded', 60_000, async () => {
      const [row] = await rows<{ n: string; timed: string }>(client,
        `SELECT count() AS n, countIf(subscribe_time > 0) AS timed FROM ${db}.user_profiles FINAL`);
      return Number(row?.n) === 25_001 ? row : undefined;
    }, 250);
    assert.equal(Number(profiles.timed), 25_001);
  });

  it('enriches only openids the store does not know', async () => {
    await h.sim.admin('POST', `/__sim/accounts/${h.sim.account().appid}/churn`, { subscribe: 7, unsubscribe: 0 });
    const d = await deps(h, clients, true);
    const result = done(await runSnapshot(h.sim.account().appid, d));
    await d.producer.close();
    assert.equal(result.status, 'complete');
    assert.equal(result.profiles, 7);
  });

  it('two runs for one account at once, sharing nothing but the broker (as on two machines): only one runs', async () => {
    const a = await deps(h, clients, false);
    const b = { ...await deps(h, clients, false), state: new StateStore(path.join(h.t.dataDir, 'other-machine')) };
    // Slow pages keep the first run holding the lease while the second joins, however loaded the machine is:
    // otherwise the first may finish and release it before the second asks, and both run, one after the other.
    await h.sim.faults(0, { latencyMs: 1500 });
    const results = await Promise.all([runSnapshot(h.sim.account().appid, a), runSnapshot(h.sim.account().appid, b)])
      .finally(() => h.sim.faults(0, { latencyMs: 0 }));
    await a.producer.close();
    await b.producer.close();
    assert.deepEqual(results.map((r) => r.status).sort(), ['busy', 'complete']);
    const busy = results.find((r) => r.status === 'busy');
    assert.match(busy?.reason ?? '', /already running \(.+:\d+ runner test since \d{4}-/, 'the refusal names the holder');
  });

  it('45009 midway: the snapshot ends incomplete with that reason', async () => {
    await h.sim.faults(0, { failNext: [{ api: USER_GET, errcode: 45009, after: 1, count: 1 }] });
    const d = await deps(h, clients, false);
    const result = done(await runSnapshot(h.sim.account().appid, d));
    await d.producer.close();
    assert.equal(result.status, 'incomplete');
    assert.equal(result.pages, 1);
    assert.match(result.reason ?? '', /WECHAT_QUOTA_EXHAUSTED/);
    const status = await loadedStatus(h, result.snapshotId);
    assert.ok(!status.complete);
    assert.match(status.reason, /WECHAT_QUOTA_EXHAUSTED/);
    assert.equal(await new StateStore(h.t.config.snapshot.dir).readCheckpoint(h.sim.account().appid), undefined, 'nothing is left to resume');
  });

  it('refuses to start a snapshot the remaining quota cannot finish', async () => {
    await h.sim.faults(0, { quotaRemaining: 3 });
    await h.sim.resetStats(0);
    const d = await deps(h, clients, false);
    const result = await runSnapshot(h.sim.account().appid, d);
    await d.producer.close();
    assert.ok(result.status === 'refused');
    assert.match(result.reason, /need 4 user\/get calls.*only 3 left today/);
    assert.equal((await h.sim.calls(0, USER_GET)).calls, 0);
    await h.sim.faults(0, { clearQuota: true });
  });

  it('churn while paging: the snapshot still completes', async () => {
    await h.sim.faults(0, { latencyMs: 150 });
    const d = await deps(h, clients, false);
    const running = runSnapshot(h.sim.account().appid, d);
    await h.sim.admin('POST', `/__sim/accounts/${h.sim.account().appid}/churn`, { subscribe: 300, unsubscribe: 300 });
    const result = done(await running);
    await d.producer.close();
    await h.sim.faults(0, { latencyMs: 0 });
    assert.equal(result.status, 'complete');
    const status = await loadedStatus(h, result.snapshotId);
    assert.ok(Boolean(status.complete));
    const records = (await h.kafka.readAll(h.t.config.kafka.topics.snapshots, 30_000))
      .map((r) => decodeSnapshotRecord(r.value)).filter((r) => r.snapshotId === result.snapshotId);
    assert.deepEqual(records.map((r) => r.kind === 'page' ? r.page : r.kind), ['begin', 0, 1, 2, 3, 'end'], 'one snapshot, in order, one key');
  });
});

/**
 * Stands in for Kafka: records what is sent and lets a test decide when (and whether) each send of pages
 * is acknowledged. Other records are acknowledged at once.
 */
class GatedProducer implements RecordProducer {
  readonly sent: SnapshotRecord[][] = [];
  private readonly gates: ((error?: Error) => void)[] = [];
  private pageSends = 0;

  constructor(private readonly gate: (pageSend: number) => 'hold' | 'ack' | 'fail') {}

  async send(_topic: string, records: readonly OutRecord[]): Promise<void> {
    const decoded = records.map((r) => decodeSnapshotRecord(r.value));
    if (decoded.some((r) => r.kind === 'page')) {
      const decision = this.gate(this.pageSends);
      this.pageSends += 1;
      if (decision === 'fail') throw new Error('broker down');
      if (decision === 'hold') await new Promise<void>((resolve, reject) => { this.gates.push((e) => { if (e === undefined) resolve(); else reject(e); }); });
    }
    this.sent.push(decoded);
  }

  release(): void {
    for (const open of this.gates.splice(0)) open();
  }

  pages(): number[] {
    return this.sent.flat().flatMap((r) => (r.kind === 'page' ? [r.page] : []));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

describe('snapshot runner pipeline: fetching ahead of Kafka, checkpointing behind it', { timeout: 120_000 }, () => {
  let h: SnapshotHarness;
  let clients: WechatClients;
  before(async () => {
    // 45,000 followers: pages 0-4 and the empty end-of-list page 5.
    h = await snapshotHarness({ followers: [45_000] }, false);
    clients = new WechatClients({ apiBase: h.sim.apiBase, accounts: h.t.config.accounts, logger: createLogger('silent'), retry: FAST_RETRY });
  });
  after(async () => {
    clients.close();
    await h.close();
  });

  const run = async (producer: RecordProducer): Promise<SnapshotResult> => runSnapshot(h.sim.account().appid, { ...(await deps(h, clients, false)), producer });
  const checkpointPage = async (): Promise<number | undefined> => (await new StateStore(h.t.config.snapshot.dir).readCheckpoint(h.sim.account().appid))?.page;

  it('fetches the next pages while a send waits, checkpoints nothing unacknowledged, then sends what queued in one go', async () => {
    await h.sim.resetStats(0);
    const producer = new GatedProducer((n) => (n === 0 ? 'hold' : 'ack'));
    const running = run(producer);
    await waitFor('pages fetched ahead of the held send', 30_000, async () => ((await h.sim.calls(0, USER_GET)).calls >= 4 ? true : undefined), 10);
    assert.equal(await checkpointPage(), 0, 'page 0 is not acknowledged yet');
    assert.deepEqual(producer.pages(), []);
    producer.release();
    const result = done(await running);
    assert.equal(result.status, 'complete');
    assert.equal(result.pages, 6);
    assert.deepEqual(producer.pages(), [0, 1, 2, 3, 4, 5], 'every page once, in order');
    assert.ok(producer.sent.some((send) => send.filter((r) => r.kind === 'page').length > 1), 'pages queued during the held send went out together');
    assert.deepEqual(producer.sent.flat().map((r) => r.kind).filter((k) => k !== 'page'), ['begin', 'end']);
    assert.equal(await checkpointPage(), undefined, 'a finished snapshot leaves nothing to resume');
  });

  it('Kafka failing mid-run: the checkpoint holds exactly the acknowledged pages, and a new run finishes the same snapshot from there', async () => {
    await h.sim.resetStats(0);
    const failing = new GatedProducer((n) => (n === 0 ? 'hold' : 'fail'));
    const running = run(failing);
    await waitFor('pages fetched ahead of the held send', 30_000, async () => ((await h.sim.calls(0, USER_GET)).calls >= 3 ? true : undefined), 10);
    failing.release();
    await assert.rejects(running, /broker down/);
    assert.deepEqual(failing.pages(), [0]);
    assert.equal(await checkpointPage(), 1, 'page 0 was acknowledged, nothing after it');

    await h.sim.resetStats(0);
    const producer = new GatedProducer(() => 'ack');
    const result = done(await run(producer));
    assert.equal(result.status, 'complete');
    assert.equal(result.resumedFrom, 1);
    assert.equal(result.snapshotId, failing.sent[0]?.[0]?.snapshotId, 'the same snapshot');
    assert.equal((await h.sim.calls(0, USER_GET)).calls, 5, 'page 0 was not fetched again');
    assert.deepEqual(producer.pages(), [1, 2, 3, 4, 5]);
  });
});
