import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../lib/config.ts';
import { KAFKA_VERSION, ensureKafkaJars, startKafka, stopKafka, type KafkaLocalConfig } from '../../lib/kafka-local.ts';
import { silentLogger } from '../../lib/logger.ts';
import { SimHarness } from '../lib/wechat/sim-harness.ts';
import { testEnv, waitFor, type TestEnv } from '../support/env.ts';
import { freePorts } from '../../lib/ports.ts';
import { adminFetch, startRun } from '../support/wxsync.ts';

const logger = silentLogger();

// Issue 12, point 6: WeChat's pushes arrive whether or not the broker is up. `wxsync run` starts with no broker
// answering (this test's own, not yet started), takes pushes into its spool, and once the broker is up
// creates the topics, starts the roles that need Kafka and drains the spool into the store.
describe('wxsync run started while Kafka is down', { timeout: 300_000 }, () => {
  let broker: KafkaLocalConfig;
  let sim: SimHarness;
  let t: TestEnv;
  let port = 0;
  let dir = '';

  before(async () => {
    const shared = loadConfig({}).kafkaLocal;
    const libs = await ensureKafkaJars(shared, logger);
    dir = mkdtempSync(path.join(tmpdir(), 'wxsync-nokafka-'));
    symlinkSync(libs, path.join(dir, `libs-${KAFKA_VERSION}`));
    const [brokerPort, httpPort] = await freePorts(2);
    assert.ok(brokerPort !== undefined && httpPort !== undefined);
    port = httpPort;
    // The controller port is picked when the broker starts (below): only the broker uses it, and a port picked a
    // minute earlier may meanwhile be taken by another test.
    broker = { ...shared, dir, port: brokerPort, controllerPort: 0, heap: '-Xms256m -Xmx512m', startTimeoutMs: 90_000 };
    sim = await SimHarness.start({ followers: [500], mode: 'safe', callbackUrl: `http://127.0.0.1:${port}/wechat` });
    t = testEnv({ PORT: String(port), KAFKA_BROKERS: `127.0.0.1:${brokerPort}`, WXSYNC_CALLBACK_PRODUCE_TIMEOUT_MS: '200' });
    sim.configure(t);
  });
  after(async () => {
    await sim.close();
    await stopKafka(broker, logger);
    t.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers pushes success from its spool, says what works, and loads them all once the broker is up', async () => {
    const running = await startRun(t.env, port, 'callback,consumer,api');
    try {
      const health = async (): Promise<{ status: number; body: { ready: boolean; kafkaReachable: boolean; spoolDepth?: number; roles: Record<string, boolean> } }> => {
        const res = await adminFetch(t.env, '/readyz');
        return { status: res.status, body: await res.json() as never };
      };
      const down = await health();
      assert.equal(down.status, 503);
      assert.deepEqual([down.body.kafkaReachable, down.body.roles['callback'], down.body.roles['consumer']], [false, true, false], JSON.stringify(down.body));

      const appid = sim.account().appid;
      const churn = await sim.admin('POST', `/__sim/accounts/${appid}/churn`, { subscribe: 100, unsubscribe: 50 }) as {
        subscribed: number; unsubscribed: number; failed: number; events: Array<{ openid: string; type: 'subscribe' | 'unsubscribe' }>;
      };
      assert.equal(churn.failed, 0, 'every push answered success while no broker answered');
      const spooled = await health();
      assert.ok((spooled.body.spoolDepth ?? 0) >= 150, `the pushes wait in the spool: ${JSON.stringify(spooled.body)}`);

      const [controllerPort] = await freePorts(1);
      assert.ok(controllerPort !== undefined);
      broker = { ...broker, controllerPort };
      await startKafka(broker, logger);
      await waitFor('the roles to start and the spool to drain into the store', 180_000, async () => {
        const now = await health();
        if (now.status !== 200 || now.body.spoolDepth !== 0) return undefined;
        const metrics = await (await adminFetch(t.env, '/metrics')).text();
        return Number(/^wxsync_consumer_rows_written_total (\d+)/m.exec(metrics)?.[1] ?? 0) >= churn.subscribed + churn.unsubscribed || undefined;
      }, 1000);
      const listed = (await (await adminFetch(t.env, `/api/followers/${appid}`)).text()).split('\n').filter((l) => l !== '');
      const last = new Map<string, string>();
      for (const e of churn.events) last.set(e.openid, e.type);
      const expected = [...last].filter(([, type]) => type === 'subscribe').map(([openid]) => openid).sort();
      assert.deepEqual(listed, expected, 'every push taken while Kafka was down reached the store');
    } finally {
      assert.equal(await running.stop(), 0, `wxsync run stopped cleanly\n${running.stderr()}`);
    }
  });
});
