import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createClickHouse } from '../../lib/clickhouse.ts';
import { packageRoot } from '../../lib/config.ts';
import { SimHarness } from '../lib/wechat/sim-harness.ts';
import { testEnv, waitFor, type TestEnv } from '../support/env.ts';
import { freePorts } from '../support/ports.ts';

const BIN = path.join(packageRoot, 'bin', 'wxsync.js');

// The main job end to end: the simulator pushes safe-mode callbacks (some twice) to `wxsync run`, whose
// callback role publishes them to Kafka and whose consumer role loads them into the embedded store.
describe('wxsync run: simulator pushes through Kafka into ClickHouse', { timeout: 180_000 }, () => {
  let t: TestEnv;
  let sim: SimHarness;
  let port: number;

  before(async () => {
    [port = 0] = await freePorts(1);
    sim = await SimHarness.start({ followers: [2000], mode: 'safe', callbackUrl: `http://127.0.0.1:${port}/wechat`, dupRate: 0.2 });
    t = testEnv({ PORT: String(port) });
    sim.configure(t);
  });
  after(async () => {
    await sim.close();
    t.cleanup();
  });

  it('ends with every user who had an event in the same state as the simulator\'s truth', async () => {
    const child = spawn(process.execPath, [BIN, 'run', '--roles', 'callback,consumer'], { env: { ...process.env, ...t.env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-8000); });
    const exited = once(child, 'exit');
    try {
      await waitFor('wxsync run to be ready', 60_000, async () => {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
        return res?.status === 200 ? true : undefined;
      }, 200);
      const appid = sim.account().appid;
      let events = 0;
      for (let round = 0; round < 4; round += 1) {
        const res = await fetch(`${sim.apiBase}/__sim/accounts/${appid}/churn`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ subscribe: 200, unsubscribe: 150 }),
        });
        const churn = await res.json() as { subscribed: number; unsubscribed: number; failed: number };
        assert.equal(churn.failed, 0, 'every push was answered success');
        events += churn.subscribed + churn.unsubscribed;
      }
      await waitFor('every event in the store', 60_000, async () => {
        const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        const written = Number(/^wxsync_consumer_rows_written_total (\d+)/m.exec(metrics)?.[1] ?? 0);
        return written >= events ? true : undefined;
      }, 200);
    } finally {
      child.kill('SIGTERM');
      const [code] = await exited as [number | null];
      assert.equal(code, 0, `wxsync run stopped cleanly on SIGTERM\n${stderr}`);
    }

    const truth = new Set(await sim.followers());
    const clickhouse = createClickHouse(t.config.clickhouse);
    try {
      const db = t.config.clickhouse.database;
      const rows = await (await clickhouse.query({
        query: `SELECT openid, subscribed FROM ${db}.followers_current WHERE appid = {appid:String}`,
        query_params: { appid: sim.account().appid },
        format: 'JSONEachRow',
      })).json<{ openid: string; subscribed: number }>();
      assert.ok(rows.length > 500, `${rows.length} users had events`);
      const wrong = rows.filter((row) => Boolean(row.subscribed) !== truth.has(row.openid)).map((row) => row.openid);
      assert.deepEqual(wrong, []);
      const [ids] = await (await clickhouse.query({ query: `SELECT count() AS n, uniqExact(id) AS ids FROM ${db}.user_events FINAL`, format: 'JSONEachRow' }))
        .json<{ n: string; ids: string }>();
      assert.equal(ids?.n, ids?.ids, 'no event twice, though 20% of pushes were delivered twice');
    } finally {
      await clickhouse.close();
    }
  });
});
