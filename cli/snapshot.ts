import { createInterface } from 'node:readline';
import { answerError, requestRunning } from '../lib/api-client.ts';
import type { Config } from '../lib/config.ts';
import { ErrorCode, WxsyncError } from '../lib/errors.ts';
import { createKafkaGateway } from '../lib/kafka.ts';
import { createLogger } from '../lib/logger.ts';
import { topicSpecs } from '../lib/topics.ts';
import { WechatClients } from '../lib/wechat/client.ts';
import { accountInvocation, interruptible } from './command.ts';
import { snapshotter, type SnapshotStreamLine } from '../producers/snapshot/main.ts';
import { progressReporter, type ProgressReporter } from '../producers/snapshot/progress.ts';
import type { SnapshotResult } from '../producers/snapshot/runner.ts';

export const summary = 'one snapshot of an account now, with a progress bar on a terminal';

const USAGE = 'usage: wxsync snapshot <appid> [--json]';

/** Exit codes: 0 complete, 1 ended incomplete or stopped, 3 refused (quota), 4 another run holds the account. */
export async function main(argv: readonly string[]): Promise<number> {
  const { appid, values, config } = accountInvocation(argv, USAGE, { json: { type: 'boolean', default: false } });
  const progress = progressReporter(process.stderr);
  const result = await interruptible(async (signal) => await viaRunningProcess(config, appid, progress, signal)
    ?? await direct(appid, config, progress, signal));
  progress.finish();
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  switch (result.status) {
    case 'complete':
      if (!values.json) process.stdout.write(`snapshot ${result.snapshotId} complete: ${result.openids} openids in ${result.pages} pages, ${result.calls} user/get calls${result.resumedFrom === undefined ? '' : `, resumed at page ${result.resumedFrom}`}\n`);
      return 0;
    case 'incomplete':
      process.stderr.write(`wxsync: snapshot ${result.snapshotId} ended incomplete after ${result.pages} pages: ${result.reason ?? ''}\n`);
      return 1;
    case 'stopped':
      process.stderr.write(`wxsync: snapshot ${result.snapshotId} stopped at page ${result.pages} (${result.reason}); run again to resume it\n`);
      return 1;
    case 'refused':
      process.stderr.write(`wxsync: ${result.reason}\n`);
      return 3;
    case 'busy':
      process.stderr.write(`wxsync: ${result.reason}\n`);
      return 4;
  }
}

/**
 * ⚑ While `wxsync run` holds the embedded store, the snapshot runs inside it (through its API), so it is
 * enriched from the store; its progress streams back as JSON lines. Undefined when no run listens
 * or what listens has no snapshot role.
 */
async function viaRunningProcess(config: Config, appid: string, progress: ProgressReporter, signal: AbortSignal): Promise<SnapshotResult | undefined> {
  const answer = await requestRunning(config, 'POST', `/api/snapshot/${appid}`);
  if (answer === undefined) return undefined;
  if (answer.status !== 200) {
    const error = await answerError(answer, 'snapshot');
    // A run without the snapshot role leaves snapshots to this command, which never opens the store.
    if (error.details['missingRole'] === true) return undefined;
    throw error;
  }
  // Going away stops the run there like a shutdown: it keeps its checkpoint.
  const onAbort = (): void => { answer.body.destroy(); };
  signal.addEventListener('abort', onAbort);
  try {
    for await (const text of createInterface({ input: answer.body, crlfDelay: Infinity })) {
      const line = JSON.parse(text) as SnapshotStreamLine;
      if ('progress' in line) progress.update(line.progress);
      else if ('result' in line) return line.result;
      else throw new WxsyncError(ErrorCode.ApiRequestFailed, `the running wxsync failed the snapshot (${line.code}): ${line.error}`);
    }
  } catch (error) {
    if (!signal.aborted) throw error;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  throw new WxsyncError(ErrorCode.ApiRequestFailed, signal.aborted
    ? `stopped; the running wxsync keeps the snapshot's checkpoint, run again to resume it`
    : "the running wxsync ended the answer without a result");
}

/** Nothing runs here: this command opens only Kafka and WeChat (never chDB: its memory stays the crawl's), so it does not enrich. */
async function direct(appid: string, config: Config, progress: ProgressReporter, signal: AbortSignal): Promise<SnapshotResult> {
  const logger = createLogger(config.logLevel);
  const clients = new WechatClients({ apiBase: config.wechatApiBase, accounts: config.accounts, logger, signal });
  const kafka = createKafkaGateway(config.kafka, logger, '-snapshot');
  try {
    await kafka.ensureTopics(topicSpecs(config));
    const producer = await kafka.producer();
    return await snapshotter({ config, clients, kafka, producer, owner: 'wxsync snapshot', logger, signal })(appid, { onProgress: (p) => { progress.update(p); } });
  } finally {
    await kafka.close();
    clients.close();
  }
}
