import { answerError, readText, requestRunning } from '../lib/api-client.ts';
import { createClickHouse } from '../lib/clickhouse.ts';
import type { Config } from '../lib/config.ts';
import { createKafkaGateway } from '../lib/kafka.ts';
import { createLogger } from '../lib/logger.ts';
import { migrate } from '../lib/migrate.ts';
import { topicSpecs } from '../lib/topics.ts';
import { WechatClients } from '../lib/wechat/client.ts';
import { accountInvocation, interruptible } from './command.ts';
import { reconcilerFor } from '../producers/reconcile/main.ts';
import type { LiveReport, ReconcileReport, RuleReport } from '../producers/reconcile/runner.ts';

export const summary = 'reconcile an account against its newest snapshot (--dry-run: emit nothing)';

const USAGE = 'usage: wxsync reconcile <appid> [--dry-run] [--json] [--snapshot <id>]';

/** Exit codes: 0 reconciled (or dry run), 3 refused (incomplete snapshot, stale share). A run in flight is waited for, never refused. */
export async function main(argv: readonly string[]): Promise<number> {
  const { appid, values, config } = accountInvocation(argv, USAGE, {
    'dry-run': { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, snapshot: { type: 'string' },
  });
  const dryRun = values['dry-run'];
  const snapshotId = values.snapshot;

  const report = await viaRunningProcess(config, appid, dryRun, snapshotId)
    ?? await interruptible((signal) => direct(appid, dryRun, snapshotId, config, signal));
  process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : describe(report));
  switch (report.status) {
    case 'done':
    case 'dry-run':
      return 0;
    case 'refused':
      if (!values.json) process.stderr.write(`wxsync: reconcile refused: ${report.reason ?? ''}\n`);
      return 3;
  }
}

/** ⚑ While `wxsync run` holds the embedded store, only it may open it: ask it. */
async function viaRunningProcess(config: Config, appid: string, dryRun: boolean, snapshotId: string | undefined): Promise<ReconcileReport | undefined> {
  const query = new URLSearchParams(dryRun ? { dryRun: '1' } : {});
  if (snapshotId !== undefined) query.set('snapshot', snapshotId);
  const answer = await requestRunning(config, 'POST', `/api/reconcile/${appid}?${query.toString()}`);
  if (answer === undefined) return undefined;
  if (answer.status !== 200) throw await answerError(answer, 'reconcile');
  return JSON.parse(await readText(answer.body)) as ReconcileReport;
}

async function direct(appid: string, dryRun: boolean, snapshotId: string | undefined, config: Config, signal: AbortSignal): Promise<ReconcileReport> {
  const logger = createLogger(config.logLevel);
  const kafka = createKafkaGateway(config.kafka, logger, '-reconcile');
  const clickhouse = createClickHouse(config.clickhouse);
  const clients = new WechatClients({ apiBase: config.wechatApiBase, accounts: config.accounts, logger, signal });
  try {
    await kafka.ensureTopics(topicSpecs(config));
    await migrate(clickhouse, config.clickhouse.database, logger);
    const producer = await kafka.producer();
    try {
      const { reconciler } = reconcilerFor({ config, kafka, clickhouse, producer, clients, logger, signal });
      return await reconciler.run({ appid, dryRun, trigger: 'manual', ...(snapshotId === undefined ? {} : { snapshotId }) });
    } finally {
      await producer.close();
    }
  } finally {
    clients.close();
    await kafka.close();
    await clickhouse.close();
  }
}

function sample(openids: readonly string[]): string {
  return openids.length > 0 ? `\n    e.g. ${openids.join(' ')}` : '';
}

function rule(name: string, verb: string, counts: RuleReport, dryRun: boolean): string {
  return `  ${name}: ${counts.found} found (${counts.inWindow} changed inside the window, confirmed live below), ${counts.unconfirmed} not confirmed by batchget, `
    + `${counts.skipped} not orderable after the store's newest event, ${counts.emitted} ${verb} corrections ${dryRun ? 'would be emitted' : 'emitted'}${sample(counts.sample)}\n`;
}

function live(counts: LiveReport, dryRun: boolean): string {
  return `  live: ${counts.checked} users with events inside the window confirmed by batchget, ${counts.emitted} corrections ${dryRun ? 'would be emitted' : 'emitted'}, `
    + `${counts.skipped} skipped (WeChat's answer could not be ordered after the store's newest event)${sample(counts.sample)}\n`;
}

function describe(report: ReconcileReport): string {
  if (report.status === 'refused') return '';
  return `reconcile of ${report.appid} against snapshot ${report.snapshotId}${report.dryRun ? ' (dry run, nothing emitted)' : ''}`
    + `${report.joined === true ? ' (the run already in flight for it, reported)' : ''}: `
    + `${report.snapshotOpenids} openids in the snapshot, ${report.followers} followers in the store before\n`
    + rule('missing', 'subscribe', report.missing, report.dryRun)
    + rule('stale', 'unsubscribe', report.stale, report.dryRun)
    + live(report.live, report.dryRun)
    + (report.fallbackTimes > 0 ? `  ${report.fallbackTimes} subscribe corrections at T0: WeChat's subscribe_time was absent or out of range\n` : '')
    + `  ${report.durationMs} ms (waiting for the consumer ${report.phases.waitMs}, comparison ${report.phases.queryMs}, batchget and publishing ${report.phases.confirmMs}, last sends ${report.phases.publishMs})\n`;
}
