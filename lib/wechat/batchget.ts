/**
 * Profiles of any number of users through /cgi-bin/user/info/batchget: chunks of at most 100 (§3.1),
 * a bounded number in flight, results in the order of the input. A user who no longer follows comes
 * back with `subscribe: 0`, which is how the reconcile job confirms an unfollow.
 */
import { ErrorCode, WxsyncError, isWxsyncError } from '../errors.ts';
import { BATCHGET_MAX, type Lang, type WechatUserProfile } from './client.ts';
import { withDetails } from './errors.ts';

export interface ProfileSource {
  batchGetUserInfo(openids: readonly string[], lang?: Lang): Promise<WechatUserProfile[]>;
}

export interface BatchGetOptions {
  /** Chunks in flight at once. */
  readonly concurrency?: number;
  /** Users per call, 1 to 100. */
  readonly chunkSize?: number;
  readonly lang?: Lang;
}

const DEFAULT_BATCHGET_CONCURRENCY = 4;

/**
 * All profiles, or the first error (with `details.offset` = index of the failed chunk's first openid).
 * After an error no new chunk starts; the ones in flight are awaited so nothing outlives the call.
 */
export async function batchGetProfiles(source: ProfileSource, openids: readonly string[], options: BatchGetOptions = {}): Promise<WechatUserProfile[]> {
  const concurrency = options.concurrency ?? DEFAULT_BATCHGET_CONCURRENCY;
  const chunkSize = options.chunkSize ?? BATCHGET_MAX;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new WxsyncError(ErrorCode.UsageInvalid, `batchget concurrency must be a positive integer, got ${concurrency}`);
  }
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > BATCHGET_MAX) {
    throw new WxsyncError(ErrorCode.UsageInvalid, `batchget chunk size must be 1 to ${BATCHGET_MAX}, got ${chunkSize}`);
  }
  const results = new Array<WechatUserProfile>(openids.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < openids.length) {
      const offset = next;
      next += chunkSize;
      const chunk = openids.slice(offset, offset + chunkSize);
      try {
        const profiles = await source.batchGetUserInfo(chunk, options.lang);
        for (let i = 0; i < profiles.length; i += 1) results[offset + i] = profiles[i] as WechatUserProfile;
      } catch (error) {
        failure ??= { error: isWxsyncError(error) ? withDetails(error, { offset, chunk: chunk.length }) : error };
      }
    }
  };
  const workers = Math.min(concurrency, Math.ceil(openids.length / chunkSize));
  await Promise.all(Array.from({ length: workers }, worker));
  if (failure !== undefined) throw failure.error;
  return results;
}
