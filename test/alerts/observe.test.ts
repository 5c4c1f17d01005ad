import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createDelivery } from '../../alerts/delivery.ts';
import { DETAILS_WAIT_MS, createAlertLoop } from '../../alerts/observe.ts';
import type { TextContext } from '../../alerts/text.ts';
import { loadConfig, type Config } from '../../lib/config.ts';
import { silentLogger } from '../../lib/logger.ts';
import { Gauge, createRegistry } from '../../lib/metrics.ts';
import { clickhouseSentinelStore, type SentinelRow } from '../../producers/snapshot/sentinel-store.ts';
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

  it('fires a drift once the sentinel has written its check, resolves it with the outcome of its snapshot, and sets the firing gauge', async () => {
    const config: Config = { ...store.env.config, alerts: { ...loadConfig({ WXSYNC_ALERT_RESOLVE_HOLD_S: '30' }).alerts, webhooks: [{ type: 'json', url: `${base}/hook`, language: 'en' }] } };
    const registry = createRegistry();
    const drift = new Gauge({ name: 'wxsync_sentinel_drift_followers', help: 'h', labelNames: ['appid'], registers: [registry] });
    const lastCheck = new Gauge({ name: 'wxsync_sentinel_last_check_timestamp_seconds', help: 'h', labelNames: ['appid'], registers: [registry] });
    let now = Date.parse('2026-11-26T02:00:00Z');
    const delivery = createDelivery({ webhooks: config.alerts.webhooks, context: CONTEXT, options: config.alerts.delivery, logger: silentLogger(), registry });
    const loop = createAlertLoop({ config, registry, clickhouse: store.clickhouse, logger: silentLogger(), delivery, context: CONTEXT, now: () => now });
    const sentinel = clickhouseSentinelStore(store.clickhouse, store.db);
    const row = (checkedAt: number, fields: Partial<SentinelRow>): Promise<void> => sentinel.record({
      appid: APPID, checkedAt, result: 'drift', wechatTotal: 0, storeCount: 0, inFlight: 0, drift: 0, action: '', snapshotId: '', outcome: '', reason: '', ...fields,
    });
    const tick = async (): Promise<void> => {
      now += 15_000;
      await loop.tick();
      await delivery.idle();
    };
    // An earlier drift's rows: neither its check nor its outcome is this drift's.
    await row(now - 86_400_000, { wechatTotal: 10, storeCount: 5, drift: 5, action: 'snapshot s-1 started', snapshotId: 's-1' });
    await row(now - 86_000_000, { result: 'outcome', snapshotId: 's-1', outcome: 'reconciled: 5 corrections; store = WeChat' });
    const checkedAt = now + 5000;
    drift.set({ appid: APPID }, 50);
    lastCheck.set({ appid: APPID }, checkedAt / 1000);
    await tick();
    assert.equal(posted.length, 0, 'the message waits for the check\'s row');
    assert.match(await registry.metrics(), new RegExp(`^wxsync_alerts_firing\\{kind="drift",appid="${APPID}"\\} 1$`, 'm'), 'the gauge does not wait');
    await row(checkedAt, { wechatTotal: 20_000, storeCount: 19_950, drift: 50, action: 'snapshot s-9 started', snapshotId: 's-9' });
    await tick();
    assert.deepEqual(posted.flatMap((p) => p.alerts.map((a) => [a.kind, a.status, a.appid, a.text])), [
      ['drift', 'firing', APPID, `[FIRING] Drift on 测试号 (${APPID}): WeChat 20,000, store 19,950: 50 lost; snapshot s-9 started`],
    ]);

    // Still drifting after s-9's correction (pushes still lost): a second check and snapshot, s-10; nothing new is
    // sent. Then the gauge goes back to 0: the resolution waits for the outcome of s-10, the last correction.
    await row(now, { result: 'outcome', snapshotId: 's-9', outcome: 'reconciled: 45 corrections; store ≠ WeChat (drift 5)' });
    await tick();
    await row(now, { wechatTotal: 20_010, storeCount: 20_005, drift: 5, action: 'snapshot s-10 started', snapshotId: 's-10' });
    await tick();
    drift.set({ appid: APPID }, 0);
    for (let i = 0; i < 4; i += 1) await tick();
    assert.equal(posted.length, 1, JSON.stringify(posted));
    await row(now, { result: 'outcome', snapshotId: 's-10', outcome: 'reconciled: 50 corrections; store = WeChat' });
    await tick();
    await tick();
    assert.equal(posted.length, 2, 'resolved once, and only once');
    assert.deepEqual(posted[1]?.alerts.map((a) => [a.status, a.text]), [['resolved', `[RESOLVED] Drift on 测试号 (${APPID}) resolved: reconciled: 50 corrections; store = WeChat (after 2 min)`]]);
    assert.match(await registry.metrics(), new RegExp(`^wxsync_alerts_firing\\{kind="drift",appid="${APPID}"\\} 0$`, 'm'));

    // A check whose row never comes: the message goes after DETAILS_WAIT_MS with the metric's figure alone.
    drift.set({ appid: APPID }, 7);
    lastCheck.set({ appid: APPID }, (now + 10_000) / 1000);
    const firedAt = now + 15_000;
    while (posted.length === 2) await tick();
    assert.equal(now - firedAt, DETAILS_WAIT_MS);
    assert.deepEqual(posted[2]?.alerts.map((a) => a.text), [`[FIRING] Drift on 测试号 (${APPID}): the store is 7 followers off WeChat's count`]);

    // Without the sentinel's table a drift goes at once, with the metric's figure.
    drift.set({ appid: APPID }, 0);
    await store.clickhouse.command({ query: `DROP TABLE ${store.db}.sentinel_checks` });
    while (posted.length === 3) await tick();
    drift.set({ appid: APPID }, -4);
    await tick();
    assert.deepEqual(posted[4]?.alerts.map((a) => a.text), [`[FIRING] Drift on 测试号 (${APPID}): the store is 4 followers off WeChat's count`]);
    await delivery.stop();
  });
});
