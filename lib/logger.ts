import { pino, type DestinationStream, type Logger } from 'pino';
import PinoPretty from 'pino-pretty';

export type { Logger };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** What a secret is replaced with, wherever it is found. */
export const REDACTED = '[redacted]';

/**
 * Keys whose values are secrets wherever they sit in a logged object (compared lower-cased, without `_`
 * and `-`): WeChat's signatures and echostr, tokens, AppSecrets, EncodingAESKeys, passwords, credentials.
 */
const SECRET_KEYS = new Set([
  'signature', 'msgsignature', 'echostr',
  'token', 'accesstoken', 'admintoken', 'bearer',
  'secret', 'appsecret', 'password', 'passwd',
  'encodingaeskey', 'previousencodingaeskey', 'aeskey',
  'authorization', 'cookie', 'setcookie', 'credentials',
]);

// `scheme://user:password@host`: everything between `//` and the last `@` before the path is the userinfo.
const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"]*@/gi;
// A secret in a query string or in `name=value` text: a callback URL's signature, msg_signature and echostr,
// an API call's access_token.
// `key` and `sign`: a WeCom robot's URL credential and a DingTalk robot's signature (alerts/webhooks.ts never logs a
// webhook's URL; this is the net if something else does).
const SECRET_PARAM = /(?<![A-Za-z0-9_])(msg_signature|signature|echostr|access_token|token|secret|appsecret|password|encodingAESKey|key|sign)=[^&\s"'#;,]*/gi;
const BEARER = /\bBearer\s+[A-Za-z0-9._~+/=-]{8,}/g;

/** `text` with URL credentials, secret query parameters and bearer tokens replaced. */
export function redactText(text: string): string {
  // The common case, a line with none of the three, costs one scan per pattern and no copy.
  return text
    .replace(URL_USERINFO, `$1${REDACTED}@`)
    .replace(SECRET_PARAM, `$1=${REDACTED}`)
    .replace(BEARER, `Bearer ${REDACTED}`);
}

// A secret key's string or scalar value in a serialized line: the net for what no formatter sees (a child
// logger's bindings are serialized once, by pino, when the child is made).
const SECRET_FIELD = /"((?:msg_?)?signature|echostr|(?:access_?|admin_?)?token|bearer|(?:app_?)?secret|passw(?:or)?d|(?:previous_?)?encoding_?aes_?key|aes_?key|authorization|(?:set-?)?cookie|credentials)":(?:"(?:[^"\\]|\\.)*"|[-0-9.eE+]+|true|false)/gi;

/** A serialized log line with secrets replaced: redactText, and secret keys' values at any depth. */
export function redactLine(line: string): string {
  return redactText(line).replace(SECRET_FIELD, `"$1":"${REDACTED}"`);
}

const MAX_DEPTH = 10;

function isSecretKey(key: string): boolean {
  return SECRET_KEYS.has(key.toLowerCase().replace(/[_-]/g, ''));
}

/**
 * A copy of a value to log with every secret replaced, at any depth: secret keys' values, and URL
 * credentials and secret parameters inside strings. Errors become pino's serialized form (type, message with
 * causes, stack, own fields such as a WxsyncError's code and details) before they are searched.
 */
export function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactText(value);
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (value instanceof Error) return redactValue({ ...pino.stdSerializers.err(value) }, depth + 1);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1));
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return redactValue((value as { toJSON: () => unknown }).toJSON(), depth + 1);
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) copy[key] = isSecretKey(key) && item !== undefined && item !== null ? REDACTED : redactValue(item, depth + 1);
  return copy;
}

const redactFields = (fields: Record<string, unknown>): Record<string, unknown> => redactValue(fields) as Record<string, unknown>;

/**
 * Lines for a person: one a line, local time, level, message, then the fields; an error's stack on its own lines.
 * In this process, not in pino's worker-thread transport, and synchronous: the last lines before an exit are never
 * lost, and a CLI command starts no thread. Every line reaching it was already redacted (see createLogger).
 */
export function prettyDestination(destination: number | NodeJS.WritableStream): DestinationStream {
  return PinoPretty({ destination, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true });
}

/** JSON lines appended to a file, synchronously: a tool that keeps the terminal for its own screen logs there. */
export function fileDestination(file: string): DestinationStream {
  return pino.destination({ dest: file, sync: true, append: true, mkdir: true });
}

/** stderr: readable lines on a terminal, JSON for whatever collects logs otherwise. */
export function stderrDestination(isTTY: boolean = process.stderr.isTTY): DestinationStream {
  return isTTY ? prettyDestination(2) : pino.destination({ fd: 2, sync: true });
}

/**
 * Logs go to stderr: stdout belongs to command output (`followers` prints openids, `sim` prints its ready line),
 * which scripts parse. Writes are synchronous so the last lines before an exit (the shutdown summary, a fatal
 * error) are never lost; wxsync logs per batch, not per record.
 *
 * Secrets never reach the output. pino's own `redact` option matches fixed paths (a key at one depth) and
 * cannot see a signature inside a URL string, so redaction is done here instead: logged objects are copied
 * with secrets replaced (redactValue), and every finished line gets a last pass (redactLine) for what only
 * shows up there: an error's message used as the line's message, a child logger's bindings. Both happen before
 * the destination sees the line, so the terminal's readable lines are redacted like the JSON ones.
 */
export function createLogger(level: LogLevel, name = 'wxsync', destination: DestinationStream = stderrDestination()): Logger {
  return pino({
    name,
    level,
    base: { pid: process.pid },
    formatters: { log: redactFields },
    // Errors were already serialized (and searched) by redactFields; pino's serializer would take the copy
    // for a new error of type Object.
    serializers: { err: (value: unknown) => value },
    hooks: { streamWrite: redactLine },
  }, destination);
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
