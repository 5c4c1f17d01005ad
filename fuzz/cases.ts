/**
 * Hostile and mutated requests for both listeners, from a seed: the same seed gives the same requests. Pure:
 * building them needs one genuine push per case (to mutate), which the caller makes.
 */
import { createHash } from 'node:crypto';

export type Listener = 'public' | 'admin';

export interface RawRequest {
  readonly kind: string;
  readonly listener: Listener;
  readonly method: string;
  /** Sent as is on the request line: may be anything but CR/LF. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /** Declares this many body bytes, sends a few, then stalls until the server gives up. */
  readonly slow?: boolean;
}

/** A genuine signed push (url path with query, body), which the cases below break one way each. */
export interface GenuinePush {
  readonly path: string;
  readonly body: string;
}

const HOSTILE_PATHS = [
  '/wechat/%E0%A4%A', '/wechat/%', '/wechat/%zz', '/wechat/../../etc/passwd', '/wechat/..%2F..%2Fetc', '/wechat//', '/wechat/',
  '/wechat', '/WECHAT/x', '/wechat/\u0000', '/wechat/%00', '/wechat/a?b=%', '/wechat/' + 'a'.repeat(4000), '/api/followers/x', '/metrics',
  '/admin', '/.env', '/readyz/../metrics', '*', 'http://evil/', '/%2e%2e/%2e%2e/', '/wechat/wx\u00e9', '/wechat/😀',
];

function mutateChar(text: string, rnd: () => number): string {
  if (text.length === 0) return 'x';
  const i = Math.floor(rnd() * text.length);
  const replacement = String.fromCharCode(33 + Math.floor(rnd() * 94));
  return text.slice(0, i) + (replacement === text[i] ? '~' : replacement) + text.slice(i + 1);
}

function withQuery(path: string, edit: (q: URLSearchParams) => void): string {
  const [base = '', query = ''] = path.split('?');
  const q = new URLSearchParams(query);
  edit(q);
  return `${base}?${q.toString()}`;
}

const xml = { 'content-type': 'text/xml' };

/** One hostile request of a kind picked by `rnd`, built from `push` (a genuine one) where it needs one. */
export function hostileRequest(rnd: () => number, push: GenuinePush, token: string): RawRequest {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T;
  const post = (kind: string, path: string, body: string | Buffer, headers: Record<string, string> = xml): RawRequest => ({
    kind, listener: 'public', method: 'POST', path, headers, body: Buffer.from(body),
  });
  switch (Math.floor(rnd() * 12)) {
    // The account is in safe mode, where msg_signature (over token, timestamp, nonce and the ciphertext)
    // authenticates a push and the plain `signature` beside it proves nothing: every field it covers is broken.
    case 0: {
      const field = pick(['msg_signature', 'timestamp', 'nonce', 'encrypt_type']);
      return post(`bad ${field}`, withQuery(push.path, (q) => { q.set(field, mutateChar(q.get(field) ?? '', rnd)); }), push.body);
    }
    case 1: {
      const field = pick(['msg_signature', 'timestamp', 'nonce', 'encrypt_type']);
      return post(`no ${field}`, withQuery(push.path, (q) => { q.delete(field); }), push.body);
    }
    case 2: {
      // The ciphertext changed and left unsigned, or changed and signed again with a wrong token.
      const encrypt = /<Encrypt><!\[CDATA\[([^\]]*)\]\]><\/Encrypt>/.exec(push.body)?.[1] ?? '';
      const mutated = mutateChar(encrypt, rnd);
      return post('mutated ciphertext', push.path, push.body.replace(encrypt, mutated));
    }
    case 3: {
      // Broken where the signed ciphertext is: cut inside it, or no Encrypt element at all.
      const start = push.body.indexOf('<Encrypt>');
      const end = push.body.indexOf('</Encrypt>');
      const cut = start + 10 + Math.floor(rnd() * Math.max(1, end - start - 10));
      return post('broken XML', push.path, pick([
        push.body.slice(0, cut), push.body.replace(/<Encrypt>[\s\S]*<\/Encrypt>/, ''), '<xml><Encrypt>', '<!DOCTYPE x [<!ENTITY a "aaaa">]><xml>&a;</xml>', '',
        push.body.replace('<Encrypt>', '<Encrypt><Encrypt>'),
      ]));
    }
    case 4:
      return { kind: 'huge header', listener: pick(['public', 'admin'] as const), method: 'GET', path: '/healthz', headers: { 'x-fill': 'a'.repeat(20_000 + Math.floor(rnd() * 50_000)) }, body: Buffer.alloc(0) };
    case 5:
      return { kind: 'bad path', listener: pick(['public', 'admin'] as const), method: pick(['GET', 'POST']), path: pick(HOSTILE_PATHS), headers: {}, body: Buffer.alloc(0) };
    case 6:
      return post('oversized body', push.path, Buffer.alloc(70_000 + Math.floor(rnd() * 1_000_000), 0x41));
    case 7:
      return { kind: 'other method', listener: 'public', method: pick(['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'FOO']), path: push.path, headers: xml, body: Buffer.from(push.body) };
    case 8: {
      const bearer = pick(['', 'Bearer ', `Bearer ${mutateChar(token, rnd)}`, `Bearer ${token.slice(1)}`, `bearer ${token}`, `Basic ${token}`, `Bearer ${token} x`]);
      return {
        kind: 'admin without the token', listener: 'admin', method: pick(['GET', 'POST']), path: pick(['/metrics', '/readyz', '/api/followers/wxany', '/api/snapshot/wxany', '/api/reconcile/wxany?dryRun=1', '/x']),
        headers: bearer === '' ? {} : { authorization: bearer }, body: Buffer.alloc(0),
      };
    }
    case 9:
      return { kind: 'cross-site admin change', listener: 'admin', method: 'POST', path: '/api/reconcile/wxany?dryRun=1', headers: { authorization: `Bearer ${token}`, origin: 'https://evil.example' }, body: Buffer.alloc(0) };
    case 10: {
      const bytes = Buffer.alloc(1 + Math.floor(rnd() * 4000));
      for (let i = 0; i < bytes.length; i += 1) bytes[i] = Math.floor(rnd() * 256);
      return post('random bytes', push.path, bytes, pick([xml, { 'content-type': 'application/octet-stream' }, { 'content-type': 'text/xml; charset=gbk' }]));
    }
    default:
      // A genuine push replayed at a stale time: signed again, so only the time window refuses it.
      return post('replayed stale push', withQuery(push.path, (q) => { q.set('timestamp', String(Number(q.get('timestamp') ?? '0') - 86_400 * 2)); }), push.body);
  }
}

/** A short digest of a request, so a failure names the case that caused it. */
export function describeRequest(request: RawRequest): string {
  return `${request.kind}: ${request.method} ${request.path.slice(0, 80)} (${request.body.length} bytes, #${createHash('sha1').update(request.body).digest('hex').slice(0, 8)})`;
}
