import assert from 'node:assert/strict';
import { isWxsyncError, type WxsyncError } from '../../lib/errors.ts';

/** Awaits a promise that must reject with a WxsyncError, and returns it so a test can check its code. */
export async function failure(promise: Promise<unknown>): Promise<WxsyncError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isWxsyncError(error), `expected a WxsyncError, got ${String(error)}`);
    return error;
  }
  assert.fail('the call should have failed');
}
