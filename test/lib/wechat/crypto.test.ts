import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { ErrorCode } from '../../../lib/errors.ts';
import {
  MAX_ENCRYPTED_CHARS,
  decodeEncodingAESKey,
  decryptMessage,
  encryptMessage,
  msgSignature,
  plainSignature,
  signatureMatches,
} from '../../../lib/wechat/crypto.ts';

// node:test's describe/it return promises the runner itself tracks, hence the `void`s.
// Vectors are copied from wechat-protocol.md §6.6; the letters match its sections.

function throwsCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, { name: 'WxsyncError', code });
}

/** AES-256-CBC with WeChat's IV and no padding at all, to inspect or forge the raw layout. */
function rawDecrypt(key: Buffer, encrypt: string): Buffer {
  const d = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
  d.setAutoPadding(false);
  return Buffer.concat([d.update(Buffer.from(encrypt, 'base64')), d.final()]);
}

function rawEncrypt(key: Buffer, plaintext: Buffer): string {
  const c = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  c.setAutoPadding(false);
  return Buffer.concat([c.update(plaintext), c.final()]).toString('base64');
}

function layout(random: string, msg: Buffer, appid: string, msgLen = msg.length): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(msgLen);
  return Buffer.concat([Buffer.from(random, 'latin1'), len, msg, Buffer.from(appid, 'utf8')]);
}

const A_TOKEN = 'AAAAA';
const A_KEY_TEXT = 'A'.repeat(43);
const A_APPID = 'wxba5fad812f8e6fb9';
const A3_ENCRYPT =
  '+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04=';
const A3_MSG =
  '{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}';
const A4_ENCRYPT = 'ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ==';
const A4_MSG = '{"demo_resp":"good luck"}';

const B_KEY_TEXT = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG';
const B_APPID = 'wxb11529c136998cb6';
const B_RANDOM = Buffer.from('aaaabbbbccccdddd', 'utf8');
const B_MSG = '我是中文abcd123';
const B_ENCRYPT = 'jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==';
const B_MSG2 =
  '<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName><FromUserName><![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime><MsgType><![CDATA[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId><Title><![CDATA[testCallBackReplyVideo]]></Title><Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>';
const B_ENCRYPT2 =
  'jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkupqcEcW7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEuZ+xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGvDahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb';

const D_TOKEN = '123456';
const D_KEY_TEXT = 'kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR';
const D_CORP = 'wx49f0ab532d5d035a';
const D_ECHO = '4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==';
const D_ENCRYPT =
  'RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=';
const D_DECRYPTED = [
  `<xml><ToUserName><![CDATA[${D_CORP}]]></ToUserName>`,
  '<FromUserName><![CDATA[messense]]></FromUserName>',
  '<CreateTime>1411525903</CreateTime>',
  '<MsgType><![CDATA[text]]></MsgType>',
  '<Content><![CDATA[test]]></Content>',
  '<MsgId>4363689963896700987</MsgId>',
  '<AgentID>1</AgentID>',
  '</xml>',
].join('\n');
const D_REPLY = [
  '<xml>',
  '<MsgType><![CDATA[text]]></MsgType>',
  '<Content><![CDATA[test]]></Content>',
  `<FromUserName><![CDATA[${D_CORP}]]></FromUserName>`,
  '<ToUserName><![CDATA[messense]]></ToUserName>',
  '<AgentID>1</AgentID>',
  '<CreateTime>1411525903</CreateTime>',
  '</xml>',
].join('\n');
const D_REPLY_ENCRYPT =
  '9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3';

const aKey = decodeEncodingAESKey(A_KEY_TEXT);
const bKey = decodeEncodingAESKey(B_KEY_TEXT);
const dKey = decodeEncodingAESKey(D_KEY_TEXT);

describe('signatures (§5.1, §6.4)', () => {
  it('A1: URL verification signature, echostr is echoed unchanged by the caller', () => {
    assert.equal(
      createHash('sha1').update('15147114921714036504AAAAA').digest('hex'),
      'f464b24fc39322e44b38aa78f5edd27bd1441696',
    );
    const expected = plainSignature(A_TOKEN, '1714036504', '1514711492');
    assert.equal(expected, 'f464b24fc39322e44b38aa78f5edd27bd1441696');
    assert.equal(signatureMatches(expected, 'f464b24fc39322e44b38aa78f5edd27bd1441696'), true);
  });

  it('A2: plaintext-mode POST signature', () => {
    assert.equal(
      createHash('sha1').update('1714037059486452656AAAAA').digest('hex'),
      '899cf89e464efb63f54ddac96b0a0a235f53aa78',
    );
    assert.equal(plainSignature(A_TOKEN, '1714037059', '486452656'), '899cf89e464efb63f54ddac96b0a0a235f53aa78');
  });

  it('A3: safe-mode POST signature and msg_signature', () => {
    assert.equal(plainSignature(A_TOKEN, '1714112445', '415670741'), '6c5c811b55cc85e0e1b54100749188c20beb3f5d');
    assert.equal(msgSignature(A_TOKEN, '1714112445', '415670741', A3_ENCRYPT), '046e02f8204d34f8ba5fa3b1db94908f3df2e9b3');
  });

  it('A4: reply MsgSignature, sorted as the note shows', () => {
    const sorted = ['1713424427', '415670741', 'AAAAA', A4_ENCRYPT].join('');
    assert.equal(createHash('sha1').update(sorted).digest('hex'), '1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1');
    assert.equal(msgSignature(A_TOKEN, '1713424427', '415670741', A4_ENCRYPT), '1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1');
  });

  it('B: a forged msg_signature is rejected', () => {
    const expected = msgSignature('pamtest', '1409304348', 'xxxxxx', B_ENCRYPT);
    assert.equal(signatureMatches(expected, '12345'), false);
  });

  it('C: wechatpy plain signature, valid and off-by-one', () => {
    const expected = plainSignature('test', '1410685589', 'test');
    assert.equal(expected, 'f21891de399b4e33a1a93c9a7b8a8fffb5a443ff');
    assert.equal(signatureMatches(expected, 'f21891de399b4e33a1a93c9a7b8a8fffb5a443ff'), true);
    assert.equal(signatureMatches(expected, 'f21891de399b4e33a1a93c9a7b8a8fffb5a443fe'), false);
  });

  it('D: msg_signatures of the echostr, the message and the reply', () => {
    assert.equal(msgSignature(D_TOKEN, '1411443780', '437374425', D_ECHO), 'dd6b9c95b495b3f7e2901bfbc76c664930ffdb96');
    assert.equal(msgSignature(D_TOKEN, '1411525903', '461056294', D_ENCRYPT), '74d92dfeb87ba7c714f89d98870ae5eb62dff26d');
    assert.equal(
      msgSignature(D_TOKEN, '1411525903', '461056294', D_REPLY_ENCRYPT),
      '407518b7649e86ef23978113f92d27afa9296533',
    );
  });

  it('signatureMatches is false, never a throw, for malformed input', () => {
    const good = plainSignature('test', '1410685589', 'test');
    // Only the canonical lowercase hex WeChat sends: an uppercase spelling of the same bytes is an altered request.
    assert.equal(signatureMatches(good, good.toUpperCase()), false);
    assert.equal(signatureMatches(good, good.replace(/[a-f]/, (c) => c.toUpperCase())), false);
    assert.equal(signatureMatches(good, ''), false);
    assert.equal(signatureMatches('', ''), false);
    assert.equal(signatureMatches(good, good.slice(0, 38)), false);
    assert.equal(signatureMatches(good, `${good}00`), false);
    assert.equal(signatureMatches(good, `z${good.slice(1)}`), false);
    assert.equal(signatureMatches(good, ` ${good.slice(1)}`), false);
    assert.equal(signatureMatches('abc', 'abc'), false);
    assert.equal(signatureMatches(good, undefined as unknown as string), false);
    assert.equal(signatureMatches(good, ['x'] as unknown as string), false);
  });

  it('sorts by UTF-8 bytes, not UTF-16 units', () => {
    // UTF-16 units put U+1F600 (0xD83D…) before U+FF61; UTF-8 bytes put it after (F0… > EF…).
    const a = '\uFF61';
    const b = '\u{1F600}';
    const expected = createHash('sha1').update(`x${a}${b}`, 'utf8').digest('hex');
    assert.equal(plainSignature(b, 'x', a), expected);
  });

  it('sorts as the UTF-8 bytes sort for any mix of ASCII, BMP and astral characters', () => {
    const alphabet = ['a', 'b', '\u00e9', '\ud7ff', '\ue000', '\uff61', '\uffff', '\u{10000}', '\u{1F600}', '\u{10FFFF}'];
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return Math.floor((seed / 2 ** 31) * n);
    };
    const text = (): string => Array.from({ length: random(4) }, () => alphabet[random(alphabet.length)] as string).join('');
    for (let i = 0; i < 2000; i++) {
      const parts = [text(), text(), text(), text()] as const;
      const bytes = parts.map((p) => Buffer.from(p, 'utf8')).sort((x, y) => Buffer.compare(x, y));
      const expected = createHash('sha1').update(Buffer.concat(bytes)).digest('hex');
      assert.equal(msgSignature(...parts), expected, JSON.stringify(parts));
    }
  });
});

describe('decodeEncodingAESKey (§6.2)', () => {
  it('A: 43 × "A" is 32 zero bytes', () => {
    assert.deepEqual(aKey, Buffer.alloc(32));
  });

  it('B: a key with non-zero spare bits decodes leniently', () => {
    assert.equal(bKey.toString('hex'), '69b71d79f8218a39259a7a29aabb2dbafc31cb3d35db7e39ebbf3d0010831051');
  });

  it('accepts + and / of the base64 alphabet', () => {
    assert.equal(decodeEncodingAESKey(`${'+/'.repeat(21)}A`).length, 32);
  });

  it('rejects keys of the wrong length or alphabet', () => {
    for (const bad of [
      '',
      'A'.repeat(42),
      'A'.repeat(44),
      `${'A'.repeat(43)}=`,
      `${'A'.repeat(42)}=`,
      `${'A'.repeat(42)}-`,
      `${'A'.repeat(42)}_`,
      ` ${'A'.repeat(42)}`,
      `${'A'.repeat(42)}\n`,
      `${'A'.repeat(42)}é`,
    ]) {
      throwsCode(() => decodeEncodingAESKey(bad), ErrorCode.CallbackKeyInvalid);
    }
    throwsCode(() => decodeEncodingAESKey(undefined as unknown as string), ErrorCode.CallbackKeyInvalid);
  });

  it('does not echo the key in its error', () => {
    const secret = `${'s3cr3tK3y'.repeat(4)}abcdef-`;
    assert.throws(() => decodeEncodingAESKey(secret), (e: unknown) => e instanceof Error && !e.message.includes(secret));
  });
});

describe('decryptMessage on the vectors (§6.6)', () => {
  it('A3: decrypts the safe-mode push, and the raw layout matches the note', () => {
    assert.equal(decryptMessage(A3_ENCRYPT, [aKey], A_APPID), A3_MSG);
    const raw = rawDecrypt(aKey, A3_ENCRYPT);
    assert.equal(raw.length, 224);
    const pad = raw[raw.length - 1] ?? 0;
    const full = raw.subarray(0, raw.length - pad);
    assert.equal(full.length, 205);
    assert.equal(full.subarray(0, 16).toString('latin1'), 'a8eedb185eb2fecf');
    assert.equal(full.readUInt32BE(16), 167);
    assert.equal(full.subarray(20 + 167).toString('utf8'), A_APPID);
  });

  it('A4: decrypts the reply; 63-byte FullStr in a 64-byte ciphertext', () => {
    assert.equal(decryptMessage(A4_ENCRYPT, [aKey], A_APPID), A4_MSG);
    const raw = rawDecrypt(aKey, A4_ENCRYPT);
    assert.equal(raw.length, 64);
    assert.equal(raw[63], 1);
    assert.equal(raw.subarray(0, 16).toString('latin1'), '707722b803182950');
    assert.equal(raw.readUInt32BE(16), 25);
  });

  it('B: decrypts both WxJava ciphertexts (byte length, not character length)', () => {
    assert.equal(decryptMessage(B_ENCRYPT, [bKey], B_APPID), B_MSG);
    assert.equal(rawDecrypt(bKey, B_ENCRYPT).readUInt32BE(16), 19);
    assert.equal(decryptMessage(B_ENCRYPT2, [bKey], B_APPID), B_MSG2);
    const raw2 = rawDecrypt(bKey, B_ENCRYPT2);
    assert.equal(raw2.length - (raw2[raw2.length - 1] ?? 0), 473);
  });

  it('D: echostr check — signature, then decrypt; the wrong nonce fails', () => {
    const sig = 'dd6b9c95b495b3f7e2901bfbc76c664930ffdb96';
    assert.equal(signatureMatches(msgSignature(D_TOKEN, '1411443780', '437374425', D_ECHO), sig), true);
    assert.equal(decryptMessage(D_ECHO, [dKey], D_CORP), '5927782489442352469');
    assert.equal(signatureMatches(msgSignature(D_TOKEN, '1411443780', '437374424', D_ECHO), sig), false);
  });

  it('D: decrypts the WeCom message in full', () => {
    const message = decryptMessage(D_ENCRYPT, [dKey], D_CORP);
    assert.equal(message, D_DECRYPTED);
    assert.equal(Buffer.byteLength(message), 281);
    assert.match(message, /<FromUserName><!\[CDATA\[messense\]\]><\/FromUserName>/);
    assert.match(message, /<Content><!\[CDATA\[test\]\]><\/Content>/);
    const raw = rawDecrypt(dKey, D_ENCRYPT);
    assert.equal(raw.subarray(0, 16).toString('latin1'), 'ec90b1530358d4d3');
    assert.equal(raw[raw.length - 1], 1);
  });
});

describe('encryptMessage on the vectors (§6.6)', () => {
  it('A4: exact ciphertext with the fixed random prefix', () => {
    assert.equal(encryptMessage(A4_MSG, aKey, A_APPID, Buffer.from('707722b803182950')), A4_ENCRYPT);
  });

  it('B: exact WxJava ciphertexts', () => {
    assert.equal(encryptMessage(B_MSG, bKey, B_APPID, B_RANDOM), B_ENCRYPT);
    assert.equal(encryptMessage(B_MSG2, bKey, B_APPID, B_RANDOM), B_ENCRYPT2);
  });

  it('D: exact wechatpy reply with mocked random, nonce and timestamp', () => {
    const encrypt = encryptMessage(D_REPLY, dKey, D_CORP, Buffer.from('1234567890123456'));
    assert.equal(encrypt, D_REPLY_ENCRYPT);
    assert.equal(msgSignature(D_TOKEN, '1411525903', '461056294', encrypt), '407518b7649e86ef23978113f92d27afa9296533');
  });

  it('pads a block-aligned payload with a full 32-byte block of 0x20', () => {
    // 16 + 4 + 9 + 3 = 32 bytes.
    const encrypt = encryptMessage('123456789', aKey, 'abc', Buffer.alloc(16, 7));
    const raw = rawDecrypt(aKey, encrypt);
    assert.equal(raw.length, 64);
    assert.deepEqual(raw.subarray(32), Buffer.alloc(32, 32));
    assert.equal(decryptMessage(encrypt, [aKey], 'abc'), '123456789');
  });
});

describe('decryptMessage round trip and key rotation', () => {
  const eKey = decodeEncodingAESKey('SvFHaQqrlAhRud3ye6f8ujJsR2LeYbxzPPIzNlei2FX');

  it('E: round-trips with a random prefix, including non-ASCII and empty messages', () => {
    for (const msg of ['', 'x', '<xml><Content><![CDATA[你好 👋]]></Content></xml>', 'y'.repeat(5000)]) {
      const a = encryptMessage(msg, eKey, 'appid');
      const b = encryptMessage(msg, eKey, 'appid');
      assert.notEqual(a, b);
      assert.equal(decryptMessage(a, [eKey], 'appid'), msg);
    }
  });

  it('falls back to the previous key during a rotation', () => {
    const oldCipher = encryptMessage('<xml>old</xml>', eKey, 'appid');
    const newCipher = encryptMessage('<xml>new</xml>', dKey, 'appid');
    assert.equal(decryptMessage(oldCipher, [dKey, eKey], 'appid'), '<xml>old</xml>');
    assert.equal(decryptMessage(newCipher, [dKey, eKey], 'appid'), '<xml>new</xml>');
    throwsCode(() => decryptMessage(newCipher, [eKey], 'appid'), ErrorCode.CallbackDecryptFailed);
  });

  it('carries nothing from one message to the next with the same key, whatever failed in between', () => {
    const messages = ['<xml>1</xml>', 'z'.repeat(47), '', '<xml>多字节</xml>'];
    const garbage = Buffer.alloc(48, 0x5a).toString('base64');
    for (let round = 0; round < 3; round++) {
      for (const msg of messages) {
        assert.equal(decryptMessage(encryptMessage(msg, eKey, 'appid'), [dKey, eKey], 'appid'), msg);
        throwsCode(() => decryptMessage(garbage, [eKey, dKey], 'appid'), ErrorCode.CallbackDecryptFailed);
        throwsCode(() => decryptMessage(encryptMessage(msg, eKey, 'wxother'), [eKey], 'appid'), ErrorCode.CallbackAppidMismatch);
      }
    }
  });

  it('reports an appid mismatch over another key failing, whatever the order', () => {
    const encrypt = encryptMessage('<xml/>', eKey, 'wxother');
    throwsCode(() => decryptMessage(encrypt, [dKey, eKey], 'appid'), ErrorCode.CallbackAppidMismatch);
    throwsCode(() => decryptMessage(encrypt, [eKey, dKey], 'appid'), ErrorCode.CallbackAppidMismatch);
  });
});

describe('decryptMessage on hostile input', () => {
  it('wrong key', () => {
    throwsCode(() => decryptMessage(A3_ENCRYPT, [bKey], A_APPID), ErrorCode.CallbackDecryptFailed);
    throwsCode(() => decryptMessage(B_ENCRYPT2, [aKey, dKey], B_APPID), ErrorCode.CallbackDecryptFailed);
  });

  it('wrong appid', () => {
    throwsCode(() => decryptMessage(A3_ENCRYPT, [aKey], 'wxba5fad812f8e6fb8'), ErrorCode.CallbackAppidMismatch);
    throwsCode(() => decryptMessage(A3_ENCRYPT, [aKey], 'wxba5fad812f8e6fb'), ErrorCode.CallbackAppidMismatch);
    throwsCode(() => decryptMessage(A3_ENCRYPT, [aKey], ''), ErrorCode.CallbackAppidMismatch);
    throwsCode(() => decryptMessage(D_ENCRYPT, [dKey], A_APPID), ErrorCode.CallbackAppidMismatch);
  });

  it('truncated ciphertext', () => {
    const data = Buffer.from(A3_ENCRYPT, 'base64');
    for (const cut of [data.subarray(0, 208), data.subarray(0, 16), data.subarray(0, 15), data.subarray(0, 223)]) {
      throwsCode(() => decryptMessage(cut.toString('base64'), [aKey], A_APPID), ErrorCode.CallbackDecryptFailed);
    }
    throwsCode(() => decryptMessage(A3_ENCRYPT.slice(0, -1), [aKey], A_APPID), ErrorCode.CallbackDecryptFailed);
    throwsCode(() => decryptMessage(A3_ENCRYPT.slice(0, -4), [aKey], A_APPID), ErrorCode.CallbackDecryptFailed);
    throwsCode(() => decryptMessage('', [aKey], A_APPID), ErrorCode.CallbackDecryptFailed);
  });

  it('bad padding', () => {
    const body = layout('r'.repeat(16), Buffer.from('<xml/>'), A_APPID); // 44 bytes, needs 20 of padding
    const forged = (pad: Buffer): string => rawEncrypt(aKey, Buffer.concat([body, pad]));
    // Sanity: the honest padding is accepted, so each failure below is the padding's.
    assert.equal(decryptMessage(forged(Buffer.alloc(20, 20)), [aKey], A_APPID), '<xml/>');
    throwsCode(() => decryptMessage(forged(Buffer.alloc(20, 0)), [aKey], A_APPID), ErrorCode.CallbackDecryptFailed);
    const unequal = Buffer.alloc(20, 20);
    unequal[3] = 19;
    throwsCode(() => decryptMessage(forged(unequal), [aKey], A_APPID), ErrorCode.CallbackDecryptFailed);
    // 33 is out of range even though enough bytes precede it.
    const over = rawEncrypt(aKey, Buffer.concat([layout('r'.repeat(16), Buffer.from('<xml/>'), A_APPID), Buffer.alloc(52, 33)]));
    throwsCode(() => decryptMessage(over, [aKey], A_APPID), ErrorCode.CallbackDecryptFailed);
    // A full block of padding leaves nothing for the header.
    throwsCode(() => decryptMessage(rawEncrypt(aKey, Buffer.alloc(32, 32)), [aKey], A_APPID), ErrorCode.CallbackDecryptFailed);
  });

  it('inconsistent inner length or non-UTF-8 message', () => {
    const tooLong = layout('r'.repeat(16), Buffer.from('<xml/>'), A_APPID, 0xffffffff);
    throwsCode(
      () => decryptMessage(rawEncrypt(aKey, Buffer.concat([tooLong, Buffer.alloc(20, 20)])), [aKey], A_APPID),
      ErrorCode.CallbackDecryptFailed,
    );
    const justOver = layout('r'.repeat(16), Buffer.from('<xml/>'), A_APPID, 6 + A_APPID.length + 1);
    throwsCode(
      () => decryptMessage(rawEncrypt(aKey, Buffer.concat([justOver, Buffer.alloc(20, 20)])), [aKey], A_APPID),
      ErrorCode.CallbackDecryptFailed,
    );
    const notUtf8 = layout('r'.repeat(16), Buffer.from([0x3c, 0xff, 0xfe, 0x3e, 0x41, 0x42]), A_APPID);
    throwsCode(
      () => decryptMessage(rawEncrypt(aKey, Buffer.concat([notUtf8, Buffer.alloc(20, 20)])), [aKey], A_APPID),
      ErrorCode.CallbackDecryptFailed,
    );
  });

  it('non-base64 input', () => {
    for (const bad of [
      'not base64!',
      `${A3_ENCRYPT.slice(0, 8)}*${A3_ENCRYPT.slice(9)}`,
      A3_ENCRYPT.replace(/\+/g, '-').replace(/\//g, '_'),
      `${A3_ENCRYPT.slice(0, 100)}\n${A3_ENCRYPT.slice(101)}`,
      ` ${A3_ENCRYPT.slice(1)}`,
      `${A3_ENCRYPT.slice(0, -4)}A=AA`,
      '====',
    ]) {
      throwsCode(() => decryptMessage(bad, [aKey], A_APPID), ErrorCode.CallbackDecryptFailed);
    }
    throwsCode(() => decryptMessage(undefined as unknown as string, [aKey], A_APPID), ErrorCode.CallbackDecryptFailed);
  });

  it('oversized input is refused before decoding', () => {
    const huge = 'A'.repeat(MAX_ENCRYPTED_CHARS + 4);
    throwsCode(() => decryptMessage(huge, [aKey], A_APPID), ErrorCode.CallbackDecryptFailed);
  });

  it('keys that are not 32 bytes, or none at all', () => {
    throwsCode(() => decryptMessage(A3_ENCRYPT, [], A_APPID), ErrorCode.CallbackKeyInvalid);
    throwsCode(() => decryptMessage(A3_ENCRYPT, [Buffer.alloc(16)], A_APPID), ErrorCode.CallbackKeyInvalid);
    throwsCode(() => decryptMessage(A3_ENCRYPT, [aKey, Buffer.alloc(33)], A_APPID), ErrorCode.CallbackKeyInvalid);
    throwsCode(() => encryptMessage('<xml/>', Buffer.alloc(31), A_APPID), ErrorCode.CallbackKeyInvalid);
  });
});
