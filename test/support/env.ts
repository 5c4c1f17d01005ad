import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../lib/config.ts';

/** The broker the integration tests use: the one `.ci/run` (or `wxsync kafka start`) started. */
export const TEST_BROKERS = process.env['KAFKA_BROKERS'] ?? '127.0.0.1:9092';

export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

export interface TestEnv {
  readonly env: Record<string, string>;
  readonly config: Config;
  readonly dataDir: string;
  cleanup(): void;
}

/**
 * A config with its own topics, consumer group and chDB directory, so tests never see each other's
 * records (kafkajs' test-helper rule: unique topic and group per test).
 */
export function testEnv(overrides: Record<string, string> = {}): TestEnv {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'wxsync-test-'));
  const env: Record<string, string> = {
    KAFKA_BROKERS: TEST_BROKERS,
    WXSYNC_TOPIC_PREFIX: `${uniqueName('t')}.`,
    WXSYNC_DATA_DIR: dataDir,
    WXSYNC_LOG_LEVEL: process.env['WXSYNC_TEST_LOG_LEVEL'] ?? 'warn',
    WXSYNC_EVENTS_PARTITIONS: '4',
    WXSYNC_SNAPSHOTS_PARTITIONS: '2',
    WXSYNC_PROFILES_PARTITIONS: '2',
    WXSYNC_RETRY_INITIAL_MS: '50',
    WXSYNC_RETRY_MAX_MS: '500',
    PORT: '0',
    // The CLI finds a running `wxsync run`'s admin listener through the endpoint file in the data directory.
    WXSYNC_ADMIN_PORT: '0',
    ...overrides,
  };
  return {
    env,
    config: loadConfig(env),
    dataDir,
    cleanup: () => { rmSync(dataDir, { recursive: true, force: true }); },
  };
}

/** Polls until `check` returns a value, failing with `what` after `timeoutMs`: no unbounded waits in tests. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined> | T | undefined, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
