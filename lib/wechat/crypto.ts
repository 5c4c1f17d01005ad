/**
 * WeChat callback signatures and the safe/compatible-mode message cipher (wechat-protocol.md §5–§6).
 *
 * Every failure is a WxsyncError with a CALLBACK_* code. Messages name what was wrong with the input,
 * never any key material, so they are safe to log.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual, type Decipher } from 'node:crypto';
import { ErrorCode, WxsyncError } from '../errors.ts';

const KEY_BYTES = 32;
const IV_BYTES = 16;
const RANDOM_BYTES = 16;
const LENGTH_BYTES = 4;
const HEADER_BYTES = RANDOM_BYTES + LENGTH_BYTES;
// WeChat pads to 32-byte blocks although AES itself uses 16 (§6.3).
const PAD_BLOCK = 32;
const AES_BLOCK = 16;

/**
 * Real pushes are a few KiB; the cap keeps a hostile (or signature-forged, if the caller checks late) body
 * from making us decode and decrypt megabytes per request.
 */
export const MAX_ENCRYPTED_CHARS = 1024 * 1024;

const ENCODING_AES_KEY = /^[A-Za-z0-9+/]{43}$/;
// Node's base64 decoder silently skips characters outside the alphabet, so the alphabet is checked first:
// a character outside it, or `=` anywhere but in a trailing run of at most two. Searching for the first bad
// character costs a third of matching the whole string against the alphabet.
const NOT_BASE64 = /[^A-Za-z0-9+/=]|=[^=]|={3}/;
/**
 * A signature is a SHA-1 in lowercase hex, the one form WeChat sends. Accepting other spellings of the same
 * bytes (Buffer.from(…, 'hex') ignores case) would let a request whose signature was altered still pass as
 * the original: only the canonical form counts.
 */
const HEX = /^[0-9a-f]+$/;

// ignoreBOM keeps a leading U+FEFF in the message instead of silently dropping it.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Where a UTF-16 unit's character falls in UTF-8 (code point) order: surrogates, of astral characters, last. */
function utf8Rank(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  return unit >= 0xd800 ? unit + 0x2000 : unit;
}

/**
 * The order of the strings' UTF-8 bytes, which the protocol sorts by (§5.1). JS's default sort compares
 * UTF-16 units, which differs for astral characters; this compares the units with surrogates ranked above
 * the rest of the BMP, without encoding each string first (a push's Encrypt value is hundreds of bytes).
 */
function utf8Order(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return utf8Rank(x) - utf8Rank(y);
  }
  return a.length - b.length;
}

function sha1OfSorted(parts: readonly string[]): string {
  const hash = createHash('sha1');
  for (const part of [...parts].sort(utf8Order)) hash.update(part, 'utf8');
  return hash.digest('hex');
}

export function plainSignature(token: string, timestamp: string, nonce: string): string {
  return sha1OfSorted([token, timestamp, nonce]);
}

export function msgSignature(token: string, timestamp: string, nonce: string, encrypt: string): string {
  return sha1OfSorted([token, timestamp, nonce, encrypt]);
}

export function signatureMatches(expected: string, given: string): boolean {
  // Query values reach us from untrusted input; a caller's cast must not turn into a throw.
  if (typeof expected !== 'string' || typeof given !== 'string') return false;
  if (expected.length === 0 || expected.length !== given.length || expected.length % 2 !== 0) return false;
  if (!HEX.test(expected) || !HEX.test(given)) return false;
  return timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(given, 'hex'));
}

export function decodeEncodingAESKey(encodingAESKey: string): Buffer {
  if (typeof encodingAESKey !== 'string' || !ENCODING_AES_KEY.test(encodingAESKey)) {
    throw new WxsyncError(
      ErrorCode.CallbackKeyInvalid,
      'EncodingAESKey must be exactly 43 characters of the base64 alphabet (as shown in the WeChat console)',
    );
  }
  // Lenient on purpose: most real keys have non-zero spare bits in the last symbol (§6.2), which Node's
  // decoder ignores, as WeChat's own SDKs do.
  const key = Buffer.from(`${encodingAESKey}=`, 'base64');
  if (key.length !== KEY_BYTES) {
    throw new WxsyncError(ErrorCode.CallbackKeyInvalid, `EncodingAESKey decodes to ${key.length} bytes, expected ${KEY_BYTES}`);
  }
  return key;
}

function assertKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) {
    throw new WxsyncError(ErrorCode.CallbackKeyInvalid, `an AES key must be ${KEY_BYTES} bytes (use decodeEncodingAESKey)`);
  }
}

export function encryptMessage(plaintext: string, key: Buffer, appid: string, random: Buffer = randomBytes(RANDOM_BYTES)): string {
  assertKey(key);
  if (random.length !== RANDOM_BYTES) {
    throw new RangeError(`the random prefix must be ${RANDOM_BYTES} bytes, got ${random.length}`);
  }
  const msg = Buffer.from(plaintext, 'utf8');
  const length = Buffer.alloc(LENGTH_BYTES);
  length.writeUInt32BE(msg.length);
  const body = Buffer.concat([random, length, msg, Buffer.from(appid, 'utf8')]);
  // A full block of padding when already aligned, so the last byte always states the pad length.
  const pad = PAD_BLOCK - (body.length % PAD_BLOCK);
  const padded = Buffer.concat([body, Buffer.alloc(pad, pad)]);
  const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, IV_BYTES));
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(padded), cipher.final()]).toString('base64');
}

interface Failure {
  readonly code: ErrorCode;
  readonly reason: string;
}
type Attempt = { readonly ok: true; readonly message: string } | ({ readonly ok: false } & Failure);

function fail(reason: string): Attempt {
  return { ok: false, code: ErrorCode.CallbackDecryptFailed, reason };
}

function decodeCiphertext(encrypt: string): Buffer {
  const refuse = (reason: string): WxsyncError => new WxsyncError(ErrorCode.CallbackDecryptFailed, `cannot decrypt the callback: ${reason}`);
  if (typeof encrypt !== 'string' || encrypt.length === 0) throw refuse('the Encrypt value is empty');
  if (encrypt.length > MAX_ENCRYPTED_CHARS) {
    throw refuse(`the Encrypt value is ${encrypt.length} characters, more than the ${MAX_ENCRYPTED_CHARS} accepted`);
  }
  if (encrypt.length % 4 !== 0 || NOT_BASE64.test(encrypt)) throw refuse('the Encrypt value is not standard base64');
  const data = Buffer.from(encrypt, 'base64');
  if (data.length === 0 || data.length % AES_BLOCK !== 0) {
    throw refuse(`the ciphertext is ${data.length} bytes, not a non-zero multiple of ${AES_BLOCK}`);
  }
  return data;
}

/** Kept for the life of each key Buffer (see cbcDecrypt). */
const ecbDeciphers = new WeakMap<Buffer, Decipher>();

/**
 * AES-256-CBC decryption with the key's first 16 bytes as IV (§6.3), as ECB plus CBC's chaining: the IV
 * never changes for a key, so one ECB decipher per key serves every message, where creating a CBC decipher
 * per message was the largest cost of a push. With padding off, ECB keeps no state between updates of whole
 * blocks; a partial block would stay behind in the shared decipher and garble the next message, hence the
 * check (decodeCiphertext already refuses such input).
 */
function cbcDecrypt(data: Buffer, key: Buffer): Buffer {
  if (data.length % AES_BLOCK !== 0) throw new RangeError(`a ciphertext must be whole ${AES_BLOCK}-byte blocks`);
  let ecb = ecbDeciphers.get(key);
  if (ecb === undefined) {
    ecb = createDecipheriv('aes-256-ecb', key, null);
    ecb.setAutoPadding(false);
    ecbDeciphers.set(key, ecb);
  }
  const plain = ecb.update(data);
  for (let i = plain.length - 1; i >= AES_BLOCK; i--) plain[i] = (plain[i] ?? 0) ^ (data[i - AES_BLOCK] ?? 0);
  for (let i = 0; i < IV_BYTES; i++) plain[i] = (plain[i] ?? 0) ^ (key[i] ?? 0);
  return plain;
}

function tryKey(data: Buffer, key: Buffer, expectedAppid: Buffer): Attempt {
  const padded = cbcDecrypt(data, key);

  // A wrong key almost always fails here or at the length check, so those read as "decrypt failed"
  // rather than as an appid mismatch.
  const pad = padded[padded.length - 1] ?? 0;
  if (pad < 1 || pad > PAD_BLOCK || pad > padded.length) return fail('bad padding (wrong key or corrupted ciphertext)');
  for (let i = padded.length - pad; i < padded.length; i++) {
    if (padded[i] !== pad) return fail('bad padding (wrong key or corrupted ciphertext)');
  }
  const content = padded.subarray(0, padded.length - pad);
  if (content.length < HEADER_BYTES) return fail('the decrypted payload is too short');
  const msgLength = content.readUInt32BE(RANDOM_BYTES);
  if (msgLength > content.length - HEADER_BYTES) return fail('the decrypted length prefix exceeds the payload');

  const msgEnd = HEADER_BYTES + msgLength;
  let message: string;
  try {
    message = strictUtf8.decode(content.subarray(HEADER_BYTES, msgEnd));
  } catch {
    return fail('the decrypted message is not valid UTF-8');
  }
  if (!content.subarray(msgEnd).equals(expectedAppid)) {
    // The appid the sender used is not secret, but it is attacker-influenced; keep it out of the message.
    return { ok: false, code: ErrorCode.CallbackAppidMismatch, reason: 'the message was encrypted for another AppID' };
  }
  return { ok: true, message };
}

export function decryptMessage(encrypt: string, keys: readonly Buffer[], expectedAppid: string): string {
  if (keys.length === 0) throw new WxsyncError(ErrorCode.CallbackKeyInvalid, 'no AES key is configured');
  for (const key of keys) assertKey(key);
  const data = decodeCiphertext(encrypt);
  const appid = Buffer.from(expectedAppid, 'utf8');

  let mismatch: Failure | undefined;
  let failure: Failure | undefined;
  for (const key of keys) {
    const attempt = tryKey(data, key, appid);
    if (attempt.ok) return attempt.message;
    // A structurally valid decryption with a foreign appid is more telling than another key's garbage,
    // so it is what gets reported if no key succeeds.
    if (attempt.code === ErrorCode.CallbackAppidMismatch) mismatch ??= attempt;
    else failure ??= attempt;
  }
  const reported = mismatch ?? failure ?? { code: ErrorCode.CallbackDecryptFailed, reason: 'no key fits' };
  throw new WxsyncError(reported.code, `cannot decrypt the callback: ${reported.reason}`, { details: { keysTried: keys.length } });
}
