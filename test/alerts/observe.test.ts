import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createDelivery } from '../../alerts/delivery.ts';
import { createAlertLoop } from '../../alerts/observe.ts';
import type { TextContext } from '../../alerts/text.ts';
import { loadConfig, type Config } from '../../lib/config.ts';
import { silentLogger } from '../../lib/logger.ts';
import { Gauge, createRegistry } from '../../lib/metrics.ts';
import { storeWithEvents, type EventStore } from '../support/event-store.ts';

const APPID = 'wx0123456789abcdef';
const CONTEXT: TextContext = { names: new Map([[APPID, '测试号']]), tz: 'Asia/Shanghai' };

interface Posted { readonly title: string; readonly alerts: { kind: string; status: string; appid: string; figures: Record<string, unknown>; text: string }[] }

describe('the alert loop over a registry and the store', () => {
  let store: EventStore;
  let server: http.Server;
  const posted: Posted[] = [];
  let base = '';

  before(async () => {
    store = await storeWithEvents([]);
    server = http.createServer((req, res) => {
      let text = '';
      req.on('data', (chunk: Buffer) => { text += chunk.toString(); });
      req.on('end', () => {
        posted.push(JSON.parse(text) as Posted);
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await store.close();
    await new Promise((resolve) => { server.close(resolve); });
  });

  it('fires a drift with the sentinel\'s figures and action, resolves it with the outcome, and sets the firing gauge', async () => {
    const config: Config = { ...store.env.config, alerts: { ...loadConfig({ WXSYNC_ALERT_RESOLVE_HOLD_S: '30' }).alerts, webhooks: [{ type: 'json', url: `${base}/hook`, language: 'en' }] } };
    const registry = createRegistry();
    const drift = new Gauge({ name: 'wxsync_sentinel_drift_followers', help: 'h', labelNames: ['appid'], registers: [registry] });
    let now = Date.parse('2026-11-26T02:00:00Z');
    const delivery = createDelivery({ webhooks: config.alerts.webhooks, context: CONTEXT, options: config.alerts.delivery, logger: silentLogger(), registry });
    const loop = createAlertLoop({ config, registry, clickhouse: store.clickhouse, logger: silentLogger(), delivery, context: CONTEXT, now: () => now });
    const row = (at: number, fields: Record<string, unknown>): Promise<unknown> => store.clickhouse.insert({
      table: `${store.db}.sentinel_checks`, format: 'JSONEachRow',
      values: [{ appid: APPID, checked_at: (at / 1000).toFixed(3), result: 'drift', wechat_total: 0, store_count: 0, in_flight: 0, drift: 0, action: '', snapshot_id: '', outcome: '', reason: '', ...fields }],
    });
    // An outcome of an earlier drift, older than this one's action: not this drift's.
    await row(now - 86_400_000, { result: 'outcome', outcome: 'reconciled: 3 corrections; store = WeChat' });
    await row(now - 1000, { wechat_total: 20_000, store_count: 19_950, drift: 50, action: 'snapshot s-9 started', snapshot_id: 's-9' });
    drift.set({ appid: APPID }, 50);
    await loop.tick();
    await delivery.idle();
    assert.equal(posted.length, 1);
    assert.deepEqual(posted[0]?.alerts.map((a) => [a.kind, a.status, a.appid, a.text]), [
      ['drift', 'firing', APPID, `[FIRING] Drift on 测试号 (${APPID}): WeChat 20,000, store 19,950: 50 lost; snapshot s-9 started`],
    ]);
    assert.match(await registry.metrics(), new RegExp(`^wxsync_alerts_firing\\{kind="drift",appid="${APPID}"\\} 1$`, 'm'));

    // Still drifting: nothing new is sent.
    now += 15_000;
    await loop.tick();
    drift.set({ appid: APPID }, 0);
    await row(now, { result: 'outcome', outcome: 'reconciled: 50 corrections; store = WeChat' });
    for (let i = 0; i < 3; i += 1) {
      now += 15_000;
      await loop.tick();
    }
    await delivery.idle();
    assert.equal(posted.length, 2, 'resolved once the hold passed, and only once');
    assert.deepEqual(posted[1]?.alerts.map((a) => [a.status, a.text]), [['resolved', `[RESOLVED] Drift on 测试号 (${APPID}) resolved: reconciled: 50 corrections; store = WeChat (after 1 min)`]]);
    assert.match(await registry.metrics(), new RegExp(`^wxsync_alerts_firing\\{kind="drift",appid="${APPID}"\\} 0$`, 'm'));

    // Without the sentinel's table the alert still fires, with the metric's figure alone.
    await store.clickhouse.command({ query: `DROP TABLE ${store.db}.sentinel_checks` });
    drift.set({ appid: APPID }, -4);
    now += 15_000;
    await loop.tick();
    await delivery.idle();
    assert.deepEqual(posted[2]?.alerts.map((a) => a.text), [`[FIRING] Drift on 测试号 (${APPID}): the store is 4 followers off WeChat's count`]);
    await delivery.stop();
  });
});
