/**
 * The one error type of wxsync. Callers branch on `code` (stable, documented) and `retriable`,
 * never on `message`, which is for humans and may change.
 */
export const ErrorCode = {
  ConfigInvalid: 'CONFIG_INVALID',
  RecordUndecodable: 'RECORD_UNDECODABLE',
  RecordInvalid: 'RECORD_INVALID',
  /** A record that passed its contract but ClickHouse refuses deterministically (a constraint, a value it cannot parse). */
  RecordRefused: 'RECORD_REFUSED',
  KafkaUnavailable: 'KAFKA_UNAVAILABLE',
  KafkaRequestFailed: 'KAFKA_REQUEST_FAILED',
  ClickHouseFailed: 'CLICKHOUSE_FAILED',
  MigrationFailed: 'MIGRATION_FAILED',
  KafkaLocalFailed: 'KAFKA_LOCAL_FAILED',
  UsageInvalid: 'USAGE_INVALID',
  ShuttingDown: 'SHUTTING_DOWN',
  // Callback verification and decryption (lib/wechat/crypto.ts, producers/callback).
  CallbackSignatureInvalid: 'CALLBACK_SIGNATURE_INVALID',
  CallbackKeyInvalid: 'CALLBACK_KEY_INVALID',
  CallbackDecryptFailed: 'CALLBACK_DECRYPT_FAILED',
  CallbackAppidMismatch: 'CALLBACK_APPID_MISMATCH',
  // WeChat API answers (lib/wechat): see wechat-protocol.md §7 for which code maps where.
  WechatBusy: 'WECHAT_BUSY',
  WechatRateLimited: 'WECHAT_RATE_LIMITED',
  WechatQuotaExhausted: 'WECHAT_QUOTA_EXHAUSTED',
  WechatTokenInvalid: 'WECHAT_TOKEN_INVALID',
  WechatForbidden: 'WECHAT_FORBIDDEN',
  WechatRequestInvalid: 'WECHAT_REQUEST_INVALID',
  WechatApiError: 'WECHAT_API_ERROR',
  WechatUnreachable: 'WECHAT_UNREACHABLE',
  WechatBadAnswer: 'WECHAT_BAD_ANSWER',
  /** 48001 from datacube: WeChat gives its own follower figures to verified accounts only (lib/wechat/datacube.ts). */
  WechatAccountUnverified: 'WECHAT_ACCOUNT_UNVERIFIED',
  // The callback producer's local spool (producers/callback/spool.ts).
  SpoolFailed: 'SPOOL_FAILED',
  /** The spool is at WXSYNC_CALLBACK_SPOOL_MAX_BYTES: the push is answered 503 and WeChat retries it. */
  SpoolFull: 'SPOOL_FULL',
  // Reconcile (producers/reconcile) and the API the CLI reaches a running `wxsync run` through.
  StoreBehind: 'STORE_BEHIND',
  ApiRequestFailed: 'API_REQUEST_FAILED',
  // A Kafka group lease (one snapshot per account) taken away while held.
  LeaseLost: 'LEASE_LOST',
  /** A snapshot a comparison needs exists but cannot be read: dropped by retention, incomplete, not loaded, running. */
  SnapshotUnavailable: 'SNAPSHOT_UNAVAILABLE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface WxsyncErrorOptions {
  readonly retriable?: boolean;
  readonly cause?: unknown;
  readonly details?: Readonly<Record<string, unknown>>;
}

export class WxsyncError extends Error {
  override readonly name = 'WxsyncError';
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: WxsyncErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.details = options.details ?? {};
  }
}

export function isWxsyncError(error: unknown, code?: ErrorCode): error is WxsyncError {
  return error instanceof WxsyncError && (code === undefined || error.code === code);
}

/** A one-line description of any thrown value, for logs and DLQ reasons. */
export function describeError(error: unknown): string {
  if (error instanceof WxsyncError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}
