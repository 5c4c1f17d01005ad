import type { ClickHouseClient } from '../../lib/clickhouse.ts';
import type { Config } from '../../lib/config.ts';
import type { KafkaGateway } from '../../lib/kafka.ts';
import type { Logger } from '../../lib/logger.ts';
import { Gauge, type Registry } from '../../lib/metrics.ts';
import { LoadPipeline, type PipelineStats, type StallState } from './pipeline.ts';
import { routeRecords } from './route.ts';
import { clickHouseWriter, type RoutedWriter } from './sink.ts';

export interface ClickHouseConsumerDeps {
  readonly config: Config;
  readonly kafka: KafkaGateway;
  readonly clickhouse: ClickHouseClient;
  readonly logger: Logger;
  readonly registry?: Registry;
  /** Wraps the store writer, e.g. to inject faults in tests or count writes in benchmarks. */
  readonly wrapWriter?: (writer: RoutedWriter) => RoutedWriter;
}

export interface RunningClickHouseConsumer {
  /** Resolves once the group assigned partitions to this consumer. */
  readonly joined: Promise<void>;
  readonly stats: PipelineStats;
  /** Records wait and nothing was stored for longer than WXSYNC_CONSUMER_STALL_S; and the time since the last store. */
  stall(): StallState;
  stop(): Promise<void>;
}

const STOP_DEADLINE_MS = 15_000;

/** The `consumer` role: wx.user.events, wx.snapshots and wx.user.profiles into ClickHouse, in batches. */
export async function startClickHouseConsumer(deps: ClickHouseConsumerDeps): Promise<RunningClickHouseConsumer> {
  const { config, kafka, logger } = deps;
  const { topics } = config.kafka;
  const log = logger.child({ role: 'consumer' });
  const dlqProducer = await kafka.producer();
  const baseWriter = clickHouseWriter(deps.clickhouse, config.clickhouse.database, dlqProducer, topics.dlq, {
    onRefused(records) {
      pipeline.stats.dlq += records.length;
      for (const refused of records) log.warn({ code: refused.code, source: refused.source }, `record sent to the DLQ: ${refused.reason}`);
    },
  });
  const writer = deps.wrapWriter?.(baseWriter) ?? baseWriter;
  const consumer = await kafka.consumer({
    groupId: config.consumer.groupId, fromBeginning: true, concurrency: 64, sessionTimeoutMs: config.consumer.sessionTimeoutMs,
  });
  const { batchMaxRows, batchMaxWaitMs, retryInitialMs, retryMaxMs, stallMs } = config.consumer;
  const pipeline = new LoadPipeline(
    {
      maxRows: batchMaxRows,
      maxWaitMs: batchMaxWaitMs,
      lingerMs: Math.min(batchMaxWaitMs, 20),
      maxPendingRows: batchMaxRows * 3,
      maxConcurrentWrites: 2,
      retryInitialMs,
      retryMaxMs,
      stallMs,
    },
    writer,
    (topic, partition, offset) => consumer.commit(topic, partition, offset),
    log,
  );
  if (deps.registry !== undefined) registerPipelineMetrics(deps.registry, pipeline);

  const subscribed = [topics.userEvents, topics.snapshots, topics.userProfiles];
  let stopping = false;
  await consumer.run(subscribed, async (batch) => {
    // Records fetched while stopping are not queued: never committed, Kafka redelivers them.
    if (stopping) return;
    const last = batch.records.at(-1);
    if (last === undefined) return;
    const routed = routeRecords(batch.records, topics, Date.now());
    for (const rejected of routed.dlq) log.warn({ code: rejected.code, source: rejected.source }, `record sent to the DLQ: ${rejected.reason}`);
    await pipeline.submit(
      routed,
      { topic: batch.topic, partition: batch.partition, nextOffset: BigInt(last.offset) + 1n, isCurrent: () => batch.isCurrent() },
      () => batch.heartbeat(),
    );
  });
  log.info({ groupId: config.consumer.groupId, topics: subscribed }, 'consumer started');

  return {
    joined: consumer.joined,
    stats: pipeline.stats,
    stall: () => pipeline.stall(),
    async stop() {
      stopping = true;
      consumer.pause(subscribed);
      await pipeline.close(STOP_DEADLINE_MS);
      await consumer.close();
      await dlqProducer.close();
      log.info(pipeline.stats, 'consumer stopped');
    },
  };
}

function registerPipelineMetrics(registry: Registry, pipeline: LoadPipeline): void {
  const { stats } = pipeline;
  const gauge = (name: string, help: string, read: () => number): void => {
    registry.registerMetric(new Gauge({ name, help, registers: [], collect() { this.set(read()); } }));
  };
  gauge('wxsync_consumer_rows_written_total', 'Rows written to ClickHouse by the consumer', () => stats.rowsWritten);
  gauge('wxsync_consumer_flushes_total', 'Batches written to ClickHouse', () => stats.flushes);
  gauge('wxsync_consumer_write_retries_total', 'Failed batch writes that were retried', () => stats.retries);
  gauge('wxsync_consumer_dlq_total', 'Records sent to the DLQ', () => stats.dlq);
  gauge('wxsync_consumer_commit_failures_total', 'Offset commits that failed (records are redelivered)', () => stats.commitFailures);
  gauge('wxsync_consumer_stalled', '1 while records wait and nothing was stored for longer than WXSYNC_CONSUMER_STALL_S', () => (pipeline.stall().stalled ? 1 : 0));
  gauge('wxsync_consumer_seconds_since_write', 'Seconds since the consumer last stored a set in order', () => pipeline.stall().secondsSinceWrite);
}
