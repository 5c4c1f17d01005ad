import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import {
  createKafkaGateway, decodeLeaseClaim, leaseHolder, leaseMetadata, murmur2, type KafkaGateway, type LeaseClaim, type LeaseOptions,
} from '../../lib/kafka.ts';
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

describe('leaseHolder', () => {
  const claim = (since: number, holding = false): LeaseClaim => ({ owner: 'o', since, holding });
  it('keeps the lease with its holder, else gives it to the earliest claim, member id breaking ties', () => {
    assert.equal(leaseHolder([]), undefined);
    assert.equal(leaseHolder([{ memberId: 'b', claim: claim(1) }, { memberId: 'a', claim: claim(2, true) }]), 'a');
    assert.equal(leaseHolder([{ memberId: 'b', claim: claim(2) }, { memberId: 'c', claim: claim(1) }, { memberId: 'a', claim: claim(3) }]), 'c');
    assert.equal(leaseHolder([{ memberId: 'b', claim: claim(1) }, { memberId: 'a', claim: claim(1) }]), 'a');
    assert.equal(leaseHolder([{ memberId: 'b', claim: claim(5, true) }, { memberId: 'a', claim: claim(9, true) }]), 'b');
  });
});

describe('decodeLeaseClaim', () => {
  const metadata = (userData: Buffer): Buffer => leaseMetadata(['t'], userData);
  it('reads a claim and ranks anything unreadable last instead of failing the group', () => {
    assert.deepEqual(decodeLeaseClaim(metadata(Buffer.from('{"owner":"h:1 x","since":5,"holding":true}'))), { owner: 'h:1 x', since: 5, holding: true });
    for (const bad of [Buffer.from('not json'), Buffer.from('{"owner":1,"since":5,"holding":true}'), Buffer.from('null'), Buffer.alloc(0)]) {
      const decoded = decodeLeaseClaim(metadata(bad));
      assert.equal(decoded.holding, false, bad.toString());
      assert.equal(decoded.since, Number.MAX_SAFE_INTEGER);
    }
    assert.equal(decodeLeaseClaim(Buffer.from([0, 1, 2])).holding, false, 'garbage metadata');
    assert.equal(decodeLeaseClaim(null).holding, false);
    assert.equal(decodeLeaseClaim(metadata(Buffer.from(JSON.stringify({ owner: 'x'.repeat(100_000), since: 1, holding: false })))).owner.length, 200, 'an oversized owner is cut');
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

  it("waits out a SIGKILLed holder's session, then wins", async () => {
    const group = uniqueName('lease');
    const script = `
      const { createKafkaGateway } = await import(${JSON.stringify(new URL('../../lib/kafka.ts', import.meta.url).href)});
      const { createLogger } = await import(${JSON.stringify(new URL('../../lib/logger.ts', import.meta.url).href)});
      const kafka = createKafkaGateway(${JSON.stringify(t.config.kafka)}, createLogger('silent'));
      const attempt = await kafka.acquireLease(${JSON.stringify(options(group, 'doomed'))});
      process.stdout.write('lease' in attempt ? 'held\\n' : 'refused\\n');
      setInterval(() => undefined, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    await waitFor('the child to hold the lease', 30_000, () => (out.includes('held') ? true : undefined));
    const refused = await kafka.acquireLease(options(group, 'early'));
    assert.ok('heldBy' in refused, 'a live holder keeps it');
    assert.match(refused.heldBy, /doomed/);
    child.kill('SIGKILL');
    const started = Date.now();
    const won = await kafka.acquireLease(options(group, 'survivor'));
    assert.ok('lease' in won, 'the dead holder lost it');
    assert.ok(Date.now() - started < 20_000, `won after ${Date.now() - started} ms`);
    await won.lease.release();
  });
});
