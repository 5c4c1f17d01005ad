import type { ClickHouseClient } from './clickhouse.ts';
import type { Config } from './config.ts';
import type { Routes } from './http-server.ts';
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
  /** Routes on the public listener (PORT): what WeChat calls, nothing an operator uses. */
  readonly publicRoutes?: Routes;
  /** Routes on the admin listener, behind the admin token: the API the CLI and operators use. */
  readonly routes?: Routes;
  ready(): boolean;
  stop(): Promise<void>;
}

export type RoleStarter = (context: RoleContext) => Promise<RunningRole>;
