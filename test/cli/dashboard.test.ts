import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testEnv, type TestEnv } from '../support/env.ts';
import { wxsync } from '../support/wxsync.ts';

// With a running `wxsync run`, the command prints the address the browser test opens (test/dashboard/fixture.ts).
describe('wxsync dashboard: without a running wxsync, and with bad arguments', () => {
  let t: TestEnv;
  before(() => { t = testEnv({}); });
  after(() => { t.cleanup(); });

  it('says that nothing listens, in one line, and prints no address', async () => {
    const ran = await wxsync(t.env, ['dashboard']);
    assert.equal(ran.code, 1);
    assert.equal(ran.stdout, '');
    assert.match(ran.stderr, /^wxsync: API_REQUEST_FAILED: no wxsync run is listening for this data directory \(.+\): start `wxsync run`, or try `wxsync demo`, which prints its own address\n$/);
  });

  it('refuses arguments and options it does not take: usage, exit 2', async () => {
    for (const args of [['dashboard', 'wx123'], ['dashboard', '--port', '1'], ['dashboard', `--${'x'.repeat(5000)}`]]) {
      const ran = await wxsync(t.env, args);
      assert.equal(ran.code, 2, args.join(' '));
      assert.equal(ran.stdout, '');
      assert.equal(ran.stderr, `wxsync: USAGE_INVALID: wxsync dashboard takes no arguments (${args.length - 1} given)\nusage: wxsync dashboard\n`);
    }
  });
});
