import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClickHouse } from '../../lib/clickhouse.ts';
import { readAdminEndpoint } from '../../lib/admin.ts';
import { loadConfig } from '../../lib/config.ts';
import { SimHarness } from '../lib/wechat/sim-harness.ts';
import { testEnv, waitFor, type TestEnv } from '../support/env.ts';
import { freePorts } from '../../lib/ports.ts';
import { adminFetch, startRun } from '../support/wxsync.ts';

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
    const running = await startRun(t.env, port, 'callback,consumer,api');
    try {
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
        const metrics = await (await adminFetch(t.env, '/metrics')).text();
        const written = Number(/^wxsync_consumer_rows_written_total (\d+)/m.exec(metrics)?.[1] ?? 0);
        return written >= events ? true : undefined;
      }, 200);

      // The public port answers WeChat's route and bare probes, and nothing else, to anyone.
      const open = async (path: string, method = 'GET'): Promise<[number, string]> => {
        const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
        return [res.status, await res.text()];
      };
      assert.deepEqual(await open('/healthz'), [200, '']);
      assert.deepEqual(await open('/readyz'), [200, '']);
      for (const path of ['/metrics', `/api/followers/${appid}`, '/api/followers/wxnobody', '/api/snapshot/x', '/']) assert.deepEqual(await open(path), [404, ''], path);
      assert.deepEqual(await open(`/api/snapshot/${appid}`, 'POST'), [404, '']);
      assert.deepEqual(await open(`/api/reconcile/${appid}?dryRun=1`, 'POST'), [404, '']);
      // The admin listener: nothing without the token, whatever the path; everything with it.
      const admin = loadConfig(t.env).http.admin;
      const endpoint = readAdminEndpoint(admin);
      assert.ok(endpoint);
      assert.equal(endpoint.host, '127.0.0.1', 'bound to loopback by default');
      for (const path of ['/metrics', `/api/followers/${appid}`, '/api/followers/wxnobody', '/nothing']) {
        const res = await fetch(`http://127.0.0.1:${endpoint.port}${path}`, { headers: { authorization: 'Bearer wrong' } });
        assert.equal(res.status, 401, path);
        assert.doesNotMatch(await res.text(), /wx|follower|openid/, 'a refusal tells nothing about accounts');
      }
      assert.equal((await adminFetch(t.env, `/api/followers/${appid}`)).status, 200);
      assert.equal((await adminFetch(t.env, '/readyz')).status, 200);
    } finally {
      assert.equal(await running.stop(), 0, `wxsync run stopped cleanly on SIGTERM\n${running.stderr()}`);
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
