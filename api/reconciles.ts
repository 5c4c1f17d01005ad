/**
 * `GET /api/reconciles?appid=…|all=1[&limit=60]`: the latest reconcile runs (dry runs aside), oldest first, with
 * the corrections each emitted by rule: a `missing` correction is a follow whose push was lost, a `stale` one an
 * unfollow whose push was lost, a `live` one either, confirmed by batchget inside the snapshot's window. The
 * snapshot listing (`/api/snapshots/<appid>`) keeps one result per snapshot, the newest run's; a snapshot reconciled
 * again (on `reconcileCron`) then shows the re-run, which finds nothing left to correct. This lists every run.
 */
import type { ClickHouseClient } from '../lib/clickhouse.ts';
import type { Config } from '../lib/config.ts';
import { ErrorCode, WxsyncError, isWxsyncError } from '../lib/errors.ts';
import { countParam, errorAnswer, sendJson, type Routes } from '../lib/http-server.ts';
import { getQuery } from './get.ts';

export const DEFAULT_RUNS = 60;
export const MAX_RUNS = 1000;

export interface ReconcileRun {
  readonly appid: string;
  readonly runId: string;
  readonly snapshotId: string;
  /** What started it: the role after a snapshot loaded, a schedule, a request. */
  readonly trigger: string;
  readonly status: string;
  readonly reason: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  /** missing + stale + live. */
  readonly corrections: number;
  readonly emitted: { readonly missing: number; readonly stale: number; readonly live: number };
  /** Differences batchget no longer confirmed, and those it confirmed that could not be ordered after the store's events. */
  readonly unconfirmed: number;
  readonly skipped: number;
}

export interface ReconcileRuns {
  readonly appids: readonly string[];
  readonly runs: readonly ReconcileRun[];
}

interface RunRow {
  appid: string;
  run_id: string;
  snapshot_id: string;
  trigger: string;
  status: string;
  reason: string;
  started: string;
  finished: string;
  missing_emitted: string;
  stale_emitted: string;
  live_emitted: string;
  unconfirmed: string;
  skipped: string;
}

/** The newest `limit` runs of the accounts, oldest first. */
export async function reconcileRuns(clickhouse: ClickHouseClient, database: string, appids: readonly string[], limit: number): Promise<ReconcileRuns> {
  const rows = await (await clickhouse.query({
    query: `SELECT appid, run_id, snapshot_id, trigger, status, reason,
        toUnixTimestamp64Milli(started_at) AS started, toUnixTimestamp64Milli(finished_at) AS finished,
        missing_emitted, stale_emitted, live_emitted,
        missing_unconfirmed + stale_unconfirmed AS unconfirmed, missing_skipped + stale_skipped + live_skipped AS skipped
      FROM ${database}.reconcile_runs
      WHERE appid IN {appids:Array(String)} AND dry_run = 0
      ORDER BY started_at DESC, run_id DESC
      LIMIT {limit:UInt32}`,
    query_params: { appids, limit },
    format: 'JSONEachRow',
  })).json<RunRow>();
  const runs = rows.reverse().map((r): ReconcileRun => {
    const emitted = { missing: Number(r.missing_emitted), stale: Number(r.stale_emitted), live: Number(r.live_emitted) };
    return {
      appid: r.appid, runId: r.run_id, snapshotId: r.snapshot_id, trigger: r.trigger, status: r.status, reason: r.reason,
      startedAt: new Date(Number(r.started)).toISOString(), finishedAt: new Date(Number(r.finished)).toISOString(),
      corrections: emitted.missing + emitted.stale + emitted.live, emitted, unconfirmed: Number(r.unconfirmed), skipped: Number(r.skipped),
    };
  });
  return { appids, runs };
}

function usage(message: string): WxsyncError {
  return new WxsyncError(ErrorCode.UsageInvalid, message);
}

/** The accounts and limit a query string asks for; a usage error for anything else. */
export function runsRequest(query: URLSearchParams, config: Config): { readonly appids: string[]; readonly limit: number } {
  const unknown = [...query.keys()].find((k) => !['appid', 'all', 'limit'].includes(k));
  if (unknown !== undefined) throw usage(`unknown parameter ${JSON.stringify(unknown.slice(0, 64))}`);
  const known = config.accounts.map((a) => a.appid);
  const appid = query.get('appid');
  const all = query.get('all') === '1';
  if ((appid === null) === !all) throw usage('give an appid or all=1');
  if (appid !== null && !known.includes(appid)) throw usage(`unknown account ${appid.slice(0, 64)}`);
  return { appids: appid === null ? known : [appid], limit: countParam(query, 'limit', DEFAULT_RUNS, MAX_RUNS) };
}

export function reconcileRoutes(config: Config, clickhouse: ClickHouseClient): Routes {
  return [['/api/reconciles', async (req, res) => {
    const query = getQuery(req, res, '/api/reconciles');
    if (query === undefined) return;
    try {
      const { appids, limit } = runsRequest(query, config);
      sendJson(res, 200, await reconcileRuns(clickhouse, config.clickhouse.database, appids, limit));
    } catch (error) {
      sendJson(res, isWxsyncError(error, ErrorCode.UsageInvalid) ? 400 : 500, errorAnswer(error));
    }
  }]];
}
