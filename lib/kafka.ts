/**
 * The Kafka adapter: the only module that imports kafkajs. Everything else sees the small record-level
 * interfaces below, so the client library can be swapped without touching producers or consumers.
 */
import {
  Kafka,
  Partitioners,
  logLevel as KafkaLogLevel,
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type ICustomPartitioner,
  type LogEntry,
  type Producer,
} from 'kafkajs';
import type { Config } from './config.ts';
import { ErrorCode, WxsyncError } from './errors.ts';
import type { Logger } from './logger.ts';

export interface OutRecord {
  readonly key: string | null;
  readonly value: Buffer;
}

export interface InRecord {
  readonly topic: string;
  readonly partition: number;
  /** Kafka offsets are int64: kept as the decimal string Kafka gives. */
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly timestamp: string;
}

export interface InBatch {
  readonly topic: string;
  readonly partition: number;
  readonly records: readonly InRecord[];
  /** Keeps the group membership alive while a handler waits (a flush retrying against a down store). */
  heartbeat(): Promise<void>;
  /** False once the consumer is stopping or the partition was revoked: the batch must not be committed. */
  isCurrent(): boolean;
}

export interface TopicSpec {
  readonly topic: string;
  readonly partitions: number;
  readonly config?: Readonly<Record<string, string>>;
}

export interface RecordProducer {
  /** Resolves once every record is acknowledged by all in-sync replicas. */
  send(topic: string, records: readonly OutRecord[]): Promise<void>;
  close(): Promise<void>;
}

export interface RecordConsumer {
  /**
   * Runs `onBatch` for every fetched batch. The handler owns acknowledgement: it calls `commit` once the
   * records are durably stored; nothing is ever committed on its behalf.
   */
  run(topics: readonly string[], onBatch: (batch: InBatch) => Promise<void>): Promise<void>;
  /** Stops fetching (graceful shutdown): what is queued can be written and committed before close. */
  pause(topics: readonly string[]): void;
  /** Commits "everything before `nextOffset`" for one partition. */
  commit(topic: string, partition: number, nextOffset: string): Promise<void>;
  close(): Promise<void>;
  /** Resolves when the group has assigned partitions to this member at least once. */
  readonly joined: Promise<void>;
}

export interface ConsumerOptions {
  readonly groupId: string;
  readonly fromBeginning: boolean;
  /** How many partitions' batches may be in a handler at once. */
  readonly concurrency: number;
  readonly maxBytesPerPartition?: number;
  readonly sessionTimeoutMs?: number;
}

export interface KafkaGateway {
  ensureTopics(specs: readonly TopicSpec[]): Promise<void>;
  producer(): Promise<RecordProducer>;
  consumer(options: ConsumerOptions): Promise<RecordConsumer>;
  /** The high watermark (next offset) of every partition of a topic. */
  endOffsets(topic: string): Promise<Map<number, string>>;
  /** The committed offset of every partition of a topic for a group ('-1' when none). */
  committedOffsets(groupId: string, topic: string): Promise<Map<number, string>>;
  /** Reads every record of a topic from the beginning up to its current end (tests, tools). */
  readAll(topic: string, timeoutMs: number): Promise<InRecord[]>;
  close(): Promise<void>;
}

function toWxsyncError(error: unknown, what: string): WxsyncError {
  if (error instanceof WxsyncError) return error;
  const retriable = typeof error === 'object' && error !== null && (error as { retriable?: unknown }).retriable === true;
  const name = error instanceof Error ? error.name : 'Error';
  const code = name === 'KafkaJSConnectionError' || name === 'KafkaJSNumberOfRetriesExceeded' || name === 'KafkaJSBrokerNotFound'
    ? ErrorCode.KafkaUnavailable
    : ErrorCode.KafkaRequestFailed;
  const message = error instanceof Error ? error.message : String(error);
  return new WxsyncError(code, `${what}: ${message}`, { retriable: retriable || code === ErrorCode.KafkaUnavailable, cause: error });
}

function kafkaLogCreator(logger: Logger) {
  const log = logger.child({ component: 'kafkajs' });
  // kafkajs logs retried, self-healing conditions (coordinator loading, leader moves) at ERROR;
  // they are warnings from wxsync's point of view. Its INFO chatter is debug.
  return () => ({ level, log: entry }: LogEntry): void => {
    const { message, ...fields } = entry;
    // wxsync bounds producer retries on purpose (a send must fail in bounded time so the caller can retry
    // the whole set or spool it) and deduplicates by event id, so this start-up warning is expected.
    if (message.startsWith('Limiting retries for the idempotent producer')) log.debug(fields, message);
    else if (level <= KafkaLogLevel.WARN) log.warn(fields, message);
    else if (level === KafkaLogLevel.INFO) log.debug(fields, message);
    else log.trace(fields, message);
  };
}

/** Kafka's murmur2 (the Java client's key hash), in 32-bit integer arithmetic. */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995;
  let h = 0x9747b28c ^ data.length;
  const whole = data.length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = (data[i] ?? 0) | ((data[i + 1] ?? 0) << 8) | ((data[i + 2] ?? 0) << 16) | ((data[i + 3] ?? 0) << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const rest = data.length & 3;
  if (rest === 3) h ^= (data[whole + 2] ?? 0) << 16;
  if (rest >= 2) h ^= (data[whole + 1] ?? 0) << 8;
  if (rest >= 1) h = Math.imul(h ^ (data[whole] ?? 0), m);
  h ^= h >>> 13;
  h = Math.imul(h, m);
  return h ^ (h >>> 15);
}

/**
 * kafkajs's default partitioner, with the same partition for every key, but murmur2 computed as above:
 * kafkajs computes it with 64-bit Long objects, some 4 µs and dozens of allocations per keyed record, more
 * than the rest of encoding a produce call. Unkeyed records, and ones naming a partition, go to kafkajs's.
 */
const keyHashPartitioner: ICustomPartitioner = () => {
  const kafkajsPartitioner = Partitioners.DefaultPartitioner();
  return (args) => {
    const { key, partition } = args.message;
    if (partition !== undefined || key === undefined || key === null) return kafkajsPartitioner(args);
    return (murmur2(typeof key === 'string' ? Buffer.from(key, 'utf8') : key) & 0x7fffffff) % args.partitionMetadata.length;
  };
};

export function createKafkaGateway(config: Config['kafka'], logger: Logger, clientSuffix = ''): KafkaGateway {
  const kafka = new Kafka({
    clientId: `${config.clientId}${clientSuffix}`,
    brokers: [...config.brokers],
    logLevel: KafkaLogLevel.INFO,
    logCreator: kafkaLogCreator(logger),
    connectionTimeout: 3000,
    requestTimeout: 30000,
    retry: { initialRetryTime: 100, retries: 8, maxRetryTime: 5000 },
  });
  let admin: Admin | undefined;
  const closers = new Set<() => Promise<void>>();

  async function getAdmin(): Promise<Admin> {
    if (admin === undefined) {
      const created = kafka.admin();
      try {
        await created.connect();
      } catch (error) {
        throw toWxsyncError(error, 'cannot connect to Kafka');
      }
      admin = created;
    }
    return admin;
  }

  return {
    async ensureTopics(specs) {
      const a = await getAdmin();
      try {
        const existing = new Set(await a.listTopics());
        const missing = specs.filter((s) => !existing.has(s.topic));
        if (missing.length > 0) {
          await a.createTopics({
            waitForLeaders: true,
            topics: missing.map((s) => ({
              topic: s.topic,
              numPartitions: s.partitions,
              replicationFactor: -1,
              configEntries: Object.entries(s.config ?? {}).map(([name, value]) => ({ name, value })),
            })),
          });
        }
      } catch (error) {
        // Another process creating the same topic at the same moment is success, not failure.
        if ((error as { type?: unknown }).type === 'TOPIC_ALREADY_EXISTS') return;
        throw toWxsyncError(error, 'cannot create topics');
      }
    },

    async producer() {
      const producer: Producer = kafka.producer({
        idempotent: true,
        // kafkajs cannot re-sequence more than one in-flight request of an idempotent producer.
        maxInFlightRequests: 1,
        createPartitioner: keyHashPartitioner,
      });
      try {
        await producer.connect();
      } catch (error) {
        throw toWxsyncError(error, 'cannot connect the Kafka producer');
      }
      const close = async (): Promise<void> => {
        closers.delete(close);
        await producer.disconnect();
      };
      closers.add(close);
      return {
        async send(topic, records) {
          if (records.length === 0) return;
          try {
            await producer.send({ topic, acks: -1, messages: records.map((r) => ({ key: r.key, value: r.value })) });
          } catch (error) {
            throw toWxsyncError(error, `cannot produce to ${topic}`);
          }
        },
        close,
      };
    },

    async consumer(options) {
      const consumer: Consumer = kafka.consumer({
        groupId: options.groupId,
        sessionTimeout: options.sessionTimeoutMs ?? 30_000,
        heartbeatInterval: Math.min(3000, Math.floor((options.sessionTimeoutMs ?? 30_000) / 3)),
        maxBytesPerPartition: options.maxBytesPerPartition ?? 8 * 1024 * 1024,
        maxBytes: 64 * 1024 * 1024,
        maxWaitTimeInMs: 200,
        retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 10_000 },
      });
      let markJoined: () => void = () => undefined;
      const joined = new Promise<void>((resolve) => { markJoined = resolve; });
      consumer.on(consumer.events.GROUP_JOIN, () => { markJoined(); });
      try {
        await consumer.connect();
      } catch (error) {
        throw toWxsyncError(error, 'cannot connect the Kafka consumer');
      }
      let stopping = false;
      const close = async (): Promise<void> => {
        closers.delete(close);
        stopping = true;
        await consumer.disconnect();
      };
      closers.add(close);
      return {
        joined,
        async run(topics, onBatch) {
          for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: options.fromBeginning });
          await consumer.run({
            autoCommit: false,
            eachBatchAutoResolve: false,
            partitionsConsumedConcurrently: options.concurrency,
            eachBatch: async (payload: EachBatchPayload) => {
              const { batch } = payload;
              if (batch.messages.length === 0) return;
              const records: InRecord[] = batch.messages.map((m) => ({
                topic: batch.topic,
                partition: batch.partition,
                offset: m.offset,
                key: m.key,
                value: m.value,
                timestamp: m.timestamp,
              }));
              await onBatch({
                topic: batch.topic,
                partition: batch.partition,
                records,
                heartbeat: () => payload.heartbeat(),
                isCurrent: () => !stopping && payload.isRunning() && !payload.isStale(),
              });
              // Moves the fetch position only; the commit that makes progress durable is the handler's.
              payload.resolveOffset(batch.lastOffset());
            },
          });
        },
        pause(topics) {
          consumer.pause(topics.map((topic) => ({ topic })));
        },
        async commit(topic, partition, nextOffset) {
          try {
            await consumer.commitOffsets([{ topic, partition, offset: nextOffset }]);
          } catch (error) {
            throw toWxsyncError(error, `cannot commit ${topic}[${partition}]@${nextOffset}`);
          }
        },
        close,
      };
    },

    async endOffsets(topic) {
      const a = await getAdmin();
      const offsets = await a.fetchTopicOffsets(topic);
      return new Map(offsets.map((o) => [o.partition, o.high]));
    },

    async committedOffsets(groupId, topic) {
      const a = await getAdmin();
      const [entry] = await a.fetchOffsets({ groupId, topics: [topic] });
      return new Map((entry?.partitions ?? []).map((p) => [p.partition, p.offset]));
    },

    async readAll(topic, timeoutMs) {
      const ends = await this.endOffsets(topic);
      const remaining = new Map([...ends].filter(([, high]) => high !== '0'));
      const records: InRecord[] = [];
      if (remaining.size === 0) return records;
      const reader = kafka.consumer({ groupId: `wxsync-reader-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}` });
      await reader.connect();
      try {
        await reader.subscribe({ topic, fromBeginning: true });
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => { reject(new WxsyncError(ErrorCode.KafkaRequestFailed, `reading ${topic} timed out after ${timeoutMs} ms`)); }, timeoutMs);
          reader.run({
            eachMessage: ({ partition, message }) => {
              records.push({ topic, partition, offset: message.offset, key: message.key, value: message.value, timestamp: message.timestamp });
              const high = remaining.get(partition);
              if (high !== undefined && BigInt(message.offset) + 1n >= BigInt(high)) remaining.delete(partition);
              if (remaining.size === 0) { clearTimeout(timer); resolve(); }
              return Promise.resolve();
            },
          }).catch((error: unknown) => { clearTimeout(timer); reject(toWxsyncError(error, `cannot read ${topic}`)); });
        });
      } finally {
        await reader.disconnect();
      }
      return records;
    },

    async close() {
      for (const close of [...closers]) await close();
      if (admin !== undefined) await admin.disconnect();
      admin = undefined;
    },
  };
}
