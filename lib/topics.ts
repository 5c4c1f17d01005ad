import type { Config } from './config.ts';
import type { TopicSpec } from './kafka.ts';

/**
 * wx.snapshots' max.message.bytes: Kafka's limit on one record batch, and every record one send carries for
 * one key is one batch. A page record is up to ~700 KB; the broker default of 1 MB leaves too little headroom.
 */
export const SNAPSHOTS_MAX_BATCH_BYTES = 2 * 1024 * 1024;

/**
 * wxsync's topics as it creates them. Here rather than in cli/run.ts so commands that need only
 * Kafka (`wxsync snapshot`) can create them without loading the ClickHouse engine.
 */
export function topicSpecs(config: Config): TopicSpec[] {
  const { topics, partitions } = config.kafka;
  return [
    // The system of record: the store can be rebuilt from it, so no time or size limit by default (Kafka's is 7 days).
    { topic: topics.userEvents, partitions: partitions.userEvents, config: { 'retention.ms': String(config.kafka.eventsRetentionMs), 'retention.bytes': '-1' } },
    { topic: topics.snapshots, partitions: partitions.snapshots, config: { 'max.message.bytes': String(SNAPSHOTS_MAX_BATCH_BYTES) } },
    { topic: topics.userProfiles, partitions: partitions.userProfiles, config: { 'cleanup.policy': 'compact,delete' } },
    { topic: topics.dlq, partitions: partitions.dlq, config: { 'retention.ms': String(30 * 24 * 3600 * 1000) } },
    { topic: topics.leases, partitions: partitions.leases },
  ];
}
