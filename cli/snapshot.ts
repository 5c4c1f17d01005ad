import { parseArgs } from 'node:util';
import { loadConfig } from '../lib/config.ts';
import { ErrorCode, WxsyncError } from '../lib/errors.ts';
import { createKafkaGateway } from '../lib/kafka.ts';
import { createLogger } from '../lib/logger.ts';
import { topicSpecs } from '../lib/topics.ts';
import { WechatClients } from '../lib/wechat/client.ts';
import { snapshotter } from '../producers/snapshot/main.ts';
import { progressReporter } from '../producers/snapshot/progress.ts';

export const summary = 'one snapshot of an account now, with a progress bar on a terminal';

const USAGE = 'usage: wxsync snapshot <appid> [--json]';

/** Exit codes: 0 complete, 1 ended incomplete or stopped, 3 refused (quota), 4 another run holds the account. */
export async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new WxsyncError(ErrorCode.UsageInvalid, `${(error as Error).message}\n${USAGE}`);
  }
  const [appid, ...extra] = parsed.positionals;
  if (appid === undefined || extra.length > 0) throw new WxsyncError(ErrorCode.UsageInvalid, USAGE);
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const abort = new AbortController();
  const clients = new WechatClients({ apiBase: config.wechatApiBase, accounts: config.accounts, logger, signal: abort.signal });
  clients.get(appid);
  // ⚑ The embedded store may be held by `wxsync run`: this command opens only Kafka and WeChat, so it
  // skips enrichment (the scheduled role, which has the store, enriches).
  const kafka = createKafkaGateway(config.kafka, logger, '-snapshot');
  const progress = progressReporter(process.stderr);
  const onSignal = (): void => { abort.abort(); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await kafka.ensureTopics(topicSpecs(config));
    const producer = await kafka.producer();
    const result = await snapshotter({ config, clients, producer, logger, signal: abort.signal, onProgress: (p) => { progress.update(p); } })(appid);
    progress.finish();
    if (parsed.values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    switch (result.status) {
      case 'complete':
        if (!parsed.values.json) process.stdout.write(`snapshot ${result.snapshotId} complete: ${result.openids} openids in ${result.pages} pages, ${result.calls} user/get calls${result.resumedFrom === undefined ? '' : `, resumed at page ${result.resumedFrom}`}\n`);
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
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await kafka.close();
    clients.close();
  }
}
