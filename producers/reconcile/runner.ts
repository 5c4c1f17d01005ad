/**
 * One reconcile of one account against one snapshot: wait for the store to hold everything up to T1 +
 * grace, compute both anti-joins over the whole snapshot at once, confirm each difference with batchget,
 * emit the corrections into wx.user.events and record the run. Decisions live in plan.ts.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../../lib/config.ts';
import { encodeUserEvent, userEventKey } from '../../lib/contracts/user-event.ts';
import { ErrorCode, WxsyncError, describeError } from '../../lib/errors.ts';
import type { OutRecord, RecordProducer } from '../../lib/kafka.ts';
import type { Logger } from '../../lib/logger.ts';
import { batchGetProfiles, type ProfileSource } from '../../lib/wechat/batchget.ts';
import { missingCorrections, snapshotRefusal, staleCorrections, staleShareRefusal } from './plan.ts';
import type { Candidate, ReconcileStore, RuleCounts } from './store.ts';
import { waitForLoaded, type OffsetSource } from './watermark.ts';

export type ReconcileTrigger = 'manual' | 'schedule' | 'snapshot';

export interface ReconcileRequest {
  readonly appid: string;
  /** Defaults to the account's newest snapshot that has ended. */
  readonly snapshotId?: string;
  readonly dryRun: boolean;
  readonly trigger: ReconcileTrigger;
}

export interface RuleReport extends RuleCounts {
  /** Up to SAMPLE_SIZE openids that get (or, in a dry run, would get) a correction. */
  readonly sample: readonly string[];
}

export interface ReconcileReport {
  readonly runId: string;
  readonly appid: string;
  readonly snapshotId: string;
  /** `busy`: another reconcile of the account runs in this process; nothing was done or recorded. */
  readonly status: 'done' | 'dry-run' | 'refused' | 'busy';
  readonly reason?: string;
  readonly dryRun: boolean;
  readonly snapshotOpenids: number;
  readonly followers: number;
  readonly missing: RuleReport;
  readonly stale: RuleReport;
  /** Milliseconds per phase: waiting for the consumer, the anti-joins, batchget (publishing overlaps it), the rest of publishing. */
  readonly phases: { readonly waitMs: number; readonly queryMs: number; readonly confirmMs: number; readonly publishMs: number };
  readonly durationMs: number;
}

export interface ReconcilerDeps {
  readonly store: ReconcileStore;
  readonly profiles: (appid: string) => ProfileSource;
  readonly producer: RecordProducer;
  readonly offsets: OffsetSource;
  readonly settings: Config['reconcile'];
  readonly topics: Config['kafka']['topics'];
  readonly consumerGroup: string;
  readonly batchgetConcurrency: number;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  readonly now?: () => number;
}

export interface Reconciler {
  run(request: ReconcileRequest): Promise<ReconcileReport>;
}

const SAMPLE_SIZE = 10;
/** Openids confirmed per step: 20 batchget calls, whose corrections are then sent while the next step runs. */
const CONFIRM_CHUNK = 2000;
const RECORDS_PER_SEND = 20_000;
const NO_COUNTS: RuleReport = { found: 0, inWindow: 0, unconfirmed: 0, emitted: 0, sample: [] };
const NO_PHASES: ReconcileReport['phases'] = { waitMs: 0, queryMs: 0, confirmMs: 0, publishMs: 0 };

/** A run's report before anything was counted: what a busy, failed or refused-early run reports. */
function blankReport(request: ReconcileRequest, runId: string): Omit<ReconcileReport, 'status' | 'durationMs' | 'phases'> {
  return {
    runId, appid: request.appid, snapshotId: request.snapshotId ?? '', dryRun: request.dryRun, snapshotOpenids: 0, followers: 0, missing: NO_COUNTS, stale: NO_COUNTS,
  };
}

/**
 * Sends what is added, in order, one produce call at a time, gathering what arrives meanwhile into the
 * next call. `drain` waits for everything and rethrows the first failure.
 */
class Outbox {
  private readonly queue: OutRecord[] = [];
  private pumping: Promise<void> | undefined;
  private failure: { error: unknown } | undefined;

  constructor(private readonly producer: RecordProducer, private readonly topic: string) {}

  add(records: readonly OutRecord[]): void {
    if (this.failure !== undefined) throw this.failure.error;
    this.queue.push(...records);
    this.pumping ??= this.pump().catch((error: unknown) => { this.failure ??= { error }; }).finally(() => { this.pumping = undefined; });
  }

  async drain(): Promise<void> {
    while (this.pumping !== undefined) await this.pumping;
    if (this.failure !== undefined) throw this.failure.error;
  }

  private async pump(): Promise<void> {
    while (this.queue.length > 0) await this.producer.send(this.topic, this.queue.splice(0, RECORDS_PER_SEND));
  }
}

export function createReconciler(deps: ReconcilerDeps): Reconciler {
  const now = deps.now ?? Date.now;
  const running = new Set<string>();

  const reconcile = async (request: ReconcileRequest, runId: string, startedAt: number): Promise<ReconcileReport> => {
    const { appid } = request;
    const phases = { ...NO_PHASES };
    let report = blankReport(request, runId);
    const finish = async (status: ReconcileReport['status'], reason?: string): Promise<ReconcileReport> => {
      const finishedAt = now();
      const final: ReconcileReport = { ...report, status, ...(reason === undefined ? {} : { reason }), phases, durationMs: finishedAt - startedAt };
      await deps.store.recordRun({
        ...final, trigger: request.trigger, reason: reason ?? '', startedAt, finishedAt,
        status: request.dryRun && status === 'done' ? 'dry-run' : status,
      });
      return final;
    };

    const snapshotId = request.snapshotId ?? await deps.store.latestEndedSnapshot(appid);
    if (snapshotId === undefined) return finish('refused', `no snapshot of ${appid} has ended yet: run \`wxsync snapshot ${appid}\` first`);
    report = { ...report, snapshotId };
    const status = await deps.store.snapshotStatus(appid, snapshotId);
    if (status === undefined) return finish('refused', `the store has no snapshot ${snapshotId} of ${appid}`);
    if (!status.complete) return finish('refused', snapshotRefusal({ ...status, openids: 0, windowEvents: 0 }));

    const waitStart = now();
    await waitForLoaded({
      offsets: deps.offsets,
      groupId: deps.consumerGroup,
      topics: [deps.topics.userEvents, deps.topics.snapshots],
      notBefore: status.endedAt + deps.settings.graceMs,
      timeoutMs: deps.settings.loadTimeoutMs,
      now,
      ...(deps.signal === undefined ? {} : { signal: deps.signal }),
    });
    phases.waitMs = now() - waitStart;
    const loaded = await deps.store.snapshotStatus(appid, snapshotId) ?? status;
    const facts = { ...loaded, ...await deps.store.snapshotCounts(loaded, deps.settings.windowMarginMs) };
    report = { ...report, snapshotOpenids: facts.openids };
    const refusal = snapshotRefusal(facts);
    if (refusal !== undefined) return finish('refused', refusal);

    const queryStart = now();
    const sinceMs = facts.startedAt - deps.settings.windowMarginMs;
    const [missing, stale] = await Promise.all([
      deps.store.candidates('missing', appid, snapshotId, sinceMs),
      deps.store.candidates('stale', appid, snapshotId, sinceMs),
    ]);
    phases.queryMs = now() - queryStart;
    const missingNew = outsideWindow(missing);
    const staleNew = outsideWindow(stale);
    report = {
      ...report,
      // Subscribed in the store = (in the snapshot − missing) + stale: no third pass over the followers.
      followers: facts.openids - missing.length + stale.length,
      missing: { ...NO_COUNTS, found: missing.length, inWindow: missing.length - missingNew.length },
      stale: { ...NO_COUNTS, found: stale.length, inWindow: stale.length - staleNew.length },
    };
    const tooStale = staleShareRefusal(staleNew.length, facts.openids, deps.settings.maxStaleShare);
    if (tooStale !== undefined) return finish('refused', tooStale);

    // Confirmation and publishing overlap: while a chunk's corrections are sent, the next chunk is confirmed.
    const confirmStart = now();
    const basis = { appid, snapshotId, startedAt: facts.startedAt, receivedAt: now() };
    const outbox = request.dryRun ? undefined : new Outbox(deps.producer, deps.topics.userEvents);
    const source = deps.profiles(appid);
    // Both rules are confirmed at once, sharing the configured batchget concurrency.
    const concurrency = Math.max(1, Math.ceil(deps.batchgetConcurrency / 2));
    const confirm = async (openids: readonly string[], decide: typeof missingCorrections, counts: RuleReport): Promise<RuleReport> => {
      const sample: string[] = [];
      let unconfirmed = 0;
      let emitted = 0;
      for (let i = 0; i < openids.length; i += CONFIRM_CHUNK) {
        const decided = decide(basis, await batchGetProfiles(source, openids.slice(i, i + CONFIRM_CHUNK), { concurrency }));
        outbox?.add(decided.events.map((e) => ({ key: userEventKey(e), value: encodeUserEvent(e) })));
        unconfirmed += decided.unconfirmed.length;
        emitted += decided.events.length;
        for (const e of decided.events.slice(0, SAMPLE_SIZE - sample.length)) sample.push(e.openid);
      }
      // A dry run reports as emitted what it would emit, so its counts compare with a real run's.
      return { ...counts, unconfirmed, emitted, sample };
    };
    const [missingReport, staleReport] = await Promise.all([
      confirm(missingNew, missingCorrections, report.missing),
      confirm(staleNew, staleCorrections, report.stale),
    ]);
    phases.confirmMs = now() - confirmStart;
    const publishStart = now();
    await outbox?.drain();
    phases.publishMs = now() - publishStart;
    report = { ...report, missing: missingReport, stale: staleReport };
    deps.logger.info({ appid, snapshotId, runId, missing: report.missing.emitted, stale: report.stale.emitted, dryRun: request.dryRun }, 'reconciled');
    return finish(request.dryRun ? 'dry-run' : 'done');
  };

  return {
    async run(request) {
      const runId = randomUUID();
      const startedAt = now();
      if (running.has(request.appid)) {
        return {
          ...blankReport(request, runId), status: 'busy', reason: `a reconcile of ${request.appid} is already running`, phases: NO_PHASES, durationMs: 0,
        };
      }
      running.add(request.appid);
      try {
        return await reconcile(request, runId, startedAt);
      } catch (error) {
        if (deps.signal?.aborted === true) throw new WxsyncError(ErrorCode.ShuttingDown, `reconcile of ${request.appid} stopped: shutting down`, { cause: error });
        await deps.store.recordRun({
          ...blankReport(request, runId), trigger: request.trigger, status: 'failed', reason: describeError(error), startedAt, finishedAt: now(),
        }).catch((recordError: unknown) => { deps.logger.warn({ err: recordError }, 'cannot record the failed reconcile run'); });
        throw error;
      } finally {
        running.delete(request.appid);
      }
    },
  };
}

function outsideWindow(candidates: readonly Candidate[]): string[] {
  return candidates.filter((c) => !c.inWindow).map((c) => c.openid);
}
