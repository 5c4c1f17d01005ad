/**
 * The webhooks alerts go to (WXSYNC_ALERT_WEBHOOKS): a JSON array, validated strictly and all at once, as the
 * accounts file is. A webhook URL is itself a credential (WeCom's `key`, DingTalk's `access_token`, Feishu's hook
 * id), so a problem names the entry and the field, never the URL or the secret.
 */
import { configRecords } from '../lib/config-records.ts';
import { ALERT_KINDS, isAlertKind, type AlertKind } from './kinds.ts';

export const CHANNELS = ['wecom', 'dingtalk', 'feishu', 'json'] as const;
export type Channel = (typeof CHANNELS)[number];
export const LANGUAGES = ['zh', 'en'] as const;
export type Language = (typeof LANGUAGES)[number];

export interface AlertWebhook {
  readonly type: Channel;
  readonly url: string;
  /** DingTalk's and Feishu's signing secret (their "加签" / "签名校验" setting). */
  readonly secret?: string;
  readonly language: Language;
  /** The accounts whose alerts it gets; undefined: every account's, and the process-wide ones. */
  readonly appids?: readonly string[];
  /** The kinds it gets; undefined: all. */
  readonly kinds?: readonly AlertKind[];
}

/** More webhooks than this is a generated file gone wrong, not a deployment. */
export const MAX_WEBHOOKS = 64;
const KEYS = new Set(['type', 'url', 'secret', 'language', 'appids', 'kinds']);
const SIGNED: ReadonlySet<Channel> = new Set(['dingtalk', 'feishu']);
const MAX_URL_LENGTH = 2048;
const MAX_SECRET_LENGTH = 256;
/** Only hosts that cannot be anyone else's may take alerts in cleartext: the texts name accounts and figures. */
const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

const isChannel = (value: unknown): value is Channel => (CHANNELS as readonly unknown[]).includes(value);
const isLanguage = (value: unknown): value is Language => (LANGUAGES as readonly unknown[]).includes(value);

/** The scheme and host of a webhook URL: all that logs and problems show of it. */
export function webhookHost(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return '(not a URL)';
  }
}

/** Validates the webhooks array against the configured accounts; every problem is listed. */
export function parseWebhooks(value: unknown, appids: ReadonlySet<string>, problems: string[]): AlertWebhook[] {
  const webhooks: AlertWebhook[] = [];
  for (const { where, record } of configRecords(value, 'WXSYNC_ALERT_WEBHOOKS', 'webhooks', problems, MAX_WEBHOOKS)) {
    const before = problems.length;
    // Named by a prefix at most: a misspelt key may be a pasted secret.
    for (const key of Object.keys(record)) if (!KEYS.has(key)) problems.push(`${where} has an unknown field ${JSON.stringify(key.slice(0, 32))}`);
    const type = record['type'];
    if (!isChannel(type)) problems.push(`${where}.type must be one of ${CHANNELS.join(', ')}`);
    const url = urlOf(record['url'], where, problems);
    const secret = record['secret'];
    if (secret !== undefined && (typeof secret !== 'string' || secret === '' || secret.length > MAX_SECRET_LENGTH || /\s/.test(secret))) {
      problems.push(`${where}.secret must be a string of 1 to ${MAX_SECRET_LENGTH} characters without spaces`);
    }
    if (isChannel(type) && secret !== undefined && !SIGNED.has(type)) problems.push(`${where}.secret is for dingtalk and feishu only: ${type} webhooks are not signed`);
    const language = record['language'] ?? (type === 'json' ? 'en' : 'zh');
    if (!isLanguage(language)) problems.push(`${where}.language must be one of ${LANGUAGES.join(', ')}`);
    const listed = <T extends string>(key: string, valid: (v: unknown) => v is T, what: string): T[] | undefined => {
      const list = record[key];
      if (list === undefined) return undefined;
      if (!Array.isArray(list) || list.length === 0) {
        problems.push(`${where}.${key} must be a non-empty array (leave it out for all)`);
        return undefined;
      }
      const bad = list.filter((v) => !valid(v));
      if (bad.length > 0) problems.push(`${where}.${key}: ${bad.slice(0, 5).map((v) => JSON.stringify(String(v).slice(0, 64))).join(', ')} ${bad.length === 1 ? 'is' : 'are'} not ${what}`);
      return list as T[];
    };
    const accounts = listed('appids', (v): v is string => typeof v === 'string' && appids.has(v), 'configured in WXSYNC_ACCOUNTS');
    const kinds = listed('kinds', isAlertKind, `an alert kind (${ALERT_KINDS.join(', ')})`);
    if (problems.length > before || !isChannel(type) || url === undefined || !isLanguage(language)) continue;
    webhooks.push({
      type, url, language,
      ...(typeof secret === 'string' ? { secret } : {}),
      ...(accounts === undefined ? {} : { appids: [...new Set(accounts)] }),
      ...(kinds === undefined ? {} : { kinds: [...new Set(kinds)] }),
    });
  }
  return webhooks;
}

function urlOf(value: unknown, where: string, problems: string[]): string | undefined {
  if (typeof value !== 'string' || value.length > MAX_URL_LENGTH) {
    problems.push(`${where}.url must be a URL of at most ${MAX_URL_LENGTH} characters`);
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push(`${where}.url is not a URL`);
    return undefined;
  }
  if (url.username !== '' || url.password !== '') {
    problems.push(`${where}.url must not hold a user or password`);
    return undefined;
  }
  if (url.protocol === 'https:' || (url.protocol === 'http:' && LOCAL_HOSTS.has(url.hostname))) return value;
  problems.push(`${where}.url must be https (http only to localhost), got ${url.protocol.replace(/:$/, '')} to ${url.hostname.slice(0, 64)}`);
  return undefined;
}
