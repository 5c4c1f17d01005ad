import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, isWxsyncError } from '../../lib/errors.ts';
import { DEFAULT_SIM_OPTIONS, parseSimOptions, type SimOptions } from '../../sim/options.ts';

function parse(...argv: string[]): SimOptions {
  const parsed = parseSimOptions(argv);
  assert.equal(parsed.help, false);
  return parsed.options;
}

function problems(...argv: string[]): string {
  try {
    parseSimOptions(argv);
  } catch (error) {
    assert.ok(isWxsyncError(error, ErrorCode.UsageInvalid));
    return error.message;
  }
  assert.fail(`accepted ${argv.join(' ')}`);
}

describe('parseSimOptions', () => {
  it('defaults to the contract values', () => {
    assert.deepEqual(parse(), DEFAULT_SIM_OPTIONS);
    assert.equal(DEFAULT_SIM_OPTIONS.port, 18080);
    assert.deepEqual(DEFAULT_SIM_OPTIONS.followers, [1000]);
    assert.equal(DEFAULT_SIM_OPTIONS.userGetDailyQuota, 500);
  });

  it('reads every flag, in both --flag value and --flag=value form', () => {
    const options = parse(
      '--port', '0', '--host=0.0.0.0', '--accounts', '2', '--followers=1000000', '--seed', '42',
      '--callback-url', 'http://127.0.0.1:8080/wechat', '--mode', 'safe', '--drop-rate', '0.1', '--dup-rate=.05',
      '--busy-rate', '1', '--latency-ms', '20', '--user-get-daily-quota', '7', '--per-minute-limit', '100',
      '--churn-interval-ms', '500', '--churn-size', '3', '--https', '--push-timeout-ms', '100',
      '--push-attempts', '1', '--push-concurrency', '4', '--log-level', 'silent',
    );
    assert.deepEqual(options, {
      port: 0, host: '0.0.0.0', accounts: 2, followers: [1_000_000, 1_000_000], seed: 42,
      callbackUrl: 'http://127.0.0.1:8080/wechat', mode: 'safe', dropRate: 0.1, dupRate: 0.05, busyRate: 1,
      latencyMs: 20, userGetDailyQuota: 7, perMinuteLimit: 100, churnIntervalMs: 500, churnSize: 3, https: true,
      pushTimeoutMs: 100, pushAttempts: 1, pushConcurrency: 4, logLevel: 'silent',
    });
  });

  it('takes one follower count per account', () => {
    assert.deepEqual(parse('--accounts', '3', '--followers', '0,1,25000').followers, [0, 1, 25_000]);
    assert.match(problems('--accounts', '2', '--followers', '1,2,3'), /lists 3 counts for 2 accounts/);
  });

  it('reports every problem at once, clearly', () => {
    const message = problems('--port', '70000', '--mode', 'secret', '--drop-rate', '1.5', '--bogus', '--seed', '-1', 'extra');
    assert.match(message, /--port must be an integer from 0 to 65535, got "70000"/);
    assert.match(message, /--mode must be one of plain, compat, safe/);
    assert.match(message, /--drop-rate must be a number from 0 to 1/);
    assert.match(message, /unknown option --bogus/);
    assert.match(message, /--seed needs a value|--seed must be/);
    assert.match(message, /unexpected argument "extra"/);
  });

  it('refuses bad numbers and URLs', () => {
    for (const argv of [
      ['--followers', '1e6'], ['--followers', '-5'], ['--followers', '100000001'], ['--accounts', '0'],
      ['--port', '8080.5'], ['--port', ''], ['--busy-rate', 'NaN'], ['--dup-rate', '0x1'], ['--latency-ms', 'Infinity'],
      ['--callback-url', 'ftp://x/y'], ['--callback-url', 'not a url'], ['--followers'], ['--https=yes'],
      ['--port', '1', '--port', '2'], ['--accounts', '2', '--followers', '60000000'],
    ]) {
      problems(...argv);
    }
  });

  it('recognises --help', () => {
    assert.deepEqual(parseSimOptions(['--port', '1', '--help']), { help: true });
  });
});
