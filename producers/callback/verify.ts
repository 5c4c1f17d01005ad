import { callbackModeOf, type Account, type CallbackMode } from '../../lib/config.ts';
import { ErrorCode, isWxsyncError } from '../../lib/errors.ts';
import { decodeEncodingAESKey, decryptMessage, MAX_ENCRYPTED_CHARS, msgSignature, plainSignature, signatureMatches } from '../../lib/wechat/crypto.ts';
import { parseXmlFields, type XmlFields } from './parse.ts';
import { Rejection, reject } from './rejection.ts';

/**
 * Authentication of a push (wechat-protocol.md §5.1, §6): query + body → the verified plaintext XML, or a
 * rejection. Pure apart from the AES work; the clock is an argument.
 *
 * Nothing unauthenticated reaches an XML parser: a plain push's signature is checked from the query alone
 * (before its body is even read), and an encrypted push's msg_signature over an Encrypt value found by a
 * bounded string scan; only then is any XML parsed.
 */

export interface AccountKeys {
  readonly account: Account;
  readonly mode: CallbackMode;
  /** Current EncodingAESKey first, then the previous one, accepted during a key rotation (§6.2). */
  readonly aesKeys: readonly Buffer[];
}

export function accountKeys(account: Account): AccountKeys {
  const encoded = [account.encodingAESKey, account.previousEncodingAESKey].filter((k): k is string => k !== undefined);
  return { account, mode: callbackModeOf(account), aesKeys: encoded.map(decodeEncodingAESKey) };
}

export interface VerifyInput {
  readonly keys: AccountKeys | undefined;
  readonly query: URLSearchParams;
  readonly nowMs: number;
  readonly maxClockSkewMs: number;
}

/** How to read an XML document: parseXmlFields, or a test's spy. */
export type XmlReader = (xml: string) => XmlFields | Rejection;

const TIMESTAMP = /^\d{1,12}$/;

function checkCommon(input: VerifyInput): { keys: AccountKeys; timestamp: string; nonce: string } | Rejection {
  const { keys, query } = input;
  if (keys === undefined) return reject('unknown_appid');
  const timestamp = query.get('timestamp') ?? '';
  const nonce = query.get('nonce') ?? '';
  if (!TIMESTAMP.test(timestamp) || nonce === '') return reject('missing_query');
  return { keys, timestamp, nonce };
}

function outsideWindow(seconds: number, input: Pick<VerifyInput, 'nowMs' | 'maxClockSkewMs'>): boolean {
  return Math.abs(seconds * 1000 - input.nowMs) > input.maxClockSkewMs;
}

// Checked after the signature, so an unauthenticated caller learns nothing about our clock.
function checkFresh(input: VerifyInput, timestamp: string): Rejection | undefined {
  return outsideWindow(Number(timestamp), input) ? reject('stale_timestamp') : undefined;
}

/**
 * The message's own CreateTime, either way from our clock. The query's `timestamp` is WeChat's signing time,
 * and in plain mode the signature covers nothing else: a captured URL can carry any body for the window's
 * length, so a body claiming another time (a year ahead, an old event replayed) is refused too.
 */
export function checkCreateTime(createTimeSeconds: number, input: Pick<VerifyInput, 'nowMs' | 'maxClockSkewMs'>): Rejection | undefined {
  return outsideWindow(createTimeSeconds, input) ? reject('stale_create_time') : undefined;
}

/** GET URL verification: the `echostr` to echo, or a rejection. Plaintext in every mode (§5.1). */
export function verifyUrl(input: VerifyInput): { readonly echostr: string } | Rejection {
  const common = checkCommon(input);
  if (common instanceof Rejection) return common;
  const signature = input.query.get('signature') ?? '';
  const echostr = input.query.get('echostr');
  if (signature === '' || echostr === null) return reject('missing_query');
  if (!signatureMatches(plainSignature(common.keys.account.token, common.timestamp, common.nonce), signature)) {
    return reject('bad_signature');
  }
  return checkFresh(input, common.timestamp) ?? { echostr };
}

/** What the query of a POST decided: a plain push already authenticated, or an encrypted one to open. */
export type PushPlan =
  | { readonly kind: 'plain'; readonly keys: AccountKeys }
  | { readonly kind: 'encrypted'; readonly keys: AccountKeys; readonly timestamp: string; readonly nonce: string; readonly msgSignature: string };

/** Step 1 of a POST, from the query alone: the account's mode, and in plain mode the signature and window. */
export function checkPushQuery(input: VerifyInput): PushPlan | Rejection {
  const common = checkCommon(input);
  if (common instanceof Rejection) return common;
  const { keys, timestamp, nonce } = common;
  const encryptType = input.query.get('encrypt_type') ?? 'raw';
  const given = input.query.get('msg_signature') ?? '';
  // The downgrade: a compat or safe account never takes a push that only `signature` vouches for (§6.1).
  if (keys.mode !== 'plain' && (encryptType !== 'aes' || given === '')) return reject('unencrypted_push');
  if (encryptType === 'aes') {
    if (given === '') return reject('missing_query');
    return { kind: 'encrypted', keys, timestamp, nonce, msgSignature: given };
  }
  if (encryptType !== 'raw') return reject('missing_query');
  const signature = input.query.get('signature') ?? '';
  if (signature === '') return reject('missing_query');
  if (!signatureMatches(plainSignature(keys.account.token, timestamp, nonce), signature)) return reject('bad_signature');
  return checkFresh(input, timestamp) ?? { kind: 'plain', keys };
}

const ENCRYPT_OPEN = '<Encrypt>';
const ENCRYPT_CLOSE = '</Encrypt>';
const CDATA_OPEN = '<![CDATA[';
const CDATA_CLOSE = ']]>';
/**
 * `<Encrypt>` tags looked at, at most. A genuine body has one; a compat body's cleartext copy of a user's
 * message may mimic a few before or after it. Bounding the tags (not the values found) keeps the scan linear
 * in the body: each tag costs one forward search.
 */
const MAX_ENCRYPT_TAGS = 4;

/**
 * The values of `<Encrypt>` elements, found without parsing: the text between `<Encrypt>` and the next
 * `</Encrypt>`, unwrapped from one CDATA section. Only the value msg_signature vouches for is used, and the
 * parser must later read the same value from the same body, so a value this scan gets "wrong" is refused,
 * never misread.
 */
export function encryptCandidates(body: string): string[] {
  const found: string[] = [];
  let open = body.indexOf(ENCRYPT_OPEN);
  for (let tags = 0; open >= 0 && tags < MAX_ENCRYPT_TAGS; tags += 1) {
    const start = open + ENCRYPT_OPEN.length;
    const close = body.indexOf(ENCRYPT_CLOSE, start);
    if (close < 0) break;
    const raw = body.slice(start, close);
    const value = raw.startsWith(CDATA_OPEN) && raw.endsWith(CDATA_CLOSE) ? raw.slice(CDATA_OPEN.length, -CDATA_CLOSE.length) : raw.trim();
    if (value !== '' && value.length <= MAX_ENCRYPTED_CHARS) found.push(value);
    open = body.indexOf(ENCRYPT_OPEN, start);
  }
  return found;
}

const SAFE_ENVELOPE = new Set(['ToUserName', 'Encrypt']);

/**
 * Step 2 of an encrypted push: msg_signature over the Encrypt value (§6.4), the window, and only then the
 * envelope (parsed, so its Encrypt must be the value verified, and in safe mode it may carry no cleartext
 * copy of the message), then the cipher. A compat body's cleartext fields are never used: only the Encrypt
 * element is authenticated.
 */
export function openEncrypted(plan: Extract<PushPlan, { kind: 'encrypted' }>, input: VerifyInput, body: string, parse: XmlReader = parseXmlFields): { readonly xml: string } | Rejection {
  const { keys, timestamp, nonce } = plan;
  const candidates = encryptCandidates(body);
  if (candidates.length === 0) return reject('missing_field');
  const encrypt = candidates.find((c) => signatureMatches(msgSignature(keys.account.token, timestamp, nonce, c), plan.msgSignature));
  if (encrypt === undefined) return reject('bad_msg_signature');
  const stale = checkFresh(input, timestamp);
  if (stale !== undefined) return stale;

  const envelope = parse(body);
  if (envelope instanceof Rejection) return envelope;
  if (envelope['Encrypt'] !== encrypt) return reject('bad_envelope');
  if (keys.mode === 'safe' && Object.keys(envelope).some((name) => !SAFE_ENVELOPE.has(name))) return reject('plaintext_in_safe_mode');

  if (keys.aesKeys.length === 0) return reject('no_key');
  try {
    return { xml: decryptMessage(encrypt, keys.aesKeys, keys.account.appid) };
  } catch (error) {
    if (isWxsyncError(error, ErrorCode.CallbackAppidMismatch)) return reject('appid_mismatch');
    if (isWxsyncError(error)) return reject('decrypt_failed');
    throw error;
  }
}

/** Both steps at once, for a body already read: the authenticated plaintext XML, or a rejection. */
export function verifyPush(input: VerifyInput, body: string, parse: XmlReader = parseXmlFields): { readonly xml: string } | Rejection {
  const plan = checkPushQuery(input);
  if (plan instanceof Rejection) return plan;
  return plan.kind === 'plain' ? { xml: body } : openEncrypted(plan, input, body, parse);
}
