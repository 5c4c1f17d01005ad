/**
 * One reconcile of one account against one snapshot: wait for the store to hold everything up to T1 +
 * grace, compare the whole snapshot with the store in one pass, confirm each difference and each user who
 * changed inside the snapshot's window with batchget, emit the corrections into wx.user.events and record
 * the run. Decisions live in plan.ts.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../../lib/config.ts';
import { encodeUserEvent, userEventKey } from '../../lib/contracts/user-event.ts';
import { ErrorCode, WxsyncError, describeError } from '../../lib/errors.ts';
import type { OutRecord, RecordProducer } from '../../lib/kafka.ts';
import type { Logger } from '../../lib/logger.ts';
import { batchGetProfiles, type ProfileSource } from '../../lib/wechat/batchget.ts';
import { confirmationTime, decide, snapshotRefusal, staleShareRefusal, type Candidate, type CorrectionBasis, type Outcome } from './plan.ts';
import type { LiveCounts, ReconcileStore, RuleCounts } from './store.ts';
import { waitForLoaded, type OffsetSource } from './watermark.ts';

export type ReconcileTrigger = 'manual' | 'schedule' | 'snapshot';

export interface ReconcileRequest {
  readonly appid: string;
  /** Defaults to the account's newest snapshot that has ended, once everything published so far is loaded. */
  readonly snapshotId?: string;
  readonly dryRun: boolean;
  readonly trigger: ReconcileTrigger;
}

export interface RuleReport extends RuleCounts {
  /** Up to SAMPLE_SIZE openids that get (or, in a dry run, would get) a correction. */
  readonly sample: readonly string[];
}

export interface LiveReport extends LiveCounts {
  readonly sample: readonly string[];
}

export interface ReconcileReport {
  readonly runId: string;
  readonly appid: string;
  readonly snapshotId: string;
  readonly status: 'done' | 'dry-run' | 'refused';
  readonly reason?: string;
  readonly dryRun: boolean;
  readonly snapshotOpenids: number;
  readonly followers: number;
  readonly missing: RuleReport;
  readonly stale: RuleReport;
  /** Users with an event at or after T0 − δ, confirmed live. */
  readonly live: LiveReport;
  /** Subscribe corrections at T0 because WeChat's subscribe_time was absent or outside the contract. */
  readonly fallbackTimes: number;
  /** Set when this request found a run of the same snapshot in flight and reports that run instead of repeating it. */
  readonly joined?: boolean;
  /** Milliseconds per phase: waiting for the consumer, the comparison, batchget (publishing overlaps it), the rest of publishing. */
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
  /**
   * Called after each run that is neither a dry run nor failed, once its corrections are loaded: records the
   * snapshot's comparison with the one before it and applies retention (compare.ts afterReconcile). Its failure is
   * logged, never the run's: the corrections are out, and the next run records what this one could not.
   */
  readonly afterRun?: (appid: string, snapshotId: string) => Promise<void>;
}

export interface Reconciler {
  run(request: ReconcileRequest): Promise<ReconcileReport>;
}

const SAMPLE_SIZE = 10;
/**
 * Candidates read from the store and confirmed at a time: 100 batchget calls kept in flight without a pause,
 * whose corrections are sent while the next page is confirmed.
 */
const PAGE_SIZE = 10_000;
/**
 * Corrections per produce call. kafkajs encodes a large call superlinearly: 40k corrections took 0.46 s in calls
 * of 2,000, 0.73 s in calls of 10,000 and 4.3 s in calls of 20,000 here.
 */
const RECORDS_PER_SEND = 2000;
/** How long the comparison after a run waits for the run's corrections to be loaded before leaving it to the next run. */
const CORRECTIONS_LOAD_TIMEOUT_MS = 60_000;
const NO_COUNTS: RuleReport = { found: 0, inWindow: 0, unconfirmed: 0, skipped: 0, emitted: 0, sample: [] };
const NO_LIVE: LiveReport = { checked: 0, emitted: 0, skipped: 0, sample: [] };
const NO_PHASES: ReconcileReport['phases'] = { waitMs: 0, queryMs: 0, confirmMs: 0, publishMs: 0 };

/** A run's report before anything was counted: what a failed or refused-early run reports. */
function blankReport(request: ReconcileRequest, runId: string): Omit<ReconcileReport, 'status' | 'durationMs' | 'phases'> {
  return {
    runId, appid: request.appid, snapshotId: request.snapshotId ?? '', dryRun: request.dryRun, snapshotOpenids: 0, followers: 0,
    missing: NO_COUNTS, stale: NO_COUNTS, live: NO_LIVE, fallbackTimes: 0,
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

/** Counts of one run's confirmations, by what decided them. */
class Tally {
  readonly missing = { unconfirmed: 0, skipped: 0, emitted: 0, sample: [] as string[] };
  readonly stale = { unconfirmed: 0, skipped: 0, emitted: 0, sample: [] as string[] };
  readonly live = { checked: 0, emitted: 0, skipped: 0, sample: [] as string[] };
  fallbackTimes = 0;

  count(candidate: Candidate, outcome: Outcome): void {
    if (candidate.inWindow) {
      this.live.checked += 1;
      this.settle(this.live, candidate, outcome);
      return;
    }
    const rule = candidate.rule === 'stale' ? this.stale : this.missing;
    if (outcome.kind === 'agree') rule.unconfirmed += 1;
    else this.settle(rule, candidate, outcome);
  }

  private settle(tally: { skipped: number; emitted: number; sample: string[] }, candidate: Candidate, outcome: Outcome): void {
    if (outcome.kind === 'skip') tally.skipped += 1;
    if (outcome.kind !== 'emit') return;
    tally.emitted += 1;
    if (outcome.fallbackTime) this.fallbackTimes += 1;
    if (tally.sample.length < SAMPLE_SIZE) tally.sample.push(candidate.openid);
  }
}

export function createReconciler(deps: ReconcilerDeps): Reconciler {
  const now = deps.now ?? Date.now;
  /** Per account, the run in flight (and the requests queued behind it): runs of one account never overlap. */
  const tails = new Map<string, Promise<ReconcileReport | undefined>>();

  const loadedUpTo = async (notBefore: number, timeoutMs = deps.settings.loadTimeoutMs): Promise<void> => {
    await waitForLoaded({
      offsets: deps.offsets,
      groupId: deps.consumerGroup,
      topics: [deps.topics.userEvents, deps.topics.snapshots],
      notBefore,
      timeoutMs,
      now,
      ...(deps.signal === undefined ? {} : { signal: deps.signal }),
    });
  };

  const reconcile = async (request: ReconcileRequest, snapshotId: string | undefined, runId: string, startedAt: number, waited: number): Promise<ReconcileReport> => {
    const { appid } = request;
    const phases = { ...NO_PHASES, waitMs: waited };
    let report = { ...blankReport(request, runId), snapshotId: snapshotId ?? '' };
    const finish = async (status: ReconcileReport['status'], reason?: string): Promise<ReconcileReport> => {
      const finishedAt = now();
      const final: ReconcileReport = { ...report, status, ...(reason === undefined ? {} : { reason }), phases, durationMs: finishedAt - startedAt };
      await deps.store.recordRun({
        ...final, trigger: request.trigger, reason: reason ?? '', startedAt, finishedAt,
        status: request.dryRun && status === 'done' ? 'dry-run' : status,
      });
      return final;
    };

    if (snapshotId === undefined) return finish('refused', `no snapshot of ${appid} has ended yet: run \`wxsync snapshot ${appid}\` first`);
    const status = await deps.store.snapshotStatus(appid, snapshotId);
    if (status === undefined) return finish('refused', `the store has no snapshot ${snapshotId} of ${appid}`);
    if (!status.complete) return finish('refused', snapshotRefusal({ ...status, openids: 0, windowEvents: 0 }));

    const waitStart = now();
    await loadedUpTo(status.endedAt + deps.settings.graceMs);
    phases.waitMs += now() - waitStart;
    const loaded = await deps.store.snapshotStatus(appid, snapshotId) ?? status;
    const queryStart = now();
    const compared = { runId, appid, snapshotId, sinceMs: loaded.startedAt - deps.settings.windowMarginMs };
    try {
      // The snapshot's own checks and the comparison run side by side: the comparison publishes nothing, and
      // its rows are dropped unread when the checks refuse the snapshot.
      const [snapshotCounts, counts] = await Promise.all([
        deps.store.snapshotCounts(loaded, deps.settings.windowMarginMs),
        deps.store.compare(compared),
      ]);
      phases.queryMs = now() - queryStart;
      const facts = { ...loaded, ...snapshotCounts };
      report = { ...report, snapshotOpenids: facts.openids };
      const refusal = snapshotRefusal(facts);
      if (refusal !== undefined) return await finish('refused', refusal);
      report = {
        ...report,
        // Following in the store = (in the snapshot − missing) + stale: no third pass over the followers.
        followers: facts.openids - counts.missing.found + counts.stale.found,
        missing: { ...NO_COUNTS, ...counts.missing },
        stale: { ...NO_COUNTS, ...counts.stale },
      };
      const tooStale = staleShareRefusal(counts.stale.found - counts.stale.inWindow, facts.openids, deps.settings.maxStaleShare);
      if (tooStale !== undefined) return await finish('refused', tooStale);

      // One stream of candidates, confirmed a page at a time; a page's corrections are sent while the next
      // page is confirmed. Any failure stops the whole run: nothing of either rule goes on without the other.
      const confirmStart = now();
      const basis: CorrectionBasis = { appid, snapshotId, startedAt: facts.startedAt, receivedAt: now() };
      const outbox = request.dryRun ? undefined : new Outbox(deps.producer, deps.topics.userEvents);
      const source = deps.profiles(appid);
      const tally = new Tally();
      for await (const page of deps.store.candidatePages(compared, PAGE_SIZE)) {
        // Taken before the calls: whatever WeChat answers is true at this moment or later.
        const confirmedAt = confirmationTime(now());
        const profiles = await batchGetProfiles(source, page.map((c) => c.openid), { concurrency: deps.batchgetConcurrency });
        const records: OutRecord[] = [];
        for (const [k, candidate] of page.entries()) {
          const profile = profiles[k];
          const outcome: Outcome = profile === undefined ? { kind: 'skip', why: 'batchget gave no answer' } : decide(basis, candidate, profile, confirmedAt);
          tally.count(candidate, outcome);
          if (outcome.kind === 'emit') records.push({ key: userEventKey(outcome.event), value: encodeUserEvent(outcome.event) });
        }
        outbox?.add(records);
      }
      phases.confirmMs = now() - confirmStart;
      const publishStart = now();
      await outbox?.drain();
      phases.publishMs = now() - publishStart;
      // A dry run reports as emitted what it would emit, so its counts compare with a real run's.
      report = {
        ...report,
        missing: { ...report.missing, ...tally.missing },
        stale: { ...report.stale, ...tally.stale },
        live: tally.live,
        fallbackTimes: tally.fallbackTimes,
      };
      deps.logger.info({
        appid, snapshotId, runId, missing: tally.missing.emitted, stale: tally.stale.emitted, live: tally.live.emitted,
        liveSkipped: tally.live.skipped, dryRun: request.dryRun,
      }, 'reconciled');
      return await finish(request.dryRun ? 'dry-run' : 'done');
    } finally {
      await deps.store.forget(runId).catch((error: unknown) => { deps.logger.warn({ err: error, runId }, 'cannot drop the run\'s work tables (their TTL will)'); });
    }
  };

  const historyAfter = async (report: ReconcileReport): Promise<void> => {
    const { appid, snapshotId } = report;
    if (deps.afterRun === undefined) return;
    try {
      // The corrections just published carry the scenes of the users they add, which the comparison reads. Bounded:
      // a `wxsync reconcile` run with no consumer anywhere must not hang; the next run records what this one skips.
      if (report.missing.emitted + report.stale.emitted + report.live.emitted > 0) {
        await loadedUpTo(now(), Math.min(deps.settings.loadTimeoutMs, CORRECTIONS_LOAD_TIMEOUT_MS));
      }
      await deps.afterRun(appid, snapshotId);
    } catch (error) {
      if (deps.signal?.aborted !== true) deps.logger.warn({ err: error, appid, snapshotId }, 'cannot record the snapshot comparison or apply retention after the reconcile');
    }
  };

  /** Resolves the snapshot and runs, or reports the run that just finished for that very snapshot. */
  const runAfter = async (request: ReconcileRequest, previous: ReconcileReport | undefined): Promise<ReconcileReport> => {
    const runId = randomUUID();
    const startedAt = now();
    try {
      let waited = 0;
      let snapshotId = request.snapshotId;
      if (snapshotId === undefined) {
        // The newest snapshot is the newest *loaded*: a snapshot that just ended (`wxsync snapshot X && wxsync
        // reconcile X`) may still be on its way into the store.
        await loadedUpTo(now());
        waited = now() - startedAt;
        snapshotId = await deps.store.latestEndedSnapshot(request.appid);
      }
      if (previous !== undefined && previous.snapshotId === snapshotId && previous.status === 'done' && !previous.dryRun && !request.dryRun) {
        return { ...previous, joined: true };
      }
      const report = await reconcile(request, snapshotId, runId, startedAt, waited);
      if (!report.dryRun && report.snapshotId !== '') await historyAfter(report);
      return report;
    } catch (error) {
      if (deps.signal?.aborted === true) throw new WxsyncError(ErrorCode.ShuttingDown, `reconcile of ${request.appid} stopped: shutting down`, { cause: error });
      await deps.store.recordRun({
        ...blankReport(request, runId), trigger: request.trigger, status: 'failed', reason: describeError(error), startedAt, finishedAt: now(),
      }).catch((recordError: unknown) => { deps.logger.warn({ err: recordError }, 'cannot record the failed reconcile run'); });
      throw error;
    }
  };

  return {
    run(request) {
      // A request arriving while a run of the account is in flight waits for it, then reports it if it
      // reconciled the snapshot this request is for, else runs after it: never two at once, never "busy".
      const previous = tails.get(request.appid);
      const mine = (async () => runAfter(request, await previous?.catch(() => undefined)))();
      const tail = mine.catch(() => undefined);
      tails.set(request.appid, tail);
      void tail.then(() => { if (tails.get(request.appid) === tail) tails.delete(request.appid); });
      return mine;
    },
  };
}
