import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EMPTY_OUTBOX, MAX_LISTED, nextMessage, routes, type Outbox } from '../../alerts/outbox.ts';
import type { Transition } from '../../alerts/state.ts';

const t = (appid: string, kind: Transition['kind'] = 'drift', status: Transition['status'] = 'firing'): Transition => ({ status, kind, appid, figures: {}, firedAt: 0, at: 0 });

describe('grouping and rate limiting', () => {
  it('sends what one evaluation brings as one message, and nothing when nothing changed', () => {
    const first = nextMessage(EMPTY_OUTBOX, [t('wxa'), t('wxb'), t('', 'consumer_stuck')], 0, 5);
    assert.equal(first.message?.transitions.length, 3);
    assert.equal(nextMessage(first.outbox, [], 1000, 5).message, undefined);
  });

  it('holds what comes beyond the limit a minute and sends it grouped once the limit allows', () => {
    let outbox: Outbox = EMPTY_OUTBOX;
    const sent: { at: number; n: number }[] = [];
    // A transition every 5 s for 2 minutes, against 2 messages a minute.
    for (let at = 0; at <= 120_000; at += 5000) {
      const next = nextMessage(outbox, [t(`wx${at}`)], at, 2);
      outbox = next.outbox;
      if (next.message !== undefined) sent.push({ at, n: next.message.transitions.length });
    }
    assert.deepEqual(sent, [{ at: 0, n: 1 }, { at: 5000, n: 1 }, { at: 60_000, n: 11 }, { at: 65_000, n: 1 }, { at: 120_000, n: 11 }]);
    assert.equal(sent.reduce((sum, s) => sum + s.n, 0), 25, 'nothing is lost');
  });

  it('lists at most MAX_LISTED and counts the rest', () => {
    const many = Array.from({ length: MAX_LISTED + 7 }, (_, i) => t(`wx${i}`));
    const { message } = nextMessage(EMPTY_OUTBOX, many, 0, 5);
    assert.deepEqual([message?.transitions.length, message?.omitted], [MAX_LISTED, 7]);
  });

  it('routes by account and kind; process-wide alerts go to webhooks that name no account', () => {
    assert.equal(routes({}, t('wxa')), true);
    assert.equal(routes({}, t('', 'consumer_stuck')), true);
    assert.equal(routes({ appids: ['wxa'] }, t('wxa')), true);
    assert.equal(routes({ appids: ['wxa'] }, t('wxb')), false);
    assert.equal(routes({ appids: ['wxa'] }, t('', 'consumer_stuck')), false);
    assert.equal(routes({ kinds: ['quota_low'] }, t('wxa', 'drift')), false);
    assert.equal(routes({ appids: ['wxa'], kinds: ['drift'] }, t('wxa', 'drift')), true);
  });
});
