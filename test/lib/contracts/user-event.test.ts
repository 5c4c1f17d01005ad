import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { callbackEventId, correctionEventId } from '../../../lib/contracts/event-id.ts';
import { decodeUserEvent, encodeUserEvent, userEventKey, type UserEvent } from '../../../lib/contracts/user-event.ts';
import { ErrorCode, isWxsyncError } from '../../../lib/errors.ts';

const at = Date.UTC(2026, 5, 1);
const event: UserEvent = {
  v: 1,
  id: callbackEventId('wxapp', 'oUser', at / 1000, 'subscribe'),
  appid: 'wxapp',
  openid: 'oUser',
  type: 'subscribe',
  at,
  source: 'callback',
  qrScene: '123',
  ticket: 'gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2lUUDhEbS1sV',
  receivedAt: at + 10,
};

function refused(raw: Buffer | null, code: string): void {
  assert.throws(() => decodeUserEvent(raw), (error: unknown) => isWxsyncError(error) && error.code === code);
}

describe('user event contract', () => {
  it('round-trips and is keyed by appid:openid', () => {
    assert.deepEqual(decodeUserEvent(encodeUserEvent(event)), event);
    assert.equal(userEventKey(event), 'wxapp:oUser');
  });

  it('gives deterministic ids: a retried push or a replayed correction gets the same id', () => {
    assert.equal(callbackEventId('wxapp', 'oUser', 1, 'subscribe'), callbackEventId('wxapp', 'oUser', 1, 'subscribe'));
    assert.notEqual(callbackEventId('wxapp', 'oUser', 1, 'subscribe'), callbackEventId('wxapp', 'oUser', 1, 'unsubscribe'));
    assert.notEqual(callbackEventId('wxapp', 'oUser', 1, 'subscribe'), callbackEventId('wxapp', 'oUser', 2, 'subscribe'));
    assert.notEqual(callbackEventId('wxa', 'pp:oUser', 1, 'subscribe'), callbackEventId('wxa:pp', 'oUser', 1, 'subscribe'));
    assert.equal(correctionEventId('s1', 'oUser', 'unsubscribe'), correctionEventId('s1', 'oUser', 'unsubscribe'));
    assert.notEqual(correctionEventId('s1', 'oUser', 'unsubscribe'), correctionEventId('s2', 'oUser', 'unsubscribe'));
    assert.match(correctionEventId('s1', 'oUser', 'subscribe'), /^[0-9a-f]{32}$/);
  });

  it('requires correction details exactly for corrections', () => {
    const correction: UserEvent = { ...event, source: 'correction', correction: { snapshotId: 'wxapp-1', rule: 'missing' } };
    assert.deepEqual(decodeUserEvent(encodeUserEvent(correction)), correction);
    assert.throws(() => encodeUserEvent({ ...event, source: 'correction' }), /correction is required/);
    assert.throws(() => encodeUserEvent({ ...event, correction: { snapshotId: 's', rule: 'stale' } }), /only allowed/);
  });

  it('refuses undecodable input', () => {
    refused(null, ErrorCode.RecordUndecodable);
    refused(Buffer.alloc(0), ErrorCode.RecordUndecodable);
    refused(Buffer.from('{"v":1,'), ErrorCode.RecordUndecodable);
    refused(Buffer.from('[1,2]'), ErrorCode.RecordUndecodable);
    refused(Buffer.from('"text"'), ErrorCode.RecordUndecodable);
    refused(Buffer.from(JSON.stringify({ ...event, v: 2 })), ErrorCode.RecordUndecodable);
    refused(Buffer.from([0xff, 0xfe, 0x00]), ErrorCode.RecordUndecodable);
    refused(Buffer.from(JSON.stringify({ ...event, remark: 'x'.repeat(70_000) })), ErrorCode.RecordUndecodable);
  });

  it('refuses invalid and hostile fields, naming every one', () => {
    const bad = { ...event, id: 'x', openid: '../etc', type: 'follow', at: at / 1000, source: 'push', scene: 42, receivedAt: -1 };
    assert.throws(() => decodeUserEvent(Buffer.from(JSON.stringify(bad))), (error: unknown) => {
      assert.ok(isWxsyncError(error, ErrorCode.RecordInvalid));
      for (const field of ['id', 'openid', 'type', 'at', 'source', 'scene', 'receivedAt']) assert.match(error.message, new RegExp(field));
      assert.doesNotMatch(error.message, /is missing/, 'a present but invalid field is reported once, as invalid');
      return true;
    });
    refused(Buffer.from(JSON.stringify({ ...event, appid: undefined })), ErrorCode.RecordInvalid);
    refused(Buffer.from(JSON.stringify({ ...event, openid: 'o'.repeat(65) })), ErrorCode.RecordInvalid);
    refused(Buffer.from(JSON.stringify({ ...event, ticket: 't'.repeat(300) })), ErrorCode.RecordInvalid);
    refused(Buffer.from(JSON.stringify({ ...event, at: 1e300 })), ErrorCode.RecordInvalid);
    refused(Buffer.from(JSON.stringify({ ...event, correction: 'yes' })), ErrorCode.RecordInvalid);
  });

  it('encodes only what it would decode, refusing with the decoder\'s codes', () => {
    const encodeRefused = (candidate: unknown, code: string): void => {
      assert.throws(() => encodeUserEvent(candidate as UserEvent), (error: unknown) => isWxsyncError(error) && error.code === code);
    };
    encodeRefused({ ...event, openid: '../etc' }, ErrorCode.RecordInvalid);
    encodeRefused({ ...event, at: Number.NaN }, ErrorCode.RecordInvalid);
    encodeRefused({ ...event, receivedAt: undefined }, ErrorCode.RecordInvalid);
    encodeRefused({ ...event, v: 2 }, ErrorCode.RecordUndecodable);
    encodeRefused({ ...event, remark: 'x'.repeat(70_000) }, ErrorCode.RecordUndecodable);
  });

  it('ignores unknown members, including __proto__, without polluting prototypes', () => {
    const decoded = decodeUserEvent(Buffer.from(`{"__proto__":{"polluted":1},"extra":true,${JSON.stringify(event).slice(1)}`));
    assert.deepEqual(decoded, event);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    refused(Buffer.from(JSON.stringify({ ...event, correction: 'yes' })), ErrorCode.RecordInvalid);
  });
});
