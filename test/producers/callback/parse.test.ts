import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { callbackEventId } from '../../../lib/contracts/event-id.ts';
import { toUserEvent } from '../../../producers/callback/event.ts';
import { classifyMessage, parseXmlFields, scanFlatXml, type FollowMessage } from '../../../producers/callback/parse.ts';
import { Rejection } from '../../../producers/callback/rejection.ts';

// wechat-protocol.md §5.2: a follow through a parametrised QR code.
const QR_SUBSCRIBE = '<xml><ToUserName><![CDATA[gh_abc]]></ToUserName><FromUserName><![CDATA[oUserAAAAAAAAAAAAAAAAAAAAAAA]]></FromUserName>'
  + '<CreateTime>1714112445</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event>'
  + '<EventKey><![CDATA[qrscene_spring]]></EventKey><Ticket><![CDATA[gQH47joAAAAAAAAAASxodHRw]]></Ticket></xml>';

function classify(xml: string) {
  const fields = parseXmlFields(xml);
  assert.ok(!(fields instanceof Rejection), 'parses');
  return classifyMessage(fields);
}

describe('parse and classify', () => {
  it('reads a QR subscribe with its scene and ticket', () => {
    assert.deepEqual(classify(QR_SUBSCRIBE), {
      kind: 'follow', type: 'subscribe', openid: 'oUserAAAAAAAAAAAAAAAAAAAAAAA', createTime: 1714112445, eventKey: 'qrscene_spring', ticket: 'gQH47joAAAAAAAAAASxodHRw',
    });
  });

  it('ignores SCAN, other events and user messages, with a bounded label', () => {
    const scan = QR_SUBSCRIBE.replace('[subscribe]', '[SCAN]').replace('qrscene_spring', 'spring');
    assert.deepEqual(classify(scan), { kind: 'ignored', what: 'event:SCAN', createTime: 1714112445 });
    assert.deepEqual(classify(QR_SUBSCRIBE.replace('[subscribe]', '[made_up]')), { kind: 'ignored', what: 'event:other', createTime: 1714112445 });
    assert.deepEqual(classify(QR_SUBSCRIBE.replace('[event]', '[text]')), { kind: 'ignored', what: 'text', createTime: 1714112445 });
  });

  it('refuses DTDs, non-XML and missing or malformed fields', () => {
    assert.ok(parseXmlFields('<!DOCTYPE x [<!ENTITY a "b">]><xml/>') instanceof Rejection);
    assert.ok(parseXmlFields('<!DOCTYPE x [<!ENTITY a "b">]><xml><A>&a;</A></xml>') instanceof Rejection);
    // Markup in CDATA is text: a user's message quoting a DTD is a message, not a DTD.
    const quoted = QR_SUBSCRIBE.replace('[event]', '[text]').replace('</xml>', '<Content><![CDATA[<!DOCTYPE html>]]></Content></xml>');
    assert.deepEqual(classify(quoted), { kind: 'ignored', what: 'text', createTime: 1714112445 });
    assert.ok(parseXmlFields('not xml at all') instanceof Rejection);
    assert.ok(classify(QR_SUBSCRIBE.replace(/<FromUserName>.*<\/FromUserName>/, '')) instanceof Rejection);
    assert.ok(classify(QR_SUBSCRIBE.replace('1714112445', '17141124.45')) instanceof Rejection);
  });
});

describe('the one-pass reader of flat XML', () => {
  // A declaration sends any document to the general parser, which ignores it: the reference reading.
  const general = (xml: string) => parseXmlFields(`<?xml version="1.0"?>${xml}`);
  const names = ['ToUserName', 'FromUserName', 'Event', 'a', 'B_2', 'MsgType'];
  const values = [
    'x', '  a b  ', '', '&amp;&lt;', '1 > 2', ' \u00a0x\u3000 ', 'a\n\tb', '\t',
    '<![CDATA[ x ]]>', '<![CDATA[]]>', '<![CDATA[x]]]>', '<![CDATA[<a>&amp;</a>]]>',
  ];
  const spaces = ['', '\n', ' \t\r\n'];
  // Breakage that must either be read exactly as the general parser reads it or left to it.
  const breaks = ['<', '>', '/', '<B>', '</B>', '<!-- c -->', ' x="1"', ']]>', '<![CDATA[', 'text', '<xml>', '</xml>', '\u00a0', '\r\n', '<?pi?>'];

  let seed = 42;
  const random = (n: number): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return Math.floor((seed / 2 ** 31) * n);
  };
  const pick = <T>(items: readonly T[]): T => items[random(items.length)] as T;
  const document = (): string => {
    const first = random(names.length);
    const children = Array.from({ length: 1 + random(names.length) }, (_, i) => {
      const name = names[(first + i) % names.length] as string;
      return `${pick(spaces)}<${name}>${pick(values)}</${name}>`;
    });
    return `${pick(spaces)}<xml>${children.join('')}${pick(spaces)}</xml>${pick(spaces)}`;
  };

  it('reads WeChat-shaped documents exactly as the general parser does', () => {
    for (let i = 0; i < 2000; i++) {
      const xml = document();
      const flat = scanFlatXml(xml);
      assert.ok(flat !== undefined, `not read in one pass: ${JSON.stringify(xml)}`);
      assert.deepEqual(flat, general(xml), JSON.stringify(xml));
    }
  });

  it('reads broken documents exactly as the general parser does, or leaves them to it', () => {
    for (let i = 0; i < 5000; i++) {
      const xml = document();
      const at = random(xml.length + 1);
      const broken = random(2) === 0
        ? xml.slice(0, at) + pick(breaks) + xml.slice(at)
        : xml.slice(0, at) + xml.slice(at + 1 + random(8));
      const flat = scanFlatXml(broken);
      if (flat !== undefined) assert.deepEqual(flat, general(broken), JSON.stringify(broken));
    }
  });

  it('leaves nesting, repeats and attributes to the general parser', () => {
    for (const xml of ['<xml><A><B>1</B></A><C>2</C></xml>', '<xml><A>1</A><A>2</A></xml>', '<xml><A x="1">1</A></xml>', '<xml></xml>']) {
      assert.equal(scanFlatXml(xml), undefined, xml);
    }
    for (const name of ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty']) {
      assert.equal(scanFlatXml(`<xml><${name}>x</${name}></xml>`), undefined, name);
    }
    assert.deepEqual(parseXmlFields('<xml><A><B>1</B></A><C>2</C></xml>'), { C: '2' });
  });
});

describe('toUserEvent', () => {
  const message: FollowMessage = { kind: 'follow', type: 'subscribe', openid: 'oUserAAAAAAAAAAAAAAAAAAAAAAA', createTime: 1714112445, eventKey: 'qrscene_spring', ticket: 'gQH47joAAAAAAAAAASxodHRw' };

  it('builds the record with the deterministic id, `at` in ms and the QR scene kept', () => {
    const result = toUserEvent('wxapp', message, 1714112445123);
    assert.ok(!(result instanceof Rejection));
    assert.equal(result.event.id, callbackEventId('wxapp', message.openid, 1714112445, 'subscribe'));
    assert.equal(result.event.at, 1714112445000);
    assert.deepEqual([result.event.scene, result.event.qrScene, result.event.ticket], ['ADD_SCENE_QR_CODE', 'spring', 'gQH47joAAAAAAAAAASxodHRw']);
    assert.equal(result.key, 'wxapp:oUserAAAAAAAAAAAAAAAAAAAAAAA');
  });

  it('keeps the follow but drops a scene too long for the record; refuses an invalid openid', () => {
    const long = toUserEvent('wxapp', { ...message, eventKey: `qrscene_${'x'.repeat(200)}` }, 1714112445123);
    assert.ok(!(long instanceof Rejection));
    assert.equal(long.event.qrScene, undefined);
    assert.ok(toUserEvent('wxapp', { ...message, openid: '../../etc' }, 1714112445123) instanceof Rejection);
  });
});
