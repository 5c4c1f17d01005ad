import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseXmlFields } from '../../../producers/callback/parse.ts';
import { Rejection } from '../../../producers/callback/rejection.ts';
import { accountKeys, checkCreateTime, encryptCandidates, verifyPush, verifyUrl, type AccountKeys, type XmlReader } from '../../../producers/callback/verify.ts';

// wechat-protocol.md §6.6, vectors A1–A3 (token AAAAA, EncodingAESKey 43 × "A", AppID wxba5fad812f8e6fb9).
const keys: AccountKeys = accountKeys({ appid: 'wxba5fad812f8e6fb9', secret: 's', token: 'AAAAA', encodingAESKey: 'A'.repeat(43) });
const A3_ENCRYPT = '+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04=';
const A3_MSG = '{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}';
const A3_BODY = `<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName><Encrypt><![CDATA[${A3_ENCRYPT}]]></Encrypt></xml>`;
const A3_QUERY = 'signature=6c5c811b55cc85e0e1b54100749188c20beb3f5d&timestamp=1714112445&nonce=415670741&openid=o9AgO5Kd5ggOC-bXrbNODIiE3bGY&encrypt_type=aes&msg_signature=046e02f8204d34f8ba5fa3b1db94908f3df2e9b3';

const input = (query: string, nowSeconds: number, withKeys: AccountKeys = keys) => ({
  keys: withKeys, query: new URLSearchParams(query), nowMs: nowSeconds * 1000, maxClockSkewMs: 300_000,
});

function rejected(result: unknown, status: number, reason: string): void {
  assert.ok(result instanceof Rejection, 'a rejection');
  assert.equal(result.status, status);
  assert.equal(result.reason, reason);
}

describe('verifyUrl', () => {
  const a1 = 'signature=f464b24fc39322e44b38aa78f5edd27bd1441696&echostr=4375120948345356249&timestamp=1714036504&nonce=1514711492';

  it('echoes echostr for vector A1', () => {
    assert.deepEqual(verifyUrl(input(a1, 1714036504)), { echostr: '4375120948345356249' });
  });

  it('refuses a wrong signature, a stale timestamp and an unknown account', () => {
    rejected(verifyUrl(input(a1.replace('f464', 'f465'), 1714036504)), 403, 'bad_signature');
    rejected(verifyUrl(input(a1, 1714036504 + 3600)), 403, 'stale_timestamp');
    rejected(verifyUrl({ ...input(a1, 1714036504), keys: undefined }), 404, 'unknown_appid');
    rejected(verifyUrl(input('echostr=1', 1714036504)), 400, 'missing_query');
  });
});

const A2 = 'signature=899cf89e464efb63f54ddac96b0a0a235f53aa78&timestamp=1714037059&nonce=486452656';
const ACCOUNT = { appid: 'wxba5fad812f8e6fb9', secret: 's', token: 'AAAAA' };
const plainWithKey = accountKeys({ ...ACCOUNT, encodingAESKey: 'A'.repeat(43), mode: 'plain' });
const compat = accountKeys({ ...ACCOUNT, encodingAESKey: 'A'.repeat(43), mode: 'compat' });
const plainNoKey = accountKeys(ACCOUNT);
// A3's ciphertext in a compat-mode body: the cleartext fields beside it say something else, and are never used.
const A3_COMPAT_BODY = '<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName><FromUserName><![CDATA[oForged]]></FromUserName>'
  + `<CreateTime>1</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><Encrypt><![CDATA[${A3_ENCRYPT}]]></Encrypt></xml>`;

/** parseXmlFields, counting its calls. */
function spyParser(): { parse: XmlReader; calls: () => number } {
  let calls = 0;
  return { parse: (xml) => { calls += 1; return parseXmlFields(xml); }, calls: () => calls };
}

describe('verifyPush', () => {
  it('accepts the plain-mode signature of vector A2 and passes the body through, for a plain account', () => {
    assert.equal(keys.mode, 'safe', 'an account with a key defaults to safe mode');
    assert.equal(plainNoKey.mode, 'plain');
    for (const account of [plainWithKey, plainNoKey]) {
      assert.deepEqual(verifyPush(input(A2, 1714037059, account), '<xml/>'), { xml: '<xml/>' });
      rejected(verifyPush(input(A2.replace('899c', '899d'), 1714037059, account), '<xml/>'), 403, 'bad_signature');
    }
  });

  it('refuses a plain push, however well signed, to a compat or safe account (a downgrade)', () => {
    for (const account of [keys, compat]) {
      rejected(verifyPush(input(A2, 1714037059, account), '<xml/>'), 403, 'unencrypted_push');
      rejected(verifyPush(input(`${A2}&encrypt_type=raw`, 1714037059, account), '<xml/>'), 403, 'unencrypted_push');
      // encrypt_type=aes without a msg_signature is no encrypted push either.
      rejected(verifyPush(input(A3_QUERY.replace(/&msg_signature=[0-9a-f]+/, ''), 1714112445, account), A3_BODY), 403, 'unencrypted_push');
    }
    rejected(verifyPush(input(A3_QUERY.replace(/&msg_signature=[0-9a-f]+/, ''), 1714112445, plainWithKey), A3_BODY), 400, 'missing_query');
  });

  it('takes a compat body\'s ciphertext only, and refuses that body in safe mode', () => {
    for (const account of [compat, plainWithKey]) assert.deepEqual(verifyPush(input(A3_QUERY, 1714112445, account), A3_COMPAT_BODY), { xml: A3_MSG });
    rejected(verifyPush(input(A3_QUERY, 1714112445), A3_COMPAT_BODY), 400, 'plaintext_in_safe_mode');
    for (const account of [keys, compat, plainWithKey]) assert.deepEqual(verifyPush(input(A3_QUERY, 1714112445, account), A3_BODY), { xml: A3_MSG });
    rejected(verifyPush(input(A3_QUERY, 1714112445, plainNoKey), A3_BODY), 400, 'no_key');
  });

  it('checks signature and msg_signature before any XML is parsed', () => {
    const spy = spyParser();
    const big = (inner: string): string => `<xml><ToUserName><![CDATA[gh]]></ToUserName><Encrypt><![CDATA[${inner}]]></Encrypt></xml>`;
    const nested = `<xml>${'<a b="1"><c><d/></c></a>'.repeat(2600)}<Encrypt>${A3_ENCRYPT}</Encrypt></xml>`;
    const forged = A3_QUERY.replace('msg_signature=046e', 'msg_signature=046f');
    for (const [query, body] of [
      [forged, A3_BODY],
      [forged, big('A'.repeat(64 * 1024 - 100))],
      [forged, nested],
      [forged, `<!DOCTYPE x [<!ENTITY a "${'b'.repeat(1000)}">]>${A3_BODY}`],
      [A3_QUERY, 'no encrypt element at all'],
      [A2.replace('899c', '899d'), '<xml><a b="1"/></xml>'],
    ] as const) {
      assert.ok(verifyPush(input(query, 1714112445), body, spy.parse) instanceof Rejection);
      assert.ok(verifyPush(input(query, 1714112445, plainNoKey), body, spy.parse) instanceof Rejection);
      assert.ok(verifyPush(input(query, 1714112445, compat), body, spy.parse) instanceof Rejection);
    }
    assert.equal(spy.calls(), 0, 'an unauthenticated body reached the parser');
    assert.deepEqual(verifyPush(input(A3_QUERY, 1714112445), A3_BODY, spy.parse), { xml: A3_MSG });
    assert.equal(spy.calls(), 1, 'the authenticated envelope is parsed once');
  });

  it('refuses an envelope whose parsed Encrypt is not the value msg_signature vouched for', () => {
    // The scan and the parser must agree: here a comment hides the element from the parser.
    rejected(verifyPush(input(A3_QUERY, 1714112445, compat), `<xml><!-- <Encrypt>${A3_ENCRYPT}</Encrypt> --><ToUserName>gh</ToUserName></xml>`), 400, 'bad_envelope');
  });

  it('verifies msg_signature and decrypts the safe-mode vector A3 to its message', () => {
    assert.deepEqual(verifyPush(input(A3_QUERY, 1714112445), A3_BODY), { xml: A3_MSG });
  });

  it('refuses A3 with a forged msg_signature, a foreign appid, or another key', () => {
    rejected(verifyPush(input(A3_QUERY.replace('msg_signature=046e', 'msg_signature=046f'), 1714112445), A3_BODY), 403, 'bad_msg_signature');
    const foreign = accountKeys({ appid: 'wxsomeoneelse0000', secret: 's', token: 'AAAAA', encodingAESKey: 'A'.repeat(43) });
    assert.ok(verifyPush(input(A3_QUERY, 1714112445, foreign), A3_BODY) instanceof Rejection);
    const otherKey = accountKeys({ appid: 'wxba5fad812f8e6fb9', secret: 's', token: 'AAAAA', encodingAESKey: 'B'.repeat(43) });
    assert.ok(verifyPush(input(A3_QUERY, 1714112445, otherKey), A3_BODY) instanceof Rejection);
  });

  it('accepts A3 during a key rotation, with the old key as the previous one', () => {
    const rotated = accountKeys({
      appid: 'wxba5fad812f8e6fb9', secret: 's', token: 'AAAAA', encodingAESKey: 'B'.repeat(43), previousEncodingAESKey: 'A'.repeat(43),
    });
    assert.deepEqual(verifyPush(input(A3_QUERY, 1714112445, rotated), A3_BODY), { xml: A3_MSG });
  });
});

describe('encryptCandidates', () => {
  it('finds Encrypt values without parsing, in CDATA or as text, and looks at four tags at most', () => {
    assert.deepEqual(encryptCandidates(A3_BODY), [A3_ENCRYPT]);
    assert.deepEqual(encryptCandidates(`<xml><Encrypt>  ${A3_ENCRYPT}\n</Encrypt></xml>`), [A3_ENCRYPT]);
    // A compat body whose cleartext quotes a user's message holding a decoy: both are candidates.
    assert.deepEqual(encryptCandidates(`<xml><Content><![CDATA[<Encrypt>decoy</Encrypt>]]></Content><Encrypt><![CDATA[${A3_ENCRYPT}]]></Encrypt></xml>`), ['decoy', A3_ENCRYPT]);
    assert.deepEqual(encryptCandidates('<xml><Encrypt></Encrypt><Encrypt>  </Encrypt><Encrypt>unclosed</xml>'), []);
    assert.deepEqual(encryptCandidates('<Encrypt>x</Encrypt>'.repeat(10)), ['x', 'x', 'x', 'x']);
  });

  it('stays linear on a body of unclosed tags', () => {
    const body = '<Encrypt>'.repeat(64 * 1024 / 9);
    const started = process.hrtime.bigint();
    assert.deepEqual(encryptCandidates(body), []);
    assert.ok(process.hrtime.bigint() - started < 50_000_000n, 'took more than 50 ms');
  });
});

describe('checkCreateTime', () => {
  const now = { nowMs: 1_714_112_445_000, maxClockSkewMs: 300_000 };
  it('refuses a CreateTime outside the window either way, and takes one inside it', () => {
    rejected(checkCreateTime(1_714_112_445 + 365 * 86_400, now), 403, 'stale_create_time');
    rejected(checkCreateTime(1_714_112_445 - 2 * 86_400, now), 403, 'stale_create_time');
    rejected(checkCreateTime(1_714_112_445 - 301, now), 403, 'stale_create_time');
    assert.equal(checkCreateTime(1_714_112_445 - 300, now), undefined);
    assert.equal(checkCreateTime(1_714_112_445 + 300, now), undefined);
  });
});
