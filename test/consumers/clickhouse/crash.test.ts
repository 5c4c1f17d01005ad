import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { topicSpecs } from '../../../lib/topics.ts';
import { createClickHouse } from '../../../lib/clickhouse.ts';
import { packageRoot } from '../../../lib/config.ts';
import { createKafkaGateway, type KafkaGateway } from '../../../lib/kafka.ts';
import { createLogger } from '../../../lib/logger.ts';
import { T0, callbackEvent, caughtUp, eventRecord, openidOf, produceAll } from '../../support/events.ts';
import { testEnv, waitFor, type TestEnv } from '../../support/env.ts';

const APPID = 'wxcrash000000001';
const BIN = path.join(packageRoot, 'bin', 'wxsync.js');

function runConsumer(env: Record<string, string>): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, 'run', '--roles', 'consumer'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-8000); });
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      if (code !== 0 && code !== null) process.stderr.write(`consumer exited ${code}:\n${stderr}\n`);
      resolve(code);
    });
  });
  return { child, exited };
}

async function committedTotal(kafka: KafkaGateway, groupId: string, topic: string): Promise<bigint> {
  let total = 0n;
  for (const offset of (await kafka.committedOffsets(groupId, topic)).values()) if (offset !== '-1') total += BigInt(offset);
  return total;
}

describe('the consumer process killed with SIGKILL mid-stream', { timeout: 240_000 }, () => {
  let t: TestEnv;
  let kafka: KafkaGateway;
  const users = 10_000;

  before(async () => {
    t = testEnv({ WXSYNC_BATCH_MAX_ROWS: '1000', WXSYNC_BATCH_MAX_MS: '100', WXSYNC_LOG_LEVEL: 'warn', WXSYNC_SESSION_TIMEOUT_MS: '6000' });
    kafka = createKafkaGateway(t.config.kafka, createLogger('warn'));
    await kafka.ensureTopics(topicSpecs(t.config));
  });
  after(async () => {
    await kafka.close();
    t.cleanup();
  });

  it('ends, after a restart, at the same state as an uninterrupted run', async () => {
    const { topics } = t.config.kafka;
    const groupId = t.config.consumer.groupId;
    const events = [];
    for (let u = 0; u < users; u += 1) {
      events.push(callbackEvent(APPID, openidOf(u), 'subscribe', T0 / 1000 + u));
      if (u % 3 === 0) events.push(callbackEvent(APPID, openidOf(u), 'unsubscribe', T0 / 1000 + u + 50_000));
    }
    await produceAll(kafka, topics.userEvents, events.map(eventRecord));

    const first = runConsumer(t.env);
    await waitFor('the first consumer to commit part of the stream', 60_000, async () => (await committedTotal(kafka, groupId, topics.userEvents)) > 0n || undefined, 50);
    first.child.kill('SIGKILL');
    await first.exited;
    const atKill = await committedTotal(kafka, groupId, topics.userEvents);
    assert.ok(atKill < BigInt(events.length), `killed mid-stream (${atKill} of ${events.length} committed)`);

    const second = runConsumer(t.env);
    await waitFor('the restarted consumer to catch up', 120_000, async () => (await caughtUp(kafka, groupId, [topics.userEvents])) || undefined, 250);
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0, 'a SIGTERM stops the consumer cleanly');

    const clickhouse = createClickHouse(t.config.clickhouse);
    try {
      const db = t.config.clickhouse.database;
      const result = await clickhouse.query({
        query: `SELECT countIf(subscribed) AS n_subscribed, countIf(NOT subscribed) AS n_unsubscribed, count() AS users FROM ${db}.followers_current`,
        format: 'JSONEachRow',
      });
      const [state] = await result.json<{ n_subscribed: string; n_unsubscribed: string; users: string }>();
      const unsubscribed = Math.ceil(users / 3);
      assert.deepEqual(state, { n_subscribed: String(users - unsubscribed), n_unsubscribed: String(unsubscribed), users: String(users) });
      const ids = await clickhouse.query({ query: `SELECT count() AS n, uniqExact(id) AS ids FROM ${db}.user_events FINAL`, format: 'JSONEachRow' });
      assert.deepEqual(await ids.json(), [{ n: String(events.length), ids: String(events.length) }]);
    } finally {
      await clickhouse.close();
    }
  });
});
