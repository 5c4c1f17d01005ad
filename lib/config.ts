import { readFileSync } from 'node:fs';
import cron from 'node-cron';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, WxsyncError } from './errors.ts';
import { redactText, type LogLevel } from './logger.ts';
import { isHttpUrl } from './http-url.ts';
import { checkTimeZone } from './time-zone.ts';
import { configRecords } from './config-records.ts';
import { parseWebhooks, type AlertWebhook } from '../alerts/webhook-config.ts';

/** The package root: the Kafka jar cache and the SQL files are found relative to it, not to the cwd. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface Account {
  readonly appid: string;
  /** What operators call the account; alert texts show it beside the appid. */
  readonly name?: string;
  readonly secret: string;
  readonly token: string;
  readonly encodingAESKey?: string;
  readonly previousEncodingAESKey?: string;
  readonly snapshotCron?: string;
  /** Reconciles the newest complete snapshot; every complete snapshot is also reconciled once it is loaded. */
  readonly reconcileCron?: string;
  /**
   * Which pushes the callback route accepts (wechat-protocol.md §6.1). loadConfig always sets it; it is
   * optional only so API clients can be built from bare credentials (callbackModeOf gives the default).
   */
  readonly mode?: CallbackMode;
}

/**
 * - `plain`: pushes signed with `signature` only (and encrypted ones too when a key is configured, so the
 *   console can be switched to an encrypted mode before the account file is).
 * - `compat`: encrypted pushes only (encrypt_type=aes, msg_signature); cleartext copies in the body are ignored.
 * - `safe`: encrypted pushes whose body holds nothing but ToUserName and Encrypt.
 * A plain `signature` covers only token, timestamp and nonce, which every URL WeChat calls carries, so it
 * can be replayed with any body: an account with a key must not fall back to it unless told to.
 */
export const CALLBACK_MODES = ['plain', 'compat', 'safe'] as const;
export type CallbackMode = (typeof CALLBACK_MODES)[number];

/** The account's mode, or its default: `safe` with an EncodingAESKey, `plain` without. */
export function callbackModeOf(account: { readonly mode?: CallbackMode | undefined; readonly encodingAESKey?: string | undefined }): CallbackMode {
  return account.mode ?? (account.encodingAESKey === undefined ? 'plain' : 'safe');
}

export interface Topics {
  readonly userEvents: string;
  readonly snapshots: string;
  readonly userProfiles: string;
  readonly dlq: string;
  /** One partition, never written: the topic the snapshot lease groups subscribe to. */
  readonly leases: string;
}

export type ClickHouseTarget =
  | { readonly kind: 'embedded'; readonly path: string }
  | { readonly kind: 'server'; readonly url: string; readonly username: string; readonly password: string };

export interface Config {
  readonly logLevel: LogLevel;
  readonly kafka: {
    readonly brokers: readonly string[];
    readonly clientId: string;
    readonly topics: Topics;
    readonly partitions: Readonly<Record<keyof Topics, number>>;
    /** Replicas of each topic wxsync creates; 0: three, or as many brokers as there are when fewer. */
    readonly replicationFactor: number;
    /** min.insync.replicas of the topics wxsync creates; 0: one less than the replicas (at most 2), none with one replica. */
    readonly minInsyncReplicas: number;
    /** retention.ms of wx.user.events, the system of record the store can be rebuilt from; -1 keeps every record. */
    readonly eventsRetentionMs: number;
  };
  readonly kafkaLocal: {
    readonly port: number;
    readonly controllerPort: number;
    readonly dir: string;
    readonly heap: string;
    readonly startTimeoutMs: number;
  };
  readonly clickhouse: {
    readonly target: ClickHouseTarget;
    readonly database: string;
  };
  readonly consumer: {
    readonly groupId: string;
    /** A batch is flushed when it holds this many rows (a snapshot page counts its openids) … */
    readonly batchMaxRows: number;
    /** … or when its oldest record has waited this long. */
    readonly batchMaxWaitMs: number;
    readonly retryInitialMs: number;
    readonly retryMaxMs: number;
    /** How long a silent member keeps its partitions: after a crash, the restarted one waits this long. */
    readonly sessionTimeoutMs: number;
    /** Records waiting this long with nothing written: the consumer reports itself stalled (/readyz, metrics). */
    readonly stallMs: number;
  };
  readonly http: {
    /** The public listener: WeChat's `/wechat/<appid>` and bare liveness/readiness probes, nothing else. */
    readonly port: number;
    /** The admin listener: the API, /metrics, detailed health; every request needs the admin token. */
    readonly admin: {
      readonly host: string;
      readonly port: number;
      /** WXSYNC_ADMIN_TOKEN, or undefined: then a token generated once into `tokenFile` is used. */
      readonly token: string | undefined;
      readonly tokenFile: string;
      /** Where a running `wxsync run` writes the admin listener's address, so the CLI on this machine finds it. */
      readonly endpointFile: string;
    };
    /** Connections a listener keeps at once; more are refused until one ends. */
    readonly maxConnections: number;
  };
  readonly callback: {
    /** The fsynced spool that holds accepted callbacks while Kafka is unreachable. */
    readonly spoolDir: string;
    /** A push whose `timestamp` is further than this from our clock is refused (replay window). */
    readonly maxClockSkewMs: number;
    /** Larger bodies are refused before parsing; real pushes are a few KiB. */
    readonly bodyMaxBytes: number;
    /** How long a request waits for Kafka's acknowledgement before its record is spooled instead. */
    readonly produceTimeoutMs: number;
    /** How long an accepted event id is remembered, so WeChat's retries publish nothing twice. */
    readonly dedupeWindowMs: number;
    /** Bytes the spool may take on disk; past it callbacks are answered 503 (WeChat retries) instead of accepted. */
    readonly spoolMaxBytes: number;
  };
  readonly snapshot: {
    /** Checkpoints and per-day call counts of the snapshot producer. */
    readonly dir: string;
    /** Snapshots of different accounts running at once in one process. */
    readonly concurrency: number;
    /** A snapshot lease whose holder stopped heart-beating this long ago goes to the next contender. */
    readonly leaseTtlMs: number;
    /** + appid: the Kafka consumer group that is an account's snapshot lease. */
    readonly leaseGroupPrefix: string;
    /** A checkpoint older than this is not resumed (WeChat cursors are short-lived, §2.2): the run is ended incomplete. */
    readonly resumeMaxAgeMs: number;
    /** user/get calls per account per day, used when /openapi/quota/get cannot tell. */
    readonly userGetDailyQuota: number;
    /** batchget calls in flight per snapshot. */
    readonly batchgetConcurrency: number;
    /** Complete snapshots per account whose members are kept; older snapshots' members are dropped after a reconcile. */
    readonly keep: number;
    /** A scheduled snapshot not complete this long after its cron due time is overdue (wxsync_snapshot_overdue_seconds). */
    readonly overdueMs: number;
  };
  readonly sentinel: {
    /** Time between two drift checks of an account, at least (stretched when user/get quota is short); 0: no sentinel. */
    readonly intervalMs: number;
    /** After the call, pushes of earlier events may still arrive (WeChat retries for ~15 s): the check waits this long. */
    readonly settleMs: number;
    /** How long a sentinel that started a snapshot waits for its reconcile before it reports none came. */
    readonly followTimeoutMs: number;
  };
  readonly reconcile: {
    /** δ: events at or after T0 − δ are newer than the snapshot (clock skew, WeChat's retry window). */
    readonly windowMarginMs: number;
    /** Published up to T1 + grace must be loaded before a reconcile reads the store. */
    readonly graceMs: number;
    /** Refuse when the stale set is a larger share of the snapshot's followers. */
    readonly maxStaleShare: number;
    /** How long a reconcile waits for the consumer to catch up before it fails. */
    readonly loadTimeoutMs: number;
    /** How often the role looks for complete, loaded snapshots not reconciled yet. */
    readonly pollMs: number;
  };
  readonly reports: {
    /** IANA zone of report days, weeks and months: Beijing by default, as WeChat's own figures count days. */
    readonly tz: string;
    /** How long a report waits for a refresh of the churn rollups it asked for (--fresh). */
    readonly refreshTimeoutMs: number;
  };
  readonly alerts: {
    /** Where alerts go (WXSYNC_ALERT_WEBHOOKS); none: alerts are evaluated, counted and logged only. */
    readonly webhooks: readonly AlertWebhook[];
    /** How often the rules are evaluated over the process's metrics. */
    readonly evalMs: number;
    /** pushes_lost: the last reconcile corrected more than this share of its snapshot's followers … */
    readonly lostShare: number;
    /** … or more than this many. */
    readonly lostCount: number;
    /** spool_not_draining: the spool held callbacks and did not shrink for this long. */
    readonly spoolMs: number;
    /** consumer_stuck: the consumer reported itself stalled for this long. */
    readonly stuckMs: number;
    /** quota_low: user/get calls left today below this share of the day's limit. */
    readonly quotaShare: number;
    /** pushes_refused_spike: more pushes refused than this in the last minute. */
    readonly refusedPerMinute: number;
    /** A firing alert resolves once its condition has been false this long, so a flapping one does not flood. */
    readonly resolveHoldMs: number;
    /** Messages a webhook gets a minute at most; what fires or resolves beyond it goes grouped into the next one. */
    readonly messagesPerMinute: number;
    /** How often the store's daily figures are compared with WeChat's datacube (and once at start); 0: never. */
    readonly datacubeEveryMs: number;
    readonly delivery: {
      /** Whole-request deadline of one attempt. */
      readonly timeoutMs: number;
      readonly attempts: number;
      readonly retryInitialMs: number;
      readonly retryMaxMs: number;
      /** Messages waiting per webhook at most; past it the oldest is dropped, with a log line. */
      readonly queueMax: number;
    };
  };
  readonly wechatApiBase: string;
  readonly accounts: readonly Account[];
}

type Env = Readonly<Record<string, string | undefined>>;

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const TOPIC_PREFIX = /^[A-Za-z0-9._-]{0,200}$/;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const BROKER = /^[^\s:,]+:\d{1,5}$/;
const APPID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Reads and validates every setting at once. Throws one CONFIG_INVALID error that lists every problem,
 * so an operator fixes a bad deployment in one round instead of one variable at a time.
 */
export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): Config {
  const problems: string[] = [];
  const str = (name: string, fallback: string): string => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? fallback : value.trim();
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    const value = Number(raw.trim());
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return value;
  };
  const share = (name: string, fallback: number): number => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    const value = Number(raw.trim());
    if (!Number.isFinite(value) || value < 0 || value > 1) {
      problems.push(`${name} must be a number from 0 to 1, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return value;
  };

  const logLevel = str('WXSYNC_LOG_LEVEL', 'info');
  if (!LOG_LEVELS.includes(logLevel as LogLevel)) {
    problems.push(`WXSYNC_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
  }

  const brokers = str('KAFKA_BROKERS', '127.0.0.1:9092').split(',').map((b) => b.trim()).filter((b) => b !== '');
  if (brokers.length === 0 || brokers.some((b) => !BROKER.test(b))) {
    problems.push(`KAFKA_BROKERS must be a comma-separated list of host:port, got ${JSON.stringify(env['KAFKA_BROKERS'])}`);
  }
  const prefix = str('WXSYNC_TOPIC_PREFIX', '');
  if (!TOPIC_PREFIX.test(prefix)) {
    problems.push(`WXSYNC_TOPIC_PREFIX may hold only letters, digits, '.', '_' and '-', got ${JSON.stringify(prefix)}`);
  }
  const topics: Topics = {
    userEvents: `${prefix}wx.user.events`,
    snapshots: `${prefix}wx.snapshots`,
    userProfiles: `${prefix}wx.user.profiles`,
    dlq: `${prefix}wx.dlq`,
    leases: `${prefix}wx.leases`,
  };
  const partitions = {
    userEvents: int('WXSYNC_EVENTS_PARTITIONS', 12, 1, 1000),
    snapshots: int('WXSYNC_SNAPSHOTS_PARTITIONS', 6, 1, 1000),
    userProfiles: int('WXSYNC_PROFILES_PARTITIONS', 6, 1, 1000),
    dlq: int('WXSYNC_DLQ_PARTITIONS', 1, 1, 1000),
    // A lease is partition 0 of this topic; more partitions would only go unused.
    leases: 1,
  };

  const firstBrokerPort = Number(brokers[0]?.split(':')[1] ?? 9092);
  const localPort = int('WXSYNC_KAFKA_PORT', Number.isInteger(firstBrokerPort) ? firstBrokerPort : 9092, 1, 65535);
  const controllerPort = int('WXSYNC_KAFKA_CONTROLLER_PORT', localPort === 65535 ? 65534 : localPort + 1, 1, 65535);
  if (controllerPort === localPort) problems.push('WXSYNC_KAFKA_CONTROLLER_PORT must differ from the broker port');

  const dataDir = path.resolve(cwd, str('WXSYNC_DATA_DIR', './data'));
  const reportTz = str('WXSYNC_REPORT_TZ', 'Asia/Shanghai');
  const tzProblem = checkTimeZone(reportTz);
  if (tzProblem !== undefined) problems.push(`WXSYNC_REPORT_TZ: ${tzProblem}`);
  const adminTokenRaw = env['WXSYNC_ADMIN_TOKEN'];
  let adminToken: string | undefined;
  if (adminTokenRaw !== undefined && adminTokenRaw.trim() !== '') {
    // Never echoed in the problem: it is a credential.
    if (/^[\x21-\x7e]{32,256}$/.test(adminTokenRaw.trim())) adminToken = adminTokenRaw.trim();
    else problems.push('WXSYNC_ADMIN_TOKEN must be 32 to 256 printable characters without spaces');
  }
  const clickhouseUrl = str('CLICKHOUSE_URL', '');
  let target: ClickHouseTarget = { kind: 'embedded', path: path.join(dataDir, 'clickhouse') };
  if (clickhouseUrl !== '') {
    if (!isHttpUrl(clickhouseUrl)) problems.push(`CLICKHOUSE_URL must be an http(s) URL, got ${JSON.stringify(redactText(clickhouseUrl))}`);
    target = {
      kind: 'server',
      url: clickhouseUrl,
      username: str('CLICKHOUSE_USER', 'default'),
      password: env['CLICKHOUSE_PASSWORD'] ?? '',
    };
  }
  const database = str('CLICKHOUSE_DATABASE', 'wxsync');
  if (!IDENTIFIER.test(database)) problems.push(`CLICKHOUSE_DATABASE must be a plain identifier, got ${JSON.stringify(database)}`);

  const retryInitialMs = int('WXSYNC_RETRY_INITIAL_MS', 200, 1, 60_000);
  const retryMaxMs = int('WXSYNC_RETRY_MAX_MS', 10_000, 1, 600_000);
  if (retryMaxMs < retryInitialMs) problems.push('WXSYNC_RETRY_MAX_MS must not be below WXSYNC_RETRY_INITIAL_MS');

  const sentinelIntervalS = int('WXSYNC_SENTINEL_INTERVAL_S', 900, 0, 86_400);
  // One user/get call per check: a sub-5-second interval would spend the day's quota in minutes.
  if (sentinelIntervalS > 0 && sentinelIntervalS < 5) problems.push(`WXSYNC_SENTINEL_INTERVAL_S must be 0 (no sentinel) or at least 5, got ${sentinelIntervalS}`);

  const wechatApiBase = str('WECHAT_API_BASE', 'https://api.weixin.qq.com');
  if (!isHttpUrl(wechatApiBase)) problems.push(`WECHAT_API_BASE must be an http(s) URL, got ${JSON.stringify(redactText(wechatApiBase))}`);

  const accountsPath = str('WXSYNC_ACCOUNTS', '');
  const accounts = accountsPath === '' ? [] : readAccounts(path.resolve(cwd, accountsPath), problems);
  const webhooksPath = str('WXSYNC_ALERT_WEBHOOKS', '');
  const webhooks = webhooksPath === '' ? undefined : readJsonFile('WXSYNC_ALERT_WEBHOOKS', path.resolve(cwd, webhooksPath), problems);
  const alertRetryInitialMs = int('WXSYNC_ALERT_RETRY_INITIAL_MS', 1000, 1, 600_000);
  const alertRetryMaxMs = int('WXSYNC_ALERT_RETRY_MAX_MS', 60_000, 1, 3_600_000);
  if (alertRetryMaxMs < alertRetryInitialMs) problems.push('WXSYNC_ALERT_RETRY_MAX_MS must not be below WXSYNC_ALERT_RETRY_INITIAL_MS');

  const config: Config = {
    logLevel: logLevel as LogLevel,
    kafka: {
      brokers, clientId: str('WXSYNC_CLIENT_ID', 'wxsync'), topics, partitions,
      replicationFactor: int('WXSYNC_TOPIC_REPLICATION', 0, 0, 10),
      minInsyncReplicas: int('WXSYNC_MIN_INSYNC_REPLICAS', 0, 0, 10),
      eventsRetentionMs: int('WXSYNC_EVENTS_RETENTION_MS', -1, -1, Number.MAX_SAFE_INTEGER),
    },
    kafkaLocal: {
      port: localPort,
      controllerPort,
      dir: path.resolve(cwd, str('WXSYNC_KAFKA_DIR', path.join(packageRoot, '.cache', 'kafka'))),
      heap: str('WXSYNC_KAFKA_HEAP', '-Xms512m -Xmx1g'),
      startTimeoutMs: int('WXSYNC_KAFKA_START_TIMEOUT_S', 90, 5, 600) * 1000,
    },
    clickhouse: { target, database },
    consumer: {
      groupId: str('WXSYNC_CONSUMER_GROUP', `${prefix}wxsync-clickhouse`),
      batchMaxRows: int('WXSYNC_BATCH_MAX_ROWS', 50_000, 1, 10_000_000),
      batchMaxWaitMs: int('WXSYNC_BATCH_MAX_MS', 500, 1, 600_000),
      retryInitialMs,
      retryMaxMs,
      sessionTimeoutMs: int('WXSYNC_SESSION_TIMEOUT_MS', 30_000, 6_000, 300_000),
      // Above the longest healthy gap between writes (a batch's wait, a retry's backoff), below an operator's patience.
      stallMs: int('WXSYNC_CONSUMER_STALL_S', 120, 1, 86_400) * 1000,
    },
    http: {
      port: int('PORT', 8080, 0, 65535),
      admin: {
        host: str('WXSYNC_ADMIN_HOST', '127.0.0.1'),
        port: int('WXSYNC_ADMIN_PORT', 8081, 0, 65535),
        token: adminToken,
        tokenFile: path.join(dataDir, 'admin-token'),
        endpointFile: path.join(dataDir, 'admin.json'),
      },
      maxConnections: int('WXSYNC_HTTP_MAX_CONNECTIONS', 1024, 1, 1_000_000),
    },
    callback: {
      spoolDir: path.resolve(cwd, str('WXSYNC_SPOOL_DIR', path.join(dataDir, 'spool'))),
      maxClockSkewMs: int('WXSYNC_CALLBACK_MAX_SKEW_S', 300, 1, 86_400) * 1000,
      bodyMaxBytes: int('WXSYNC_CALLBACK_BODY_MAX_BYTES', 64 * 1024, 1024, 4 * 1024 * 1024),
      produceTimeoutMs: int('WXSYNC_CALLBACK_PRODUCE_TIMEOUT_MS', 1500, 10, 4000),
      dedupeWindowMs: int('WXSYNC_CALLBACK_DEDUPE_WINDOW_S', 600, 1, 86_400) * 1000,
      spoolMaxBytes: int('WXSYNC_CALLBACK_SPOOL_MAX_BYTES', 1024 ** 3, 1024 ** 2, 1024 ** 4),
    },
    snapshot: {
      dir: path.resolve(cwd, str('WXSYNC_SNAPSHOT_DIR', path.join(dataDir, 'snapshots'))),
      concurrency: int('WXSYNC_SNAPSHOT_CONCURRENCY', 4, 1, 1000),
      // Kafka's group session timeout, within the broker's default bounds (6 s to 30 min).
      leaseTtlMs: int('WXSYNC_SNAPSHOT_LEASE_TTL_S', 10, 6, 1800) * 1000,
      leaseGroupPrefix: `${prefix}wxsync-snapshot-lease.`,
      resumeMaxAgeMs: int('WXSYNC_SNAPSHOT_RESUME_MAX_AGE_S', 3600, 0, 7 * 24 * 3600) * 1000,
      userGetDailyQuota: int('WXSYNC_USER_GET_DAILY_QUOTA', 500, 1, 100_000_000),
      batchgetConcurrency: int('WXSYNC_BATCHGET_CONCURRENCY', 4, 1, 64),
      // At least two: a comparison reads the last two complete snapshots.
      keep: int('WXSYNC_SNAPSHOT_KEEP', 7, 2, 10_000),
      overdueMs: int('WXSYNC_SNAPSHOT_OVERDUE_S', 3600, 0, 7 * 24 * 3600) * 1000,
    },
    sentinel: {
      intervalMs: sentinelIntervalS * 1000,
      settleMs: int('WXSYNC_SENTINEL_SETTLE_S', 20, 0, 600) * 1000,
      followTimeoutMs: int('WXSYNC_SENTINEL_FOLLOW_TIMEOUT_S', 1800, 10, 86_400) * 1000,
    },
    reconcile: {
      windowMarginMs: int('WXSYNC_RECONCILE_WINDOW_MARGIN_S', 60, 0, 86_400) * 1000,
      graceMs: int('WXSYNC_RECONCILE_GRACE_S', 30, 0, 3600) * 1000,
      maxStaleShare: share('WXSYNC_RECONCILE_MAX_STALE_SHARE', 0.05),
      loadTimeoutMs: int('WXSYNC_RECONCILE_LOAD_TIMEOUT_S', 600, 1, 86_400) * 1000,
      pollMs: int('WXSYNC_RECONCILE_POLL_S', 10, 1, 3600) * 1000,
    },
    reports: { tz: reportTz, refreshTimeoutMs: int('WXSYNC_REPORT_REFRESH_TIMEOUT_S', 600, 1, 86_400) * 1000 },
    alerts: {
      webhooks: webhooks === undefined ? [] : parseWebhooks(webhooks, new Set(accounts.map((a) => a.appid)), problems),
      evalMs: int('WXSYNC_ALERT_EVAL_S', 15, 1, 3600) * 1000,
      lostShare: share('WXSYNC_ALERT_LOST_SHARE', 0.001),
      lostCount: int('WXSYNC_ALERT_LOST_COUNT', 100, 1, 1_000_000_000),
      spoolMs: int('WXSYNC_ALERT_SPOOL_MINUTES', 5, 1, 1440) * 60_000,
      stuckMs: int('WXSYNC_ALERT_STUCK_MINUTES', 5, 1, 1440) * 60_000,
      quotaShare: share('WXSYNC_ALERT_QUOTA_SHARE', 0.1),
      refusedPerMinute: int('WXSYNC_ALERT_REFUSED_PER_MIN', 30, 1, 1_000_000_000),
      resolveHoldMs: int('WXSYNC_ALERT_RESOLVE_HOLD_S', 60, 0, 86_400) * 1000,
      messagesPerMinute: int('WXSYNC_ALERT_MESSAGES_PER_MIN', 5, 1, 600),
      datacubeEveryMs: int('WXSYNC_ALERT_DATACUBE_HOURS', 24, 0, 24 * 30) * 3_600_000,
      delivery: {
        timeoutMs: int('WXSYNC_ALERT_TIMEOUT_MS', 5000, 100, 60_000),
        attempts: int('WXSYNC_ALERT_ATTEMPTS', 6, 1, 100),
        retryInitialMs: alertRetryInitialMs,
        retryMaxMs: alertRetryMaxMs,
        queueMax: int('WXSYNC_ALERT_QUEUE_MAX', 100, 1, 100_000),
      },
    },
    wechatApiBase: wechatApiBase.replace(/\/+$/, ''),
    accounts,
  };
  if (problems.length > 0) {
    throw new WxsyncError(ErrorCode.ConfigInvalid, `invalid configuration:\n  - ${problems.join('\n  - ')}`, {
      details: { problems },
    });
  }
  return config;
}

const ACCOUNTS_FILE_MAX_BYTES = 1 << 20;

/** The JSON a file named by `variable` holds (the accounts, the alert webhooks), or undefined with the problem listed. */
function readJsonFile(variable: string, file: string, problems: string[]): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    problems.push(`${variable}: cannot read ${file}: ${(error as Error).message}`);
    return undefined;
  }
  if (Buffer.byteLength(text) > ACCOUNTS_FILE_MAX_BYTES) {
    problems.push(`${variable}: ${file} is larger than ${ACCOUNTS_FILE_MAX_BYTES} bytes`);
    return undefined;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    problems.push(`${variable}: ${file} is not JSON: ${(error as Error).message}`);
    return undefined;
  }
}

function readAccounts(file: string, problems: string[]): Account[] {
  const parsed = readJsonFile('WXSYNC_ACCOUNTS', file, problems);
  return parsed === undefined ? [] : parseAccounts(parsed, problems);
}

/** Validates the accounts array; exported for tests of hostile account files. */
export function parseAccounts(value: unknown, problems: string[]): Account[] {
  const accounts: Account[] = [];
  const seen = new Set<string>();
  for (const { where, record } of configRecords(value, 'WXSYNC_ACCOUNTS', 'accounts', problems)) {
    const problemsBefore = problems.length;
    const text = (key: string, required: boolean, pattern?: RegExp): string | undefined => {
      const v = record[key];
      if (v === undefined && !required) return undefined;
      if (typeof v !== 'string' || v === '' || (pattern !== undefined && !pattern.test(v))) {
        problems.push(`${where}.${key} must be ${pattern === undefined ? 'a non-empty string' : `a string matching ${pattern.source}`}`);
        return undefined;
      }
      return v;
    };
    const appid = text('appid', true, APPID);
    const name = text('name', false, /^[^\p{Cc}]{1,64}$/u);
    const secret = text('secret', true);
    const token = text('token', true, /^[A-Za-z0-9]{3,32}$/);
    const encodingAESKey = text('encodingAESKey', false, /^[A-Za-z0-9+/]{43}$/);
    const previousEncodingAESKey = text('previousEncodingAESKey', false, /^[A-Za-z0-9+/]{43}$/);
    const givenMode = CALLBACK_MODES.find((m) => m === record['mode']);
    if (record['mode'] !== undefined && givenMode === undefined) problems.push(`${where}.mode must be one of ${CALLBACK_MODES.join(', ')}`);
    const mode = callbackModeOf({ mode: givenMode, encodingAESKey });
    // Checked against the key as given: a malformed key is reported once, above, not again here.
    if (mode !== 'plain' && record['encodingAESKey'] === undefined) problems.push(`${where}.mode ${mode} needs an encodingAESKey`);
    const cronText = (key: 'snapshotCron' | 'reconcileCron'): string | undefined => {
      const expression = text(key, false);
      if (expression === undefined || cron.validate(expression)) return expression;
      problems.push(`${where}.${key} is not a valid cron expression: ${JSON.stringify(expression)}`);
      return undefined;
    };
    const snapshotCron = cronText('snapshotCron');
    const reconcileCron = cronText('reconcileCron');
    if (appid !== undefined && seen.has(appid)) problems.push(`${where}.appid ${appid} appears twice`);
    if (appid === undefined || secret === undefined || token === undefined || problems.length > problemsBefore) continue;
    seen.add(appid);
    accounts.push({
      appid,
      ...(name === undefined ? {} : { name }),
      secret,
      token,
      ...(encodingAESKey === undefined ? {} : { encodingAESKey }),
      ...(previousEncodingAESKey === undefined ? {} : { previousEncodingAESKey }),
      ...(snapshotCron === undefined ? {} : { snapshotCron }),
      ...(reconcileCron === undefined ? {} : { reconcileCron }),
      mode,
    });
  }
  return accounts;
}
