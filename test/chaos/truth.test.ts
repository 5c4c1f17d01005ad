import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TruthHistory } from '../../chaos/truth.ts';

// | user | before the run | changes (Unix s)                    |
// | a    | following      | 100 unsubscribe                     |
// | b    | not following  | 200 subscribe, 200 unsubscribe      |
// | c    | not following  | none                                |
// | a    | (other app)    | following, no change                |
function history(): TruthHistory {
  const truth = new TruthHistory();
  truth.begin('wx1', ['a']);
  truth.begin('wx2', ['a']);
  truth.record('wx1', 'a', 'unsubscribe', 100);
  truth.record('wx1', 'b', 'subscribe', 200);
  truth.record('wx1', 'b', 'unsubscribe', 200);
  return truth;
}

test('a correction agrees with the state the user held at its time', () => {
  const truth = history();
  assert.equal(truth.contradicts('wx1', 'a', 'subscribe', 99_999), false);
  assert.equal(truth.contradicts('wx1', 'a', 'unsubscribe', 99_999), true);
  assert.equal(truth.contradicts('wx1', 'a', 'unsubscribe', 100_000), false);
  assert.equal(truth.contradicts('wx1', 'a', 'subscribe', 101_000), true);
  assert.equal(truth.contradicts('wx1', 'c', 'subscribe', 5_000), true);
  assert.equal(truth.contradicts('wx1', 'c', 'unsubscribe', 5_000), false);
  assert.equal(truth.contradicts('wx2', 'a', 'subscribe', 101_000), false);
});

test('within one second every state the user passed through agrees; the milliseconds do not matter', () => {
  const truth = history();
  assert.equal(truth.contradicts('wx1', 'a', 'subscribe', 100_500), false);
  assert.equal(truth.contradicts('wx1', 'b', 'subscribe', 200_999), false);
  assert.equal(truth.contradicts('wx1', 'b', 'unsubscribe', 200_000), false);
  assert.equal(truth.contradicts('wx1', 'b', 'subscribe', 201_000), true);
  assert.equal(truth.contradicts('wx1', 'b', 'subscribe', 199_000), true);
});

test('a correction agrees when the user held its state by the time WeChat answered', () => {
  const truth = history();
  // a is following until 100 s: "unsubscribe at 98 s", answered at 101 s, agrees; answered at 99.9 s, it does not.
  assert.equal(truth.contradicts('wx1', 'a', 'unsubscribe', 98_000, 101_000), false);
  assert.equal(truth.contradicts('wx1', 'a', 'unsubscribe', 98_000, 99_900), true);
  assert.equal(truth.contradicts('wx1', 'c', 'subscribe', 1_000, 500_000), true);
});
