import type { Account } from '../../lib/config.ts';
import { ErrorCode, isWxsyncError } from '../../lib/errors.ts';
import { decodeEncodingAESKey, decryptMessage, msgSignature, plainSignature, signatureMatches } from '../../lib/wechat/crypto.ts';
import { parseXmlFields } from './parse.ts';
import { Rejection, reject } from './rejection.ts';

/**
 * Authentication of a push (wechat-protocol.md §5.1, §6): query + body → the verified plaintext XML, or a
 * rejection. Pure apart from the AES work; the clock is an argument.
 */

export interface AccountKeys {
  readonly account: Account;
  /** Current EncodingAESKey first, then the previous one, accepted during a key rotation (§6.2). */
  readonly aesKeys: readonly Buffer[];
}

export function accountKeys(account: Account): AccountKeys {
  const encoded = [account.encodingAESKey, account.previousEncodingAESKey].filter((k): k is string => k !== undefined);
  return { account, aesKeys: encoded.map(decodeEncodingAESKey) };
}

export interface VerifyInput {
  readonly keys: AccountKeys | undefined;
  readonly query: URLSearchParams;
  readonly nowMs: number;
  readonly maxClockSkewMs: number;
}

const TIMESTAMP = /^\d{1,12}$/;

function checkCommon(input: VerifyInput): { keys: AccountKeys; timestamp: string; nonce: string } | Rejection {
  const { keys, query } = input;
  if (keys === undefined) return reject(404, 'unknown_appid', 'no account with this appid is configured');
  const timestamp = query.get('timestamp') ?? '';
  const nonce = query.get('nonce') ?? '';
  if (timestamp === '' || nonce === '') return reject(400, 'missing_query', 'timestamp and nonce are required');
  if (!TIMESTAMP.test(timestamp)) return reject(400, 'missing_query', 'timestamp is not a Unix time in seconds');
  return { keys, timestamp, nonce };
}

// Checked after the signature, so an unauthenticated caller learns nothing about our clock.
function checkFresh(input: VerifyInput, timestamp: string): Rejection | undefined {
  if (Math.abs(Number(timestamp) * 1000 - input.nowMs) > input.maxClockSkewMs) {
    return reject(403, 'stale_timestamp', 'timestamp is outside the accepted window');
  }
  return undefined;
}

/** GET URL verification: the `echostr` to echo, or a rejection. */
export function verifyUrl(input: VerifyInput): { readonly echostr: string } | Rejection {
  const common = checkCommon(input);
  if (common instanceof Rejection) return common;
  const signature = input.query.get('signature') ?? '';
  const echostr = input.query.get('echostr');
  if (signature === '' || echostr === null) return reject(400, 'missing_query', 'signature and echostr are required');
  if (!signatureMatches(plainSignature(common.keys.account.token, common.timestamp, common.nonce), signature)) {
    return reject(403, 'bad_signature', 'signature does not match');
  }
  return checkFresh(input, common.timestamp) ?? { echostr };
}

/** POST delivery in plain, compat or safe mode: the authenticated plaintext XML, or a rejection. */
export function verifyPush(input: VerifyInput, body: string): { readonly xml: string } | Rejection {
  const common = checkCommon(input);
  if (common instanceof Rejection) return common;
  const { keys, timestamp, nonce } = common;
  const token = keys.account.token;
  const encryptType = input.query.get('encrypt_type') ?? 'raw';

  if (encryptType === 'raw') {
    const signature = input.query.get('signature') ?? '';
    if (signature === '') return reject(400, 'missing_query', 'signature is required');
    if (!signatureMatches(plainSignature(token, timestamp, nonce), signature)) return reject(403, 'bad_signature', 'signature does not match');
    return checkFresh(input, timestamp) ?? { xml: body };
  }
  if (encryptType !== 'aes') return reject(400, 'missing_query', 'encrypt_type must be raw or aes');

  // Compat and safe mode alike: only the Encrypt element is authenticated, so only its plaintext is used
  // (a compat body's cleartext copy of the fields is ignored).
  const given = input.query.get('msg_signature') ?? '';
  if (given === '') return reject(400, 'missing_query', 'msg_signature is required with encrypt_type=aes');
  const outer = parseXmlFields(body);
  if (outer instanceof Rejection) return outer;
  const encrypt = outer['Encrypt'] ?? '';
  if (encrypt === '') return reject(400, 'missing_field', 'missing Encrypt');
  if (!signatureMatches(msgSignature(token, timestamp, nonce, encrypt), given)) {
    return reject(403, 'bad_msg_signature', 'msg_signature does not match');
  }
  const stale = checkFresh(input, timestamp);
  if (stale !== undefined) return stale;
  if (keys.aesKeys.length === 0) return reject(400, 'no_key', 'encrypted push, but no EncodingAESKey is configured for this account');
  try {
    return { xml: decryptMessage(encrypt, keys.aesKeys, keys.account.appid) };
  } catch (error) {
    if (isWxsyncError(error, ErrorCode.CallbackAppidMismatch)) return reject(403, 'appid_mismatch', 'the message was encrypted for another appid');
    if (isWxsyncError(error)) return reject(400, 'decrypt_failed', 'the Encrypt value cannot be decrypted');
    throw error;
  }
}
