import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CAMPAIGNS, churnTick } from '../../demo/churn.ts';

describe('churnTick', () => {
  it('gains about one follower a second per 5,000, loses four for five gained, half the follows through a campaign', () => {
    assert.deepEqual(churnTick(200_000, 0), [{ subscribe: 20, unsubscribe: 0, qrScene: 'spring-promo' }, { subscribe: 20, unsubscribe: 32 }]);
    assert.deepEqual(churnTick(50_000, 0), [{ subscribe: 5, unsubscribe: 0, qrScene: 'spring-promo' }, { subscribe: 5, unsubscribe: 8 }]);
    // A small account still churns every second, and never unfollows more than it has.
    assert.deepEqual(churnTick(2000, 0), [{ subscribe: 1, unsubscribe: 0, qrScene: 'spring-promo' }, { subscribe: 0, unsubscribe: 1 }]);
    assert.deepEqual(churnTick(0, 0), [{ subscribe: 1, unsubscribe: 0, qrScene: 'spring-promo' }]);
  });

  it('sends the campaign follows of ten seconds to spring-promo, store-poster and wechat-article, five, three and two', () => {
    const campaigns = Array.from({ length: 20 }, (_, tick) => churnTick(10_000, tick)[0]?.qrScene);
    const count = (name: string): number => campaigns.filter((c) => c === name).length;
    assert.deepEqual(CAMPAIGNS.map(count), [10, 6, 4]);
  });
});
