/**
 * The Kafka adapter: the only module that imports kafkajs. Everything else sees the small record-level
 * interfaces below, so the client library can be swapped without touching producers or consumers.
 */
import {
  AssignerProtocol,
  Kafka,
  Partitioners,
  logLevel as KafkaLogLevel,
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type ICustomPartitioner,
  type LogEntry,
  type PartitionAssigner,
  type Producer,
} from 'kafkajs';
import { hostname } from 'node:os';
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

/**
 * Replicas and min.insync.replicas of a topic wxsync creates: the configured values, else three replicas (as
 * many as there are brokers when fewer) and one in-sync replica fewer than that (at most two), so an acks=all
 * write survives the loss of a broker. A single broker gets neither setting.
 */
export function topicDurability(replicationFactor: number, minInsyncReplicas: number, brokers: number): { replicationFactor: number; config: Record<string, string> } {
  const replicas = replicationFactor > 0 ? replicationFactor : Math.max(1, Math.min(3, brokers));
  const minInsync = minInsyncReplicas > 0 ? minInsyncReplicas : Math.min(2, replicas - 1);
  return { replicationFactor: replicas, config: minInsync >= 1 && replicas > 1 ? { 'min.insync.replicas': String(minInsync) } : {} };
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

/** What a contender for a lease tells the others (the group's member metadata). */
export interface LeaseClaim {
  /** host:pid and what the process is, shown to a contender that is refused. */
  readonly owner: string;
  /** When it asked (ms); the earliest asker wins a free lease. */
  readonly since: number;
  /**
   * The member id it was given the lease under: a holder keeps the lease through every rebalance. A member
   * the coordinator dropped (a session that expired while it was frozen) rejoins under a new id, so its old
   * claim no longer counts and the member that took over keeps the lease.
   */
  readonly heldAs?: string;
}

export interface Lease {
  /** Aborted when the group gave the lease to another member or the membership failed: stop writing at once. */
  readonly lost: AbortSignal;
  release(): Promise<void>;
}

export type LeaseAttempt = { readonly lease: Lease } | { readonly heldBy: string };

export interface LeaseOptions {
  /** The consumer group that is the lease: one per guarded thing (one per account). */
  readonly group: string;
  /** A one-partition topic the group subscribes to; never written. */
  readonly topic: string;
  /** Who is asking, for the refusal message of others. */
  readonly owner: string;
  /** A holder that stops heart-beating loses the lease after this long (the group's session timeout). */
  readonly sessionTimeoutMs: number;
}

export interface KafkaGateway {
  ensureTopics(specs: readonly TopicSpec[]): Promise<void>;
  /**
   * An idempotent acks=all producer. `connectLazily`: the broker may be down now; the producer is returned at
   * once and every send connects first if need be (and fails like any send while the broker stays down).
   */
  producer(options?: { readonly connectLazily?: boolean }): Promise<RecordProducer>;
  /** Whether a broker answers within a few seconds: for health reports, never for decisions about data. */
  reachable(): Promise<boolean>;
  consumer(options: ConsumerOptions): Promise<RecordConsumer>;
  /** The high watermark (next offset) of every partition of a topic. */
  endOffsets(topic: string): Promise<Map<number, string>>;
  /** The committed offset of every partition of a topic for a group ('-1' when none). */
  committedOffsets(groupId: string, topic: string): Promise<Map<number, string>>;
  /**
   * At most one holder per group across every process and machine that reaches the broker: Kafka's group
   * coordinator gives the one partition to one member per generation, and the assignor below keeps it with
   * its holder, so a later contender is refused rather than taking it. A dead holder's session expires after
   * `sessionTimeoutMs`; a contender waiting on that then wins.
   */
  acquireLease(options: LeaseOptions): Promise<LeaseAttempt>;
  /** Reads every record of a topic from the beginning up to its current end (tests, tools). */
  readAll(topic: string, timeoutMs: number): Promise<InRecord[]>;
  close(): Promise<void>;
}

const UNREACHABLE = new Set(['KafkaJSConnectionError', 'KafkaJSNumberOfRetriesExceeded', 'KafkaJSBrokerNotFound']);

/** The names of an error and of its causes, outermost first (bounded: a cause chain could loop). */
function causeNames(error: unknown): string[] {
  const names: string[] = [];
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 10; e = (e as { cause?: unknown }).cause, depth += 1) names.push(e.name);
  return names;
}

/**
 * kafkajs' error as wxsync's. A broker that cannot be reached is KafkaUnavailable (retriable) wherever kafkajs puts
 * that in the chain: its retrier wraps the last connection error in a KafkaJSNonRetriableError once its retries are
 * spent, which says nothing about whether a later attempt may succeed.
 */
export function toWxsyncError(error: unknown, what: string): WxsyncError {
  if (error instanceof WxsyncError) return error;
  const retriable = typeof error === 'object' && error !== null && (error as { retriable?: unknown }).retriable === true;
  const code = causeNames(error).some((name) => UNREACHABLE.has(name)) ? ErrorCode.KafkaUnavailable : ErrorCode.KafkaRequestFailed;
  const message = error instanceof Error ? error.message : String(error);
  return new WxsyncError(code, `${what}: ${message}`, { retriable: retriable || code === ErrorCode.KafkaUnavailable, cause: error });
}

/**
 * What kafkajs says about a request that met a broker still electing partition leaders or loading a group's
 * coordinator: every start of a broker or of a new consumer group does, for a few seconds. kafkajs retries those
 * requests itself, and one that outlasts its retries surfaces as wxsync's own error, so the lines are noise.
 */
const TRANSIENT_RESPONSE_ERRORS = new Set([
  "The coordinator is loading and hence can't process requests for this group",
  'The group coordinator is not available',
  'This is not the correct coordinator for this group',
  'There is no leader for this topic-partition as we are in the middle of a leadership election',
  'This server is not the leader for that topic-partition',
]);

// Re-exported so the tests name kafkajs' levels without importing kafkajs.
export { KafkaLogLevel };

type WxsyncLevel = 'warn' | 'debug' | 'trace';

/**
 * The level wxsync logs a kafkajs line at. kafkajs logs retried, self-healing conditions (a leader moving, a
 * coordinator loading) at ERROR; they are warnings from wxsync's point of view, and the start-up ones are debug.
 * Its INFO chatter is debug.
 */
export function kafkaLogLevel(level: KafkaLogLevel, message: string, fields: Readonly<Record<string, unknown>>): WxsyncLevel {
  // wxsync bounds producer retries on purpose (a send must fail in bounded time so the caller can retry
  // the whole set or spool it) and deduplicates by event id, so this start-up warning is expected.
  if (message.startsWith('Limiting retries for the idempotent producer')) return 'debug';
  if (message.startsWith('Response ') && TRANSIENT_RESPONSE_ERRORS.has(String(fields['error']))) return 'debug';
  if (level <= KafkaLogLevel.WARN) return 'warn';
  return level === KafkaLogLevel.INFO ? 'debug' : 'trace';
}

function kafkaLogCreator(logger: Logger) {
  const log = logger.child({ component: 'kafkajs' });
  return () => ({ level, log: entry }: LogEntry): void => {
    const { message, ...fields } = entry;
    log[kafkaLogLevel(level, message, fields)](fields, message);
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

interface LeaseMember {
  readonly memberId: string;
  readonly claim: LeaseClaim;
}

const holds = (member: LeaseMember): boolean => member.claim.heldAs === member.memberId;

/**
 * The member that gets a lease: the one holding it under its current member id, else the earliest claim
 * (member id breaks ties, so every leader computes the same).
 */
export function leaseHolder(members: readonly LeaseMember[]): string | undefined {
  let best: LeaseMember | undefined;
  for (const member of members) {
    if (best === undefined) { best = member; continue; }
    const a = member.claim;
    const b = best.claim;
    if (holds(member) !== holds(best) ? holds(member) : a.since !== b.since ? a.since < b.since : member.memberId < best.memberId) best = member;
  }
  return best?.memberId;
}

const UNKNOWN_CLAIM: LeaseClaim = { owner: 'an unknown process', since: Number.MAX_SAFE_INTEGER };

/** A claim from another member's metadata; anything unreadable ranks last rather than failing the group. */
export function decodeLeaseClaim(metadata: Buffer | null | undefined): LeaseClaim {
  if (metadata === null || metadata === undefined) return UNKNOWN_CLAIM;
  try {
    const userData = AssignerProtocol.MemberMetadata.decode(metadata)?.userData;
    const claim = JSON.parse(userData?.toString('utf8') ?? '') as Partial<LeaseClaim>;
    if (typeof claim.owner !== 'string' || typeof claim.since !== 'number') return UNKNOWN_CLAIM;
    const owner = claim.owner.slice(0, 200);
    return typeof claim.heldAs === 'string' ? { owner, since: claim.since, heldAs: claim.heldAs.slice(0, 200) } : { owner, since: claim.since };
  } catch {
    return UNKNOWN_CLAIM;
  }
}

const LEASE_ASSIGNER = 'WxsyncLease';

/** A lease group member's metadata carrying `userData` (a JSON claim); exported for tests of hostile claims. */
export function leaseMetadata(topics: string[], userData: Buffer): Buffer {
  return AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData });
}

/** The assignor of lease groups: partition 0 of the lease topic to `leaseHolder`, nothing to the others. */
function leaseAssigner(claim: () => LeaseClaim, topic: string): PartitionAssigner {
  return () => ({
    name: LEASE_ASSIGNER,
    version: 0,
    assign({ members }) {
      const holder = leaseHolder(members.map((m) => ({ memberId: m.memberId, claim: decodeLeaseClaim(m.memberMetadata) })));
      return Promise.resolve(members.map((m) => ({
        memberId: m.memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 0, assignment: m.memberId === holder ? { [topic]: [0] } : {}, userData: Buffer.alloc(0),
        }),
      })));
    },
    protocol({ topics }) {
      return {
        name: LEASE_ASSIGNER,
        metadata: leaseMetadata(topics, Buffer.from(JSON.stringify(claim()))),
      };
    },
  });
}

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
  let reachability: { readonly at: number; readonly answer: Promise<boolean> } | undefined;
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

  async function describeLeaseHolder(options: LeaseOptions): Promise<string | undefined> {
    const { groups } = await (await getAdmin()).describeGroups([options.group]);
    for (const member of groups[0]?.members ?? []) {
      const assignment = AssignerProtocol.MemberAssignment.decode(member.memberAssignment)?.assignment ?? {};
      if ((assignment[options.topic] ?? []).includes(0)) {
        const claim = decodeLeaseClaim(member.memberMetadata);
        const since = new Date(claim.since);
        return Number.isNaN(since.getTime()) ? claim.owner : `${claim.owner} since ${since.toISOString()}`;
      }
    }
    return undefined;
  }

  return {
    async ensureTopics(specs) {
      const a = await getAdmin();
      try {
        const existing = new Set(await a.listTopics());
        const missing = specs.filter((s) => !existing.has(s.topic));
        if (missing.length > 0) {
          const { brokers } = await a.describeCluster();
          const durability = topicDurability(config.replicationFactor, config.minInsyncReplicas, brokers.length);
          await a.createTopics({
            waitForLeaders: true,
            topics: missing.map((s) => ({
              topic: s.topic,
              numPartitions: s.partitions,
              replicationFactor: durability.replicationFactor,
              configEntries: Object.entries({ ...durability.config, ...s.config }).map(([name, value]) => ({ name, value })),
            })),
          });
        }
      } catch (error) {
        // Another process creating the same topic at the same moment is success, not failure.
        if ((error as { type?: unknown }).type === 'TOPIC_ALREADY_EXISTS') return;
        throw toWxsyncError(error, 'cannot create topics');
      }
    },

    async producer(options = {}) {
      const producer: Producer = kafka.producer({
        idempotent: true,
        // kafkajs cannot re-sequence more than one in-flight request of an idempotent producer.
        maxInFlightRequests: 1,
        createPartitioner: keyHashPartitioner,
        // wxsync creates its topics with their partitions and settings; a send must never create one with the
        // broker's defaults (one partition, seven days), as a send before ensureTopics would.
        allowAutoTopicCreation: false,
      });
      let connecting: Promise<void> | undefined;
      const connect = (): Promise<void> => {
        connecting ??= producer.connect().catch((error: unknown) => {
          connecting = undefined;
          throw toWxsyncError(error, 'cannot connect the Kafka producer');
        });
        return connecting;
      };
      if (options.connectLazily === true) void connect().catch(() => undefined);
      else await connect();
      const close = async (): Promise<void> => {
        closers.delete(close);
        await producer.disconnect();
      };
      closers.add(close);
      return {
        async send(topic, records) {
          if (records.length === 0) return;
          await connect();
          try {
            await producer.send({ topic, acks: -1, messages: records.map((r) => ({ key: r.key, value: r.value })) });
          } catch (error) {
            throw toWxsyncError(error, `cannot produce to ${topic}`);
          }
        },
        close,
      };
    },

    reachable() {
      // One answer serves every caller for a few seconds: a health probe polled often must not pile up
      // connection attempts against a broker that is down.
      const now = Date.now();
      if (reachability !== undefined && now - reachability.at < 5000) return reachability.answer;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(() => { resolve(false); }, 3000); });
      const asked = getAdmin().then(async (a) => { await a.describeCluster(); return true; }).catch(() => false);
      const answer = Promise.race([asked, timeout]).finally(() => { clearTimeout(timer); });
      reachability = { at: now, answer };
      return answer;
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
      // Each join is a new generation with its own assignment. A batch fetched in an earlier generation may
      // belong to a partition now another member's: committing it would move that member's position (the
      // group coordinator accepts a commit of the current generation for any partition). kafkajs' isStale()
      // does not see a revocation, so the generation is tracked here.
      let generation = 0;
      let assigned = new Set<string>();
      const partitionKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        generation += 1;
        assigned = new Set(Object.entries(payload.memberAssignment).flatMap(([topic, partitions]) => partitions.map((p) => partitionKey(topic, p))));
        markJoined();
      });
      const rebalancing = consumer.on(consumer.events.REBALANCING, () => { generation += 1; assigned = new Set(); });
      try {
        await consumer.connect();
      } catch (error) {
        throw toWxsyncError(error, 'cannot connect the Kafka consumer');
      }
      let stopping = false;
      const close = async (): Promise<void> => {
        closers.delete(close);
        stopping = true;
        rebalancing();
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
              const fetchedIn = generation;
              await onBatch({
                topic: batch.topic,
                partition: batch.partition,
                records,
                heartbeat: () => payload.heartbeat(),
                isCurrent: () => !stopping && payload.isRunning() && !payload.isStale() && generation === fetchedIn
                  && assigned.has(partitionKey(batch.topic, batch.partition)),
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
          if (!assigned.has(partitionKey(topic, partition))) {
            throw new WxsyncError(ErrorCode.KafkaRequestFailed, `${topic}[${partition}] is no longer assigned to this member: not committing ${nextOffset}`, { retriable: true });
          }
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

    async acquireLease(options) {
      let claim: LeaseClaim = { owner: `${hostname()}:${process.pid} ${options.owner}`, since: Date.now() };
      const consumer: Consumer = kafka.consumer({
        groupId: options.group,
        partitionAssigners: [leaseAssigner(() => claim, options.topic)],
        sessionTimeout: options.sessionTimeoutMs,
        // A member that does not rejoin within this is dropped: bounds how long a dead holder blocks a contender.
        rebalanceTimeout: options.sessionTimeoutMs,
        heartbeatInterval: Math.max(500, Math.floor(options.sessionTimeoutMs / 5)),
        maxWaitTimeInMs: 500,
        // A crashed lease consumer stays down (the CRASH handler below declares the lease lost): one that restarted
        // by itself could rejoin after its holder gave up and hold the account for nobody.
        retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 5000, restartOnFailure: () => Promise.resolve(false) },
      });
      const lost = new AbortController();
      // Written by the group's events, so an object: TypeScript does not narrow through callbacks.
      const membership = { joins: 0, holds: false };
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        membership.joins += 1;
        const mine = (payload.memberAssignment[options.topic] ?? []).includes(0);
        if (membership.holds && !mine) lost.abort(new WxsyncError(ErrorCode.LeaseLost, `lease ${options.group} went to another member after a rebalance`));
        membership.holds = mine;
        if (mine) claim = { ...claim, heldAs: payload.memberId };
      });
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        // kafkajs restarts a crashed consumer, but the session may have expired meanwhile: the lease is in doubt.
        lost.abort(new WxsyncError(ErrorCode.LeaseLost, `lease ${options.group} lost: ${payload.error.message}`, { retriable: true, cause: payload.error }));
      });
      const disconnect = async (): Promise<void> => {
        closers.delete(disconnect);
        await consumer.disconnect();
      };
      closers.add(disconnect);
      try {
        await consumer.connect();
        await consumer.subscribe({ topic: options.topic, fromBeginning: false });
        // run() returns once the first join and sync are done, so the GROUP_JOIN above has been seen.
        await consumer.run({ eachMessage: () => Promise.resolve() });
      } catch (error) {
        await disconnect().catch(() => undefined);
        throw toWxsyncError(error, `cannot join lease group ${options.group}`);
      }
      if (membership.joins === 0 || lost.signal.aborted) {
        await disconnect();
        throw new WxsyncError(ErrorCode.KafkaRequestFailed, `lease group ${options.group} did not assign`, { retriable: true });
      }
      if (!membership.holds) {
        const heldBy = await describeLeaseHolder(options).catch(() => undefined);
        await disconnect();
        return { heldBy: heldBy ?? 'another process' };
      }
      return { lease: { lost: lost.signal, release: disconnect } };
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
