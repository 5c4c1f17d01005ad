import type { Config } from './config.ts';
import type { TopicSpec } from './kafka.ts';

/**
 * wxsync's four topics as it creates them. Here rather than in cli/run.ts so commands that need only
 * Kafka (`wxsync snapshot`) can create them without loading the ClickHouse engine.
 */
export function topicSpecs(config: Config): TopicSpec[] {
  const { topics, partitions } = config.kafka;
  return [
    { topic: topics.userEvents, partitions: partitions.userEvents },
    // A page record is up to ~700 KB; the broker default of 1 MB leaves too little headroom.
    { topic: topics.snapshots, partitions: partitions.snapshots, config: { 'max.message.bytes': String(2 * 1024 * 1024) } },
    { topic: topics.userProfiles, partitions: partitions.userProfiles, config: { 'cleanup.policy': 'compact,delete' } },
    { topic: topics.dlq, partitions: partitions.dlq, config: { 'retention.ms': String(30 * 24 * 3600 * 1000) } },
  ];
}
