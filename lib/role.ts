import type { ClickHouseClient } from './clickhouse.ts';
import type { Config } from './config.ts';
import type { RouteHandler } from './http-server.ts';
import type { KafkaGateway } from './kafka.ts';
import type { Logger } from './logger.ts';
import type { Registry } from './metrics.ts';

/** What the `run` process shares with its roles: one config, one Kafka client, one ClickHouse client. */
export interface RoleContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly kafka: KafkaGateway;
  readonly clickhouse: ClickHouseClient;
}

export interface RunningRole {
  readonly name: string;
  readonly routes?: ReadonlyArray<readonly [prefix: string, handler: RouteHandler]>;
  ready(): boolean;
  stop(): Promise<void>;
}

export type RoleStarter = (context: RoleContext) => Promise<RunningRole>;
