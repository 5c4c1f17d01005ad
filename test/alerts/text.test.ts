import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Transition } from '../../alerts/state.ts';
import { duration, renderMessage, transitionLine, type TextContext } from '../../alerts/text.ts';

const CONTEXT: TextContext = { names: new Map(), tz: 'Asia/Shanghai' };
const drift = (status: Transition['status'], figures: Transition['figures']): Transition => ({ status, kind: 'drift', appid: 'wxa', figures, firedAt: 0, at: 240_000 });

describe('alert texts', () => {
  it('a drift names WeChat\'s and the store\'s figures, what is in flight, and what was done; its resolution the outcome', () => {
    const fired = drift('firing', { drift: -7, wechatTotal: 993, storeCount: 1000, inFlight: 2, action: 'snapshot 20261126-abc started' });
    assert.equal(transitionLine(fired, 'en', CONTEXT), '[FIRING] Drift on wxa: WeChat 993, store 1,000 (2 in flight): 7 too many; snapshot 20261126-abc started');
    assert.equal(transitionLine(fired, 'zh', CONTEXT), '[告警] 公众号 wxa 粉丝数漂移：微信 993，库中 1,000（在途 2）：多 7；已自动启动快照 20261126-abc');
    const refused = drift('firing', { drift: 3, wechatTotal: 10, storeCount: 7, inFlight: 0, action: 'snapshot refused: quota' });
    assert.match(transitionLine(refused, 'zh', CONTEXT), /快照被拒绝：quota$/);
    const resolved = drift('resolved', { drift: 0, outcome: 'reconciled: 7 corrections; store = WeChat' });
    assert.equal(transitionLine(resolved, 'en', CONTEXT), '[RESOLVED] Drift on wxa resolved: reconciled: 7 corrections; store = WeChat (after 4 min)');
    assert.equal(transitionLine(resolved, 'zh', CONTEXT), '[恢复] 公众号 wxa 漂移已恢复：已对账：修正 7 条；库 = 微信（持续 4分钟）');
    assert.equal(transitionLine(drift('resolved', { drift: 0 }), 'en', CONTEXT), '[RESOLVED] Drift on wxa resolved: the store equals WeChat\'s count again (after 4 min)');
  });

  it('a message has a title counting what fired and resolved, and says how many were left out', () => {
    const rendered = renderMessage({ transitions: [drift('firing', { drift: 1 })], omitted: 4 }, 'en', CONTEXT);
    assert.equal(rendered.title, 'wxsync: 1 firing');
    assert.deepEqual(rendered.lines.slice(1), ['… and 4 more changes not listed']);
    assert.equal(renderMessage({ transitions: [drift('resolved', { drift: 0 })], omitted: 0 }, 'zh', CONTEXT).title, 'wxsync：恢复 1 条');
  });

  it('durations read naturally in both languages', () => {
    assert.deepEqual([duration(30_000, 'en'), duration(25 * 60_000, 'en'), duration(120 * 60_000, 'en'), duration(90 * 60_000, 'zh')], ['30 s', '25 min', '2 h', '1小时 30分钟']);
  });
});
