import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OutRecord, RecordProducer } from '../../../lib/kafka.ts';
import { BatchPublisher, sendBytes } from '../../../producers/snapshot/publisher.ts';
import { waitFor } from '../../support/env.ts';

/** A producer whose sends wait until the test settles them, in order. */
class HeldProducer implements RecordProducer {
  readonly sends: { readonly values: string[]; readonly settle: (error?: Error) => void }[] = [];
  inFlight = 0;
  maxInFlight = 0;

  send(_topic: string, records: readonly OutRecord[]): Promise<void> {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise<void>((resolve, reject) => {
      this.sends.push({
        values: records.map((r) => r.value.toString()),
        settle: (error) => {
          this.inFlight -= 1;
          if (error === undefined) resolve();
          else reject(error);
        },
      });
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const record = (value: string, size = 10): OutRecord => ({ key: 'k', value: Buffer.from(value.padEnd(size, '.')) });

function publisher(producer: RecordProducer, maxSendBytes: number) {
  const acked: string[][] = [];
  const p = new BatchPublisher<string>({ producer, topic: 't', maxSendBytes, onAcked: (items) => { acked.push([...items]); } });
  return { p, acked };
}

describe('BatchPublisher', () => {
  it('keeps one send in flight, and the next carries everything queued meanwhile, acknowledged in order', async () => {
    const producer = new HeldProducer();
    const { p, acked } = publisher(producer, 1024 * 1024);
    await p.publish('a', record('a'));
    await p.publish('b', record('b'));
    await p.publish('c', record('c'));
    assert.equal(producer.sends.length, 1, 'b and c wait for a');
    producer.sends[0]?.settle();
    await waitFor('the second send', 1000, () => producer.sends[1], 1);
    assert.deepEqual(producer.sends.map((s) => s.values.map((v) => v[0])), [['a'], ['b', 'c']]);
    producer.sends[1]?.settle();
    await p.drain();
    assert.deepEqual(acked, [['a'], ['b', 'c']]);
    assert.equal(producer.maxInFlight, 1);
  });

  it('never lets a send exceed its byte budget, but sends a larger record alone', async () => {
    const producer = new HeldProducer();
    const one = sendBytes(record('x', 3000));
    // The budget holds two of these records with their framing, not three.
    const { p, acked } = publisher(producer, 1024 + 2 * one + 10);
    // Not awaited one by one: the queue fills up, and the last ones wait for the sends.
    const items = ['a', 'b', 'c', 'd', 'e', 'f'];
    const queued = Promise.all([p.publish('big', record('big', 10_000)), ...items.map((item) => p.publish(item, record(item, 3000)))]);
    for (let i = 0; acked.flat().length < items.length + 1; i += 1) {
      await waitFor(`send ${i}`, 1000, () => producer.sends[i], 1);
      producer.sends[i]?.settle();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await queued;
    await p.drain();
    assert.deepEqual(acked.flat(), ['big', ...items], 'every record, in order');
    assert.deepEqual(acked[0], ['big']);
    assert.ok(acked.slice(1).every((batch) => batch.length <= 2), JSON.stringify(acked));
    assert.ok(acked.some((batch) => batch.length === 2), JSON.stringify(acked));
  });

  it('makes publish wait while two sends worth of records are pending', async () => {
    const producer = new HeldProducer();
    const { p } = publisher(producer, 1024 + sendBytes(record('x', 5000)));
    await p.publish('a', record('a', 5000));
    await p.publish('b', record('b', 5000));
    let admitted = false;
    const third = p.publish('c', record('c', 5000)).then(() => { admitted = true; });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(admitted, false);
    producer.sends[0]?.settle();
    await third;
    assert.equal(admitted, true);
    await waitFor('the second send', 1000, () => producer.sends[1], 1);
    producer.sends[1]?.settle();
    await waitFor('the third send', 1000, () => producer.sends[2], 1);
    producer.sends[2]?.settle();
    await p.drain();
  });

  it('after a failed send, acknowledges nothing more, sends nothing queued, and rejects publish and drain with the error', async () => {
    const producer = new HeldProducer();
    const { p, acked } = publisher(producer, 1024 * 1024);
    await p.publish('a', record('a'));
    await p.publish('b', record('b'));
    await p.publish('c', record('c'));
    producer.sends[0]?.settle();
    await waitFor('the second send', 1000, () => producer.sends[1], 1);
    producer.sends[1]?.settle(new Error('broker down'));
    await assert.rejects(p.drain(), /broker down/);
    await assert.rejects(p.publish('d', record('d')), /broker down/);
    assert.deepEqual(acked, [['a']]);
    assert.equal(producer.sends.length, 2, 'c and d are never sent');
  });

  it('treats a failing acknowledgement handler as a failure of the run', async () => {
    const producer = new HeldProducer();
    const p = new BatchPublisher<string>({ producer, topic: 't', maxSendBytes: 1 << 20, onAcked: () => { throw new Error('disk full'); } });
    await p.publish('a', record('a'));
    producer.sends[0]?.settle();
    await assert.rejects(p.drain(), /disk full/);
  });
});
