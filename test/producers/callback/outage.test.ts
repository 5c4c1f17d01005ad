import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../../lib/config.ts';
import { callbackEventId } from '../../../lib/contracts/event-id.ts';
import { KAFKA_VERSION, ensureKafkaJars, startKafka, stopKafka, type KafkaLocalConfig } from '../../../lib/kafka-local.ts';
import { silentLogger } from '../../../lib/logger.ts';
import { decodeEncodingAESKey } from '../../../lib/wechat/crypto.ts';
import { buildPushRequest, type PushEvent, type PushTarget } from '../../../sim/push.ts';
import { openidOf } from '../../support/events.ts';
import { testEnv, waitFor, type TestEnv } from '../../support/env.ts';
import { SimHarness } from '../../lib/wechat/sim-harness.ts';
import { ADMIN_TOKEN, eventsIn, metric, startCallback, writeAccounts } from './harness.ts';
import { freePorts } from '../../../lib/ports.ts';

const logger = silentLogger();

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function post(url: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, text }); });
    });
    req.setTimeout(5000, () => { req.destroy(new Error('no answer within 5 s')); });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Kafka outages against this test's OWN broker (free ports, temp dir, jars linked from the project cache);
 * the shared broker on 9092 is never touched.
 */
describe('callback role across Kafka outages', { timeout: 600_000 }, () => {
  let broker: KafkaLocalConfig;
  let sim: SimHarness;
  const dirs: string[] = [];
  const envs: TestEnv[] = [];

  before(async () => {
    const shared = loadConfig({}).kafkaLocal;
    const libs = await ensureKafkaJars(shared, logger);
    const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-callback-kafka-'));
    dirs.push(dir);
    symlinkSync(libs, path.join(dir, `libs-${KAFKA_VERSION}`));
    const [port, controllerPort] = await freePorts(2);
    assert.ok(port !== undefined && controllerPort !== undefined);
    broker = { ...shared, dir, port, controllerPort, heap: '-Xms256m -Xmx512m', startTimeoutMs: 90_000 };
    await startKafka(broker, logger);
    sim = await SimHarness.start({ accounts: 1, followers: [10] });
  });

  after(async () => {
    agent.destroy();
    await sim.close();
    await stopKafka(broker, logger);
    for (const env of envs) env.cleanup();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  function environment(): TestEnv {
    const probe = testEnv();
    envs.push(probe);
    const env = testEnv({
      KAFKA_BROKERS: `127.0.0.1:${broker.port}`,
      WXSYNC_EVENTS_PARTITIONS: '4',
      WXSYNC_ACCOUNTS: writeAccounts(probe.dataDir, sim.sim.ready.accounts),
      WXSYNC_CALLBACK_PRODUCE_TIMEOUT_MS: '500',
    });
    envs.push(env);
    return env;
  }

  function pushes(base: string, count: number, from: number): { event: PushEvent; url: string; body: string }[] {
    const account = sim.account(0);
    const target: PushTarget = {
      url: `${base}/wechat/${account.appid}`, mode: 'safe', appid: account.appid, token: account.token,
      aesKey: decodeEncodingAESKey(account.encodingAESKey), originalId: account.originalId,
    };
    const createTime = Math.floor(Date.now() / 1000);
    return Array.from({ length: count }, (_, i) => {
      const event: PushEvent = { type: 'subscribe', openid: openidOf(from + i), createTime };
      const request = buildPushRequest(target, event, String(createTime), String(1000 + i));
      return { event, ...request };
    });
  }

  async function sendAll(requests: readonly { url: string; body: string }[], concurrency: number, onProgress: (done: number) => void = () => undefined): Promise<number[]> {
    const statuses: number[] = [];
    let next = 0;
    let done = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < requests.length; i = next++) {
        const request = requests[i];
        if (request === undefined) break;
        const res = await post(request.url, request.body);
        statuses[i] = res.status === 200 && res.text === 'success' ? 200 : res.status;
        onProgress(++done);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return statuses;
  }

  it('answers all of 10k callbacks while the broker stops and starts, and Kafka then holds each once', async () => {
    const env = environment();
    const callback = await startCallback(env.env);
    const topic = callback.config.kafka.topics.userEvents;
    try {
      const requests = pushes(callback.base, 10_000, 0);
      let outage: Promise<void> | undefined;
      const statuses = await sendAll(requests, 32, (done) => {
        if (done === 2000) {
          outage = (async () => {
            await stopKafka(broker, logger);
            await new Promise((resolve) => setTimeout(resolve, 3000));
            await startKafka(broker, logger);
          })();
        }
      });
      await outage;
      const failed = statuses.filter((s) => s !== 200);
      assert.equal(failed.length, 0, `${failed.length} callbacks not answered success, e.g. ${failed.slice(0, 5).join(', ')}`);
      const spooled = await metric(callback.registry, 'wxsync_callback_spooled_total');
      assert.ok(spooled > 0, 'the outage spooled nothing: the test did not exercise the spool');
      await waitFor('the spool to drain', 180_000, async () => (await metric(callback.registry, 'wxsync_callback_spool_depth') === 0 ? true : undefined), 500);
      const events = await eventsIn(callback.kafka, topic);
      const ids = events.map((e) => e.id);
      const account = sim.account(0);
      const expected = new Set(requests.map((r) => callbackEventId(account.appid, r.event.openid, r.event.createTime, 'subscribe')));
      const present = new Set(ids);
      for (const id of expected) assert.ok(present.has(id), `event ${id} is missing`);
      assert.equal(new Set(ids).size, expected.size);
      assert.equal(ids.length, expected.size, `${ids.length - expected.size} duplicate records (${spooled} spooled)`);
    } finally {
      await callback.stop();
    }
  });

  it('drains after a SIGKILL with a non-empty spool: nothing is lost', async () => {
    const env = environment();
    const serve = fileURLToPath(new URL('fixtures/serve.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', serve, JSON.stringify(env.env)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let restarted: Awaited<ReturnType<typeof startCallback>> | undefined;
    try {
      const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
      const served = JSON.parse(line) as { port: number; admin: string };
      const base = `http://127.0.0.1:${served.port}`;
      const warm = pushes(base, 10, 20_000);
      assert.ok((await sendAll(warm, 4)).every((s) => s === 200));
      await stopKafka(broker, logger);
      const requests = pushes(base, 500, 30_000);
      assert.ok((await sendAll(requests, 16)).every((s) => s === 200), 'a callback was not answered success while Kafka was down');
      const depth = Number(/^wxsync_callback_spool_depth (\d+)$/m.exec(await (await fetch(`${served.admin}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text())?.[1]);
      assert.ok(depth >= 500, `spool depth ${depth}`);
      child.kill('SIGKILL');
      await once(child, 'exit');
      await startKafka(broker, logger);
      restarted = await startCallback(env.env);
      const callback = restarted;
      await waitFor('the restarted role to drain the spool', 120_000, async () => (await metric(callback.registry, 'wxsync_callback_spool_depth') === 0 ? true : undefined), 500);
      const ids = new Set((await eventsIn(callback.kafka, callback.config.kafka.topics.userEvents)).map((e) => e.id));
      const account = sim.account(0);
      for (const r of [...warm, ...requests]) {
        assert.ok(ids.has(callbackEventId(account.appid, r.event.openid, r.event.createTime, 'subscribe')), `${r.event.openid} was lost`);
      }
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await restarted?.stop();
    }
  });
});
