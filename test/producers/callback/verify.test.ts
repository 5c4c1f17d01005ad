import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rejection } from '../../../producers/callback/rejection.ts';
import { accountKeys, verifyPush, verifyUrl, type AccountKeys } from '../../../producers/callback/verify.ts';

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

describe('verifyPush', () => {
  it('accepts the plain-mode signature of vector A2 and passes the body through', () => {
    const a2 = 'signature=899cf89e464efb63f54ddac96b0a0a235f53aa78&timestamp=1714037059&nonce=486452656';
    assert.deepEqual(verifyPush(input(a2, 1714037059), '<xml/>'), { xml: '<xml/>' });
    rejected(verifyPush(input(a2.replace('899c', '899d'), 1714037059), '<xml/>'), 403, 'bad_signature');
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
