import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_FOLLOWERS, parseDemoOptions, type DemoOptions } from '../../demo/options.ts';
import { ErrorCode, WxsyncError } from '../../lib/errors.ts';

function options(...argv: string[]): DemoOptions {
  const parsed = parseDemoOptions(argv);
  if (parsed.help) assert.fail('--help was not given');
  return parsed.options;
}

function refused(argv: readonly string[]): string {
  try {
    parseDemoOptions(argv);
  } catch (error) {
    assert.ok(error instanceof WxsyncError && error.code === ErrorCode.UsageInvalid, String(error));
    return error.message;
  }
  assert.fail(`${argv.join(' ')} was accepted`);
}

describe('parseDemoOptions', () => {
  it('defaults to three accounts of 200k, 50k and 10k followers, 20% dropped, until Ctrl-C', () => {
    assert.deepEqual(options(), { followers: [200_000, 50_000, 10_000], dropRate: 0.2, durationS: undefined });
    assert.deepEqual(DEFAULT_FOLLOWERS, [200_000, 50_000, 10_000]);
    assert.deepEqual(parseDemoOptions(['--help']), { help: true });
  });

  it('takes the number of accounts, one follower count for all or one per account, a drop rate and a duration', () => {
    assert.deepEqual(options('--accounts', '1').followers, [200_000]);
    assert.deepEqual(options('--accounts', '5').followers, [200_000, 50_000, 10_000, 10_000, 10_000]);
    assert.deepEqual(options('--followers', '7000').followers, [7000, 7000, 7000]);
    assert.deepEqual(options('--accounts', '2', '--followers', '7000').followers, [7000, 7000]);
    assert.deepEqual(options('--followers', '20000,5000').followers, [20_000, 5000]);
    assert.deepEqual(options('--accounts=2', '--followers=20000,5000').followers, [20_000, 5000]);
    assert.equal(options('--drop-rate', '0').dropRate, 0);
    assert.equal(options('--drop-rate', '.35').dropRate, 0.35);
    assert.equal(options('--drop-rate', '1').dropRate, 1);
    assert.equal(options('--duration', '60').durationS, 60);
  });

  it('refuses every bad value at once, in one line, as a usage error', () => {
    const message = refused(['--accounts', '0', '--drop-rate', '1.5', '--duration', 'soon']);
    assert.match(message, /--accounts must be an integer from 1 to 10, got "0"/);
    assert.match(message, /--drop-rate must be a number from 0 to 1, got "1\.5"/);
    assert.match(message, /--duration must be an integer from 1 to 604800, got "soon"/);
    assert.doesNotMatch(message, /\n/);
    assert.match(refused(['--accounts', '3', '--followers', '1,2']), /--followers lists 2 counts for 3 accounts/);
    assert.match(refused(['--followers', '1000,x']), /--followers must be an integer from 1 to 2000000, got "x"/);
    assert.match(refused(['--followers', '1,1,1,1,1,1,1,1,1,1,1']), /a demo has at most 10/);
    assert.match(refused(['--followers', '2000000,1']), /2000001 followers in all is more than a demo's 2000000/);
    assert.match(refused(['--bogus']), /^demo: Unknown option '--bogus'.*\(see wxsync demo --help\)$/);
    assert.match(refused(['extra']), /Unexpected argument 'extra'/);
  });
});
