import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { callbackEventId } from '../../../lib/contracts/event-id.ts';
import { toUserEvent } from '../../../producers/callback/event.ts';
import { classifyMessage, parseXmlFields, type FollowMessage } from '../../../producers/callback/parse.ts';
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
    assert.deepEqual(classify(scan), { kind: 'ignored', what: 'event:SCAN' });
    assert.deepEqual(classify(QR_SUBSCRIBE.replace('[subscribe]', '[made_up]')), { kind: 'ignored', what: 'event:other' });
    assert.deepEqual(classify(QR_SUBSCRIBE.replace('[event]', '[text]')), { kind: 'ignored', what: 'text' });
  });

  it('refuses DTDs, non-XML and missing or malformed fields', () => {
    assert.ok(parseXmlFields('<!DOCTYPE x [<!ENTITY a "b">]><xml/>') instanceof Rejection);
    assert.ok(parseXmlFields('not xml at all') instanceof Rejection);
    assert.ok(classify(QR_SUBSCRIBE.replace(/<FromUserName>.*<\/FromUserName>/, '')) instanceof Rejection);
    assert.ok(classify(QR_SUBSCRIBE.replace('1714112445', '17141124.45')) instanceof Rejection);
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
