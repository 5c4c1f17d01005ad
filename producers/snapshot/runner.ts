/**
 * One snapshot of one account: user/get pages streamed into wx.snapshots as they arrive, the next pages
 * fetched while earlier ones are published (a send carries every page that arrived during the previous
 * one), the checkpoint following the acknowledged pages, and an `end` record that is complete only after
 * the pager's clean terminal page.
 *
 * Order of durability: begin is published after the first checkpoint is written (a resumed run publishes
 * it again; the store deduplicates); the checkpoint moves past a page only once Kafka acknowledged it and
 * every earlier page (a crash before the checkpoint is written re-fetches those pages, which replace
 * themselves in the store); the checkpoint is removed only after the end record is acknowledged.
 */
import { encodeSnapshotRecord, snapshotKey, SNAPSHOT_VERSION, type SnapshotRecord } from '../../lib/contracts/snapshot.ts';
import { ErrorCode, describeError, isWxsyncError } from '../../lib/errors.ts';
import type { LeaseAttempt, OutRecord, RecordProducer } from '../../lib/kafka.ts';
import { SNAPSHOTS_MAX_BATCH_BYTES } from '../../lib/topics.ts';
import type { Logger } from '../../lib/logger.ts';
import type { ProfileSource } from '../../lib/wechat/batchget.ts';
import { USER_GET_API, type ApiQuota, type UserGetAnswer } from '../../lib/wechat/client.ts';
import { followerPages, type FollowerPage, type FollowerSource } from '../../lib/wechat/pager.ts';
import { CheckpointSaver, type StateStore } from './checkpoint.ts';
import { Enricher, type KnownOpenids } from './enrich.ts';
import { BatchPublisher } from './publisher.ts';
import {
  advance, endRecord, initialCheckpoint, ledgerFor, newSnapshotId, quotaDecision, remainingCalls, startDecision,
  type Checkpoint, type Outcome,
} from './plan.ts';

export interface SnapshotSource extends FollowerSource, ProfileSource {
  quotaGet?(cgiPath: string): Promise<ApiQuota>;
}

export interface SnapshotSettings {
  readonly resumeMaxAgeMs: number;
  readonly userGetDailyQuota: number;
  readonly batchgetConcurrency: number;
}

export interface Progress {
  readonly appid: string;
  readonly snapshotId: string;
  /** Pages published so far. */
  readonly pages: number;
  readonly openids: number;
  readonly total: number;
  /** Pages this run published (a resumed run started at a later page). */
  readonly pagesThisRun: number;
  readonly openidsThisRun: number;
  readonly runStartedAt: number;
}

export interface SnapshotDeps {
  readonly source: SnapshotSource;
  readonly producer: RecordProducer;
  readonly topics: { readonly snapshots: string; readonly userProfiles: string };
  readonly state: StateStore;
  /** The account's lease: one snapshot per account at a time across processes and machines. */
  readonly lease: (appid: string) => Promise<LeaseAttempt>;
  /** Undefined where no store is open (the CLI command): no enrichment. */
  readonly known?: KnownOpenids;
  readonly settings: SnapshotSettings;
  readonly logger: Logger;
  readonly now?: () => number;
  readonly onProgress?: (progress: Progress) => void;
  /** Aborted at shutdown: the run stops after the page in flight and keeps its checkpoint for a resume. */
  readonly signal?: AbortSignal;
}

export type SnapshotResult =
  | { readonly status: 'complete' | 'incomplete'; readonly snapshotId: string; readonly pages: number; readonly openids: number; readonly total: number; readonly calls: number; readonly resumedFrom?: number; readonly reason?: string; readonly profiles: number }
  | { readonly status: 'busy' | 'refused'; readonly reason: string }
  | { readonly status: 'stopped'; readonly snapshotId: string; readonly pages: number; readonly reason: string };

export async function runSnapshot(appid: string, deps: SnapshotDeps): Promise<SnapshotResult> {
  const now = deps.now ?? Date.now;
  const attempt = await deps.lease(appid);
  if ('heldBy' in attempt) return { status: 'busy', reason: `a snapshot of ${appid} is already running (${attempt.heldBy})` };
  const { lease } = attempt;
  try {
    // Losing the lease stops the run like a shutdown: after the page in flight, checkpoint kept.
    const signal = deps.signal === undefined ? lease.lost : AbortSignal.any([deps.signal, lease.lost]);
    return await leased(appid, { ...deps, signal }, now);
  } finally {
    await lease.release();
  }
}

function stopReason(signal: AbortSignal | undefined): string {
  return isWxsyncError(signal?.reason) ? describeError(signal.reason) : 'shutting down';
}

async function leased(appid: string, deps: SnapshotDeps, now: () => number): Promise<SnapshotResult> {
  const { state, settings, logger } = deps;
  const publish = (record: SnapshotRecord): Promise<void> => deps.producer.send(deps.topics.snapshots, [outRecord(record)]);

  const decision = startDecision(await state.readCheckpoint(appid), now(), settings.resumeMaxAgeMs);
  if (decision.kind === 'abandon') {
    logger.warn({ appid, snapshotId: decision.checkpoint.snapshotId, reason: decision.reason }, 'ending an abandoned snapshot incomplete');
    await publish(endRecord(decision.checkpoint, { complete: false, reason: decision.reason }, now()));
    await state.removeCheckpoint(appid);
  }
  const resumed = decision.kind === 'resume' ? decision.checkpoint : undefined;

  let ledger = ledgerFor(await state.readLedger(appid), now());
  const reported = await reportedQuota(deps.source, logger, appid);
  const quota = quotaDecision(appid, resumed?.total ?? ledger.lastTotal, resumed?.page ?? 0, remainingCalls(ledger, settings.userGetDailyQuota, reported?.remain));
  if (!quota.ok) return { status: 'refused', reason: quota.message };

  let checkpoint: Checkpoint;
  if (resumed === undefined) {
    // T0 is taken before the first user/get call and fixed in the checkpoint, so a resume keeps it.
    const startedAt = now();
    checkpoint = initialCheckpoint(appid, newSnapshotId(appid, startedAt), startedAt);
    await state.writeCheckpoint(checkpoint);
  } else {
    checkpoint = resumed;
    logger.info({ appid, snapshotId: checkpoint.snapshotId, page: checkpoint.page }, 'resuming snapshot');
  }
  const { snapshotId } = checkpoint;
  await publish({ v: SNAPSHOT_VERSION, kind: 'begin', appid, snapshotId, startedAt: checkpoint.startedAt });

  let calls = 0;
  // The call count is saved when the run ends or stops, not per page (two fsyncs less per page): a SIGKILLed
  // run under-counts by its own calls, and WeChat's quota/get figure, when granted, is preferred anyway.
  const counted: FollowerSource = {
    userGet: (cursor: string): Promise<UserGetAnswer> => {
      calls += 1;
      ledger = { ...ledger, calls: ledger.calls + 1 };
      return deps.source.userGet(cursor);
    },
  };
  const enricher = deps.known === undefined ? undefined : new Enricher({
    appid, source: deps.source, known: deps.known, producer: deps.producer, topic: deps.topics.userProfiles,
    concurrency: settings.batchgetConcurrency, logger, now,
  });
  const firstPage = checkpoint.page;
  const firstOpenids = checkpoint.openids;
  const runStartedAt = now();
  const from = { cursor: checkpoint.cursor, page: checkpoint.page };

  const saver = new CheckpointSaver(state);
  const publisher = new BatchPublisher<FollowerPage>({
    producer: deps.producer,
    topic: deps.topics.snapshots,
    maxSendBytes: SNAPSHOTS_MAX_BATCH_BYTES,
    onAcked: (pages) => {
      // Sends are acknowledged in order and one at a time, so these pages and every earlier one are in Kafka.
      for (const page of pages) {
        checkpoint = advance(checkpoint, { page: page.page, nextOpenid: page.nextOpenid, total: page.total, count: page.openids.length }, now());
      }
      saver.save(checkpoint);
      deps.onProgress?.({
        appid, snapshotId, pages: checkpoint.page, openids: checkpoint.openids, total: checkpoint.total,
        pagesThisRun: checkpoint.page - firstPage, openidsThisRun: checkpoint.openids - firstOpenids, runStartedAt,
      });
    },
  });

  let outcome: Outcome | undefined;
  let stopped: string | undefined;
  const pages = followerPages(counted, from);
  try {
    for (;;) {
      let next: IteratorResult<FollowerPage, void>;
      try {
        next = await pages.next();
      } catch (error) {
        if (deps.signal?.aborted === true) stopped = stopReason(deps.signal);
        else if (isWxsyncError(error, ErrorCode.ShuttingDown)) stopped = describeError(error);
        else outcome = { complete: false, reason: describeError(error) };
        break;
      }
      if (next.done === true) {
        outcome = { complete: false, reason: 'the follower list ended without a terminal page' };
        break;
      }
      const page = next.value;
      // Returns once the page is queued: the next user/get call goes out while earlier pages are published.
      await publisher.publish(page, outRecord({
        v: SNAPSHOT_VERSION, kind: 'page', appid, snapshotId, page: page.page, cursor: page.cursor,
        nextOpenid: page.nextOpenid, total: page.total, openids: page.openids, fetchedAt: now(),
      }));
      saver.throwIfFailed();
      await enricher?.add(page.openids);
      if (page.last) {
        outcome = { complete: true };
        break;
      }
      if (deps.signal?.aborted === true) {
        stopped = stopReason(deps.signal);
        break;
      }
    }
    // Pages fetched before a stop or a WeChat failure are published too: they were paid for with quota.
    await publisher.drain();
    await saver.settled();
  } catch (error) {
    // Kafka or the disk failed, not WeChat: the checkpoint holds the last page Kafka acknowledged (or one a
    // little earlier), so a later run resumes there. Nothing of this run may still be sending or writing once
    // the lease is released.
    await publisher.drain().catch(() => undefined);
    await saver.settled().catch(() => undefined);
    await state.writeLedger(appid, ledger).catch(() => undefined);
    throw error;
  }
  await enricher?.drain();

  if (outcome === undefined) {
    await state.writeLedger(appid, ledger);
    logger.info({ appid, snapshotId: checkpoint.snapshotId, page: checkpoint.page, reason: stopped }, 'snapshot stopped; it resumes from its checkpoint');
    return { status: 'stopped', snapshotId: checkpoint.snapshotId, pages: checkpoint.page, reason: stopped ?? 'stopped' };
  }
  const end = endRecord(checkpoint, outcome, now());
  await publish(end);
  if (end.complete) ledger = { ...ledger, lastTotal: end.total };
  await state.writeLedger(appid, ledger);
  await state.removeCheckpoint(appid);
  const result = {
    status: end.complete ? 'complete' as const : 'incomplete' as const,
    snapshotId: end.snapshotId, pages: end.pages, openids: end.openids, total: end.total, calls,
    profiles: enricher?.published ?? 0,
    ...(firstPage > 0 ? { resumedFrom: firstPage } : {}),
    ...(end.reason === undefined ? {} : { reason: end.reason }),
  };
  logger.info(result, end.complete ? 'snapshot complete' : 'snapshot ended incomplete');
  return result;
}

function outRecord(record: SnapshotRecord): OutRecord {
  return { key: snapshotKey(record), value: encodeSnapshotRecord(record) };
}

/** WeChat's own user/get quota figures for the account, when quota/get is granted. */
export async function reportedQuota(source: SnapshotSource, logger: Logger, appid: string): Promise<ApiQuota | undefined> {
  if (source.quotaGet === undefined) return undefined;
  try {
    return await source.quotaGet(USER_GET_API);
  } catch (error) {
    // quota/get is not granted to every account; the local count then stands in for it.
    logger.debug({ appid, err: error }, 'quota/get failed; using the local call count');
    return undefined;
  }
}
