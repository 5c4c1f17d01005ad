import type { ClickHouseClient } from '@clickhouse/client';
import type { Config } from '../lib/config.ts';
import { ErrorCode, isWxsyncError } from '../lib/errors.ts';
import { errorAnswer, sendJson, type Routes } from '../lib/http-server.ts';
import type { DatacubeSource } from '../lib/wechat/datacube.ts';
import { reportOptionsOf, resolveReport, runReport } from '../reports/request.ts';

const REPORT = /^\/api\/report\/([a-z]{1,32})(?:\?(.*))?$/;

/**
 * `GET /api/report/<churn|campaigns>?appid=…|all=1&from=…`: a report as JSON, the code `wxsync report` runs
 * when it opens the store itself. A usage error is a 400 with the CLI's message.
 */
export function reportRoutes(config: Config, clickhouse: ClickHouseClient, datacube: (appid: string) => DatacubeSource): Routes {
  return [['/api/report/', async (req, res) => {
    const match = REPORT.exec(req.url ?? '');
    if (req.method !== 'GET') {
      sendJson(res, 405, { error: 'use GET' });
      return;
    }
    if (match === null) {
      sendJson(res, 404, { error: 'not found' });
      return;
    }
    const gone = new AbortController();
    res.on('close', () => { if (!res.writableFinished) gone.abort(); });
    try {
      const resolved = resolveReport(match[1] ?? '', reportOptionsOf(new URLSearchParams(match[2] ?? '')), config, Date.now());
      sendJson(res, 200, await runReport(config, resolved, { clickhouse, datacube, signal: gone.signal }));
    } catch (error) {
      sendJson(res, isWxsyncError(error, ErrorCode.UsageInvalid) ? 400 : 500, errorAnswer(error));
    }
  }]];
}
