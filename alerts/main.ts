import { sleep } from '../lib/backoff.ts';
import type { Logger } from '../lib/logger.ts';
import type { RoleStarter } from '../lib/role.ts';
import { WechatClients } from '../lib/wechat/client.ts';
import { datacubeCache } from '../api/datacube-cache.ts';
import { createDatacubeCheck } from './datacube.ts';
import { createDelivery } from './delivery.ts';
import { createAlertLoop } from './observe.ts';
import { webhookHost } from './webhook-config.ts';

/** Runs `work` now and then every `everyMs` until `signal` aborts; a failed run is logged and the next one comes. */
async function every(everyMs: number, signal: AbortSignal, logger: Logger, what: string, work: () => Promise<void>): Promise<void> {
  while (!signal.aborted) {
    try {
      await work();
    } catch (error) {
      logger.error({ err: error }, `${what} failed`);
    }
    await sleep(everyMs, signal);
  }
}

/**
 * The `alerts` role: the rules over the metrics of the roles in this process, every WXSYNC_ALERT_EVAL_S, to the
 * webhooks of WXSYNC_ALERT_WEBHOOKS; and the daily datacube comparison whose gauge one rule reads.
 */
export const startAlertsRole: RoleStarter = ({ config, logger: parent, registry, clickhouse }) => {
  const logger = parent.child({ role: 'alerts' });
  const settings = config.alerts;
  const stopping = new AbortController();
  const context = {
    names: new Map(config.accounts.flatMap((a) => (a.name === undefined ? [] : [[a.appid, a.name] as const]))),
    tz: config.reports.tz,
  };
  const delivery = createDelivery({ webhooks: settings.webhooks, context, options: settings.delivery, logger, registry });
  const loop = createAlertLoop({ config, registry, clickhouse, logger, delivery, context });
  // The datacube's figures for a settled range never change: asked once however often the comparison runs.
  const clients = new WechatClients({ apiBase: config.wechatApiBase, accounts: config.accounts, logger, signal: stopping.signal });
  const cache = datacubeCache();
  const datacube = createDatacubeCheck({ config, clickhouse, datacube: (appid) => cache.source(clients.get(appid)), registry, logger });
  const evaluating = every(settings.evalMs, stopping.signal, logger, 'alert evaluation', () => loop.tick());
  const comparing = settings.datacubeEveryMs === 0 ? Promise.resolve() : every(settings.datacubeEveryMs, stopping.signal, logger, 'datacube comparison', () => datacube.run());
  logger.info({
    everySeconds: settings.evalMs / 1000,
    webhooks: settings.webhooks.map((w) => ({ channel: w.type, host: webhookHost(w.url), language: w.language })),
  }, settings.webhooks.length === 0 ? 'alerts evaluated and logged; no webhook configured (WXSYNC_ALERT_WEBHOOKS)' : 'alerts evaluated and sent to webhooks');
  return Promise.resolve({
    name: 'alerts',
    ready: () => true,
    async stop() {
      stopping.abort();
      await Promise.all([evaluating, comparing]);
      await delivery.stop();
      clients.close();
    },
  });
};
