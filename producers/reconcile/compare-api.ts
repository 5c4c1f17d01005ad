/**
 * Snapshot history on the admin listener, so `wxsync compare` and `wxsync snapshots` work while `wxsync run` holds
 * the embedded store; the same functions (compare.ts) answer as when the CLI opens the store itself.
 *   GET /api/snapshots/<appid>                                   the listing, JSON
 *   GET /api/compare/<appid>[?from=ID][&to=ID]                    the comparison, JSON
 *   GET /api/compare/<appid>?list=added|removed[&from=ID][&to=ID] newline-delimited JSON: one difference a line,
 *       then {"complete":true,"rows":N}, or {"error","code"} if it failed after the first line was sent
 * A bad request answers 400 `{error, code}`, a snapshot that cannot be compared 409, an unknown account 404.
 */
import type http from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorCode, isWxsyncError } from '../../lib/errors.ts';
import { errorAnswer, routedAccount, sendJson, type Routes } from '../../lib/http-server.ts';
import type { Logger } from '../../lib/logger.ts';
import type { DifferenceList, SnapshotHistory } from './compare.ts';
import { compareOptions } from './compare-plan.ts';

/** The differences as lines, ending with a line that says whether the list is complete. */
async function* differenceLines(list: DifferenceList): AsyncGenerator<string> {
  let rows = 0;
  try {
    for await (const chunk of list.rows) {
      rows += chunk.length;
      yield chunk.map((row) => `${JSON.stringify(row)}\n`).join('');
    }
  } catch (error) {
    yield `${JSON.stringify(errorAnswer(error))}\n`;
    return;
  }
  yield `${JSON.stringify({ complete: true, rows })}\n`;
}

export function historyRoutes(history: SnapshotHistory, accounts: ReadonlySet<string>, logger: Logger): Routes {
  const fail = (res: http.ServerResponse, error: unknown): void => {
    if (!isWxsyncError(error)) logger.error({ err: error }, 'snapshot history request failed');
    const status = isWxsyncError(error, ErrorCode.UsageInvalid) ? 400 : isWxsyncError(error, ErrorCode.SnapshotUnavailable) ? 409 : 500;
    sendJson(res, status, errorAnswer(error));
  };
  return [
    ['/api/snapshots/', async (req, res) => {
      const got = routedAccount(req, res, '/api/snapshots/', accounts, 'GET');
      if (got === undefined) return;
      try {
        sendJson(res, 200, await history.list(got.appid));
      } catch (error) {
        fail(res, error);
      }
    }],
    ['/api/compare/', async (req, res) => {
      const got = routedAccount(req, res, '/api/compare/', accounts, 'GET');
      if (got === undefined) return;
      const { appid, query } = got;
      let list: DifferenceList | undefined;
      try {
        const options = compareOptions({ from: query.get('from') ?? undefined, to: query.get('to') ?? undefined, list: query.get('list') ?? undefined });
        if (options.list === undefined) {
          sendJson(res, 200, await history.compare(appid, options));
          return;
        }
        list = await history.differences(appid, options, options.list);
      } catch (error) {
        fail(res, error);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8' });
      await pipeline(Readable.from(differenceLines(list)), res);
    }],
  ];
}
