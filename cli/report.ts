import { parseArgs } from 'node:util';
import { answerError, readText, requestRunning } from '../lib/api-client.ts';
import { createClickHouse } from '../lib/clickhouse.ts';
import { loadConfig, type Config } from '../lib/config.ts';
import { ErrorCode, WxsyncError } from '../lib/errors.ts';
import { createLogger } from '../lib/logger.ts';
import { migrate } from '../lib/migrate.ts';
import { WechatClients } from '../lib/wechat/client.ts';
import type { CampaignsReport } from '../reports/campaigns.ts';
import type { ChurnReport } from '../reports/churn.ts';
import { FORMATS, formatCampaigns, formatChurn, type Format } from '../reports/format.ts';
import { reportQuery, resolveReport, runReport, type ReportOptions } from '../reports/request.ts';
import { interruptible } from './command.ts';

export const summary = 'churn and QR campaign reports (report churn|campaigns --help)';

const USAGE = [
  'usage: wxsync report churn <appid>|--all [--from DATE] [--to DATE] [--days N] [--by hour|day|week|month]',
  '                           [--split scene|campaign] [--tz ZONE] [--format table|json|csv] [--fresh] [--check]',
  '       wxsync report campaigns <appid> [--tz ZONE] [--format table|json|csv] [--fresh]',
].join('\n');

function usage(message: string): WxsyncError {
  return new WxsyncError(ErrorCode.UsageInvalid, `${message}\n${USAGE}`);
}

/** Exit codes: 0 printed, 2 usage (nothing printed), 1 anything else (nothing printed as if complete). */
export async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv], allowPositionals: true, strict: true,
      options: {
        all: { type: 'boolean' }, from: { type: 'string' }, to: { type: 'string' }, days: { type: 'string' }, by: { type: 'string' },
        split: { type: 'string' }, tz: { type: 'string' }, format: { type: 'string', default: 'table' }, fresh: { type: 'boolean' }, check: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    });
  } catch (error) {
    throw usage((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [report, appid, ...extra] = positionals;
  if (report === undefined) throw usage('name a report');
  if (extra.length > 0) throw usage(`unexpected ${extra.join(' ')}`);
  const format = values.format;
  if (!(FORMATS as readonly string[]).includes(format)) throw usage(`--format must be one of ${FORMATS.join(', ')}, not ${JSON.stringify(format)}`);
  const options: ReportOptions = {
    appid, all: values.all, from: values.from, to: values.to, days: values.days, by: values.by, split: values.split, tz: values.tz, fresh: values.fresh,
    check: values.check,
  };
  const config = loadConfig();
  // Checked here too, so a bad invocation exits 2 before anything is opened or asked.
  const resolved = resolveReport(report, options, config, Date.now());

  const answer = await viaRunningProcess(config, resolved.report, options)
    ?? await interruptible((signal) => direct(config, resolved.report, options, signal));
  // The whole report is built before anything is printed: a failure prints no partial table.
  process.stdout.write(`${answer.report === 'churn' ? formatChurn(answer, format as Format) : formatCampaigns(answer, format as Format)}\n`);
  return 0;
}

/** ⚑ While `wxsync run` holds the embedded store, only it may open it: ask it. */
async function viaRunningProcess(config: Config, report: string, options: ReportOptions): Promise<ChurnReport | CampaignsReport | undefined> {
  const answer = await requestRunning(config, 'GET', `/api/report/${report}?${reportQuery(options).toString()}`);
  if (answer === undefined) return undefined;
  if (answer.status !== 200) throw await answerError(answer, 'api');
  return JSON.parse(await readText(answer.body)) as ChurnReport | CampaignsReport;
}

async function direct(config: Config, report: string, options: ReportOptions, signal: AbortSignal): Promise<ChurnReport | CampaignsReport> {
  const logger = createLogger(config.logLevel);
  const clickhouse = createClickHouse(config.clickhouse);
  const clients = new WechatClients({ apiBase: config.wechatApiBase, accounts: config.accounts, logger, signal });
  try {
    await migrate(clickhouse, config.clickhouse.database, logger);
    // Resolved again at the time of reading: "today" and "now" are when the figures are read.
    return await runReport(config, resolveReport(report, options, config, Date.now()), { clickhouse, datacube: (appid) => clients.get(appid), signal });
  } finally {
    clients.close();
    await clickhouse.close();
  }
}
