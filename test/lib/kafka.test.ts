import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import {
  createKafkaGateway, decodeLeaseClaim, KafkaLogLevel as logLevel, kafkaLogLevel, leaseHolder, leaseMetadata, murmur2, topicDurability, toWxsyncError, type KafkaGateway, type LeaseOptions,
} from '../../lib/kafka.ts';
import { ErrorCode } from '../../lib/errors.ts';
import { createLogger } from '../../lib/logger.ts';
import { topicSpecs } from '../../lib/topics.ts';
import { testEnv, uniqueName, waitFor, type TestEnv } from '../support/env.ts';

describe('murmur2', () => {
  it('hashes as the Java client does, so a key lands in the same partition whoever produces it', () => {
    // Apache Kafka's UtilsTest.testMurmur2 vectors.
    const vectors: Array<[string, number]> = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [key, hash] of vectors) assert.equal(murmur2(Buffer.from(key, 'utf8')), hash, key);
  });
});

describe('toWxsyncError', () => {
  const named = (name: string, cause?: Error): Error => Object.assign(new Error(`${name} message`, cause === undefined ? {} : { cause }), { name });

  it('calls a broker that cannot be reached unavailable and retriable, however deep kafkajs wraps it', () => {
    for (const error of [named('KafkaJSConnectionError'), named('KafkaJSNonRetriableError', named('KafkaJSConnectionError')), named('KafkaJSNumberOfRetriesExceeded', named('KafkaJSBrokerNotFound'))]) {
      const mapped = toWxsyncError(error, 'cannot produce to t');
      assert.deepEqual([mapped.code, mapped.retriable], [ErrorCode.KafkaUnavailable, true], error.name);
      assert.equal(mapped.message, `cannot produce to t: ${error.message}`);
    }
  });

  it('keeps any other failure a request failure, retriable only when kafkajs says so', () => {
    const refused = toWxsyncError(named('KafkaJSNonRetriableError', named('KafkaJSProtocolError')), 'cannot create topics');
    assert.deepEqual([refused.code, refused.retriable], [ErrorCode.KafkaRequestFailed, false]);
    const transient = toWxsyncError(Object.assign(named('KafkaJSProtocolError'), { retriable: true }), 'x');
    assert.deepEqual([transient.code, transient.retriable], [ErrorCode.KafkaRequestFailed, true]);
    const loop: Error = named('KafkaJSNonRetriableError');
    (loop as { cause?: unknown }).cause = loop;
    assert.equal(toWxsyncError(loop, 'x').code, ErrorCode.KafkaRequestFailed, 'a cause chain that loops ends');
  });
});

describe('kafkaLogLevel', () => {
  it('hides a broker\'s start-up answers (a coordinator loading, a leader being elected) below info, keeps real trouble a warning', () => {
    const response = (error: string) => kafkaLogLevel(logLevel.ERROR, 'Response GroupCoordinator(key: 10, version: 2)', { broker: '127.0.0.1:9092', error, correlationId: 1 });
    assert.equal(response("The coordinator is loading and hence can't process requests for this group"), 'debug');
    assert.equal(response('The group coordinator is not available'), 'debug');
    assert.equal(response('There is no leader for this topic-partition as we are in the middle of a leadership election'), 'debug');
    assert.equal(response('The request timed out'), 'warn');
    assert.equal(kafkaLogLevel(logLevel.ERROR, 'Connection error: connect ECONNREFUSED 127.0.0.1:9092', {}), 'warn');
    assert.equal(kafkaLogLevel(logLevel.ERROR, 'The coordinator is not aware of this member, re-joining the group', { error: 'The group coordinator is not available' }), 'warn');
    assert.equal(kafkaLogLevel(logLevel.WARN, 'Limiting retries for the idempotent producer may invalidate EoS guarantees', {}), 'debug');
    assert.equal(kafkaLogLevel(logLevel.INFO, 'Starting', {}), 'debug');
    assert.equal(kafkaLogLevel(logLevel.DEBUG, 'Request Metadata', {}), 'trace');
  });
});

describe('leaseHolder', () => {
  const member = (memberId: string, since: number, heldAs?: string) => ({ memberId, claim: { owner: 'o', since, ...(heldAs === undefined ? {} : { heldAs }) } });
  it('keeps the lease with its holder, else gives it to the earliest claim, member id breaking ties', () => {
    assert.equal(leaseHolder([]), undefined);
    assert.equal(leaseHolder([member('b', 1), member('a', 2, 'a')]), 'a');
    assert.equal(leaseHolder([member('b', 2), member('c', 1), member('a', 3)]), 'c');
    assert.equal(leaseHolder([member('b', 1), member('a', 1)]), 'a');
  });

  it('voids the claim of a member that rejoined under a new id (dropped while frozen): the member that took over keeps it', () => {
    assert.equal(leaseHolder([member('zombie-new-id', 1, 'zombie-old-id'), member('successor', 5, 'successor')]), 'successor');
    assert.equal(leaseHolder([member('zombie-new-id', 1, 'zombie-old-id'), member('newcomer', 5)]), 'zombie-new-id', 'with no holder, the earliest claim wins again');
  });
});

describe('decodeLeaseClaim', () => {
  const metadata = (userData: Buffer): Buffer => leaseMetadata(['t'], userData);
  it('reads a claim and ranks anything unreadable last instead of failing the group', () => {
    assert.deepEqual(decodeLeaseClaim(metadata(Buffer.from('{"owner":"h:1 x","since":5,"heldAs":"m-1"}'))), { owner: 'h:1 x', since: 5, heldAs: 'm-1' });
    assert.deepEqual(decodeLeaseClaim(metadata(Buffer.from('{"owner":"h:1 x","since":5,"heldAs":7}'))), { owner: 'h:1 x', since: 5 }, 'a malformed heldAs holds nothing');
    for (const bad of [Buffer.from('not json'), Buffer.from('{"owner":1,"since":5}'), Buffer.from('null'), Buffer.alloc(0)]) {
      const decoded = decodeLeaseClaim(metadata(bad));
      assert.equal(decoded.heldAs, undefined, bad.toString());
      assert.equal(decoded.since, Number.MAX_SAFE_INTEGER);
    }
    assert.equal(decodeLeaseClaim(Buffer.from([0, 1, 2])).since, Number.MAX_SAFE_INTEGER, 'garbage metadata');
    assert.equal(decodeLeaseClaim(null).since, Number.MAX_SAFE_INTEGER);
    assert.equal(decodeLeaseClaim(metadata(Buffer.from(JSON.stringify({ owner: 'x'.repeat(100_000), since: 1 })))).owner.length, 200, 'an oversized owner is cut');
  });
});

describe('Kafka group lease (real broker)', { timeout: 120_000 }, () => {
  let t: TestEnv;
  let kafka: KafkaGateway;
  before(async () => {
    t = testEnv();
    kafka = createKafkaGateway(t.config.kafka, createLogger('silent'));
    await kafka.ensureTopics(topicSpecs(t.config));
  });
  after(async () => {
    await kafka.close();
    t.cleanup();
  });
  const options = (group: string, owner: string): LeaseOptions => ({ group, topic: t.config.kafka.topics.leases, owner, sessionTimeoutMs: 6000 });

  it('gives one of three contenders the lease, refuses the others naming the holder, keeps it through their rebalances, and frees it on release', async () => {
    const group = uniqueName('lease');
    const attempts = await Promise.all(['a', 'b', 'c'].map((owner) => kafka.acquireLease(options(group, `contender ${owner}`))));
    const held = attempts.flatMap((a) => ('lease' in a ? [a.lease] : []));
    assert.equal(held.length, 1, JSON.stringify(attempts.map((a) => ('heldBy' in a ? a.heldBy : 'lease'))));
    const holder = held[0];
    assert.ok(holder);
    for (const a of attempts) if ('heldBy' in a) assert.match(a.heldBy, /:\d+ contender [abc] since \d{4}-/);
    const other = await kafka.acquireLease(options(uniqueName('lease'), 'other account'));
    assert.ok('lease' in other, 'another group is another lease');
    await other.lease.release();
    const late = await kafka.acquireLease(options(group, 'late'));
    assert.ok('heldBy' in late);
    assert.equal(holder.lost.aborted, false, 'the holder kept its lease through every rebalance');
    await holder.release();
    const next = await kafka.acquireLease(options(group, 'next'));
    assert.ok('lease' in next, 'released: the next contender gets it');
    await next.lease.release();
  });

  /** A child process holding the lease of `group`; it prints `held`, then `lost: <reason>` if it loses it. */
  function holderProcess(group: string, owner: string): { child: ReturnType<typeof spawn>; output: () => string } {
    const script = `
      const { createKafkaGateway } = await import(${JSON.stringify(new URL('../../lib/kafka.ts', import.meta.url).href)});
      const { createLogger } = await import(${JSON.stringify(new URL('../../lib/logger.ts', import.meta.url).href)});
      const kafka = createKafkaGateway(${JSON.stringify(t.config.kafka)}, createLogger('silent'));
      const attempt = await kafka.acquireLease(${JSON.stringify(options(group, owner))});
      if (!('lease' in attempt)) { process.stdout.write('refused\\n'); process.exit(1); }
      attempt.lease.lost.addEventListener('abort', () => { process.stdout.write('lost: ' + attempt.lease.lost.reason.code + '\\n'); });
      process.stdout.write('held\\n');
      setInterval(() => undefined, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    return { child, output: () => out };
  }

  it("waits out a SIGKILLed holder's session, then wins", async () => {
    const group = uniqueName('lease');
    const holder = holderProcess(group, 'doomed');
    await waitFor('the child to hold the lease', 30_000, () => (holder.output().includes('held') ? true : undefined));
    const refused = await kafka.acquireLease(options(group, 'early'));
    assert.ok('heldBy' in refused, 'a live holder keeps it');
    assert.match(refused.heldBy, /doomed/);
    holder.child.kill('SIGKILL');
    const started = Date.now();
    const won = await kafka.acquireLease(options(group, 'survivor'));
    assert.ok('lease' in won, 'the dead holder lost it');
    assert.ok(Date.now() - started < 20_000, `won after ${Date.now() - started} ms`);
    await won.lease.release();
  });

  it('tells a holder frozen past its session (a zombie) that it lost the lease, once it runs again', async () => {
    const group = uniqueName('lease');
    const holder = holderProcess(group, 'frozen');
    await waitFor('the child to hold the lease', 30_000, () => (holder.output().includes('held') ? true : undefined));
    holder.child.kill('SIGSTOP');
    try {
      const won = await kafka.acquireLease(options(group, 'successor'));
      assert.ok('lease' in won, 'the frozen holder was dropped after its session timeout');
      holder.child.kill('SIGCONT');
      await waitFor('the old holder to learn it lost the lease', 30_000, () => (/lost: LEASE_LOST/.test(holder.output()) ? true : undefined));
      assert.equal(won.lease.lost.aborted, false, 'the successor keeps it');
      await won.lease.release();
    } finally {
      holder.child.kill('SIGKILL');
    }
  });
});

describe('topicDurability', () => {
  it('gives three replicas and two in sync by default, as many as there are brokers when fewer, and the configured values first', () => {
    assert.deepEqual(topicDurability(0, 0, 1), { replicationFactor: 1, config: {} });
    assert.deepEqual(topicDurability(0, 0, 2), { replicationFactor: 2, config: { 'min.insync.replicas': '1' } });
    assert.deepEqual(topicDurability(0, 0, 5), { replicationFactor: 3, config: { 'min.insync.replicas': '2' } });
    assert.deepEqual(topicDurability(5, 3, 7), { replicationFactor: 5, config: { 'min.insync.replicas': '3' } });
  });
});

describe('consumer group membership (real broker)', { timeout: 120_000 }, () => {
  it('a batch fetched before its partition went to another member is no longer current, and its commit is refused', async () => {
    const t = testEnv({ WXSYNC_EVENTS_PARTITIONS: '2', WXSYNC_SESSION_TIMEOUT_MS: '6000' });
    const kafka = createKafkaGateway(t.config.kafka, createLogger('silent'));
    const topic = t.config.kafka.topics.userEvents;
    try {
      await kafka.ensureTopics(topicSpecs(t.config));
      const producer = await kafka.producer();
      // One record per partition: keys chosen so murmur2 spreads them over both.
      const records = Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: Buffer.from(`v${i}`) }));
      await producer.send(topic, records);
      await producer.close();
      const groupId = uniqueName('revoke');
      const first = await kafka.consumer({ groupId, fromBeginning: true, concurrency: 2, sessionTimeoutMs: 6000 });
      const held: Array<{ partition: number; isCurrent: () => boolean }> = [];
      await first.run([topic], (batch) => {
        held.push({ partition: batch.partition, isCurrent: () => batch.isCurrent() });
        return Promise.resolve();
      });
      await first.joined;
      await waitFor('batches of both partitions', 30_000, () => (new Set(held.map((h) => h.partition)).size === 2 ? true : undefined));
      assert.ok(held.every((h) => h.isCurrent()), 'current while the assignment holds');

      // A second member joins: the group rebalances and one partition moves to it.
      const second = await kafka.consumer({ groupId, fromBeginning: true, concurrency: 2, sessionTimeoutMs: 6000 });
      await second.run([topic], () => Promise.resolve());
      await second.joined;
      await waitFor('the first member to see the rebalance', 30_000, () => (held.every((h) => !h.isCurrent()) ? true : undefined), 100);
      // Both members hold one partition each now: the first may commit the one it kept, never the one it lost.
      const outcomes = await waitFor('the first member to rejoin', 30_000, async () => {
        const tried = await Promise.all([0, 1].map(async (partition) => first.commit(topic, partition, '1').then(() => 'ok', (e: unknown) => (e as Error).message)));
        return tried.filter((o) => o === 'ok').length === 1 ? tried : undefined;
      }, 200);
      assert.match(outcomes.find((o) => o !== 'ok') ?? '', /no longer assigned to this member: not committing 1/);
      await second.close();
      await first.close();
    } finally {
      await kafka.close();
      t.cleanup();
    }
  });
});
