import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { freePorts } from '../../lib/ports.ts';
import { SimHarness } from '../lib/wechat/sim-harness.ts';
import { testEnv, waitFor, type TestEnv } from '../support/env.ts';
import { callbackOutage, metricValue, sentinelChecks, storeFollowers } from '../support/sentinel.ts';
import { adminFetch, startRun, type RunningWxsync } from '../support/wxsync.ts';

const OUTAGE_MS = 30_000;
const DINGTALK_SECRET = 'SEC-e2e-dingtalk-secret';
const DINGTALK_TOKEN = 'e2e-dingtalk-access-token';

interface JsonAlert { readonly kind: string; readonly status: string; readonly appid: string; readonly text: string; readonly firedAt: string; readonly at: string }

const same = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((o, k) => o === b[k]);

/** A local webhook receiver: the JSON one keeps every alert; the DingTalk one checks each signature as DingTalk does. */
class Receiver {
  readonly alerts: JsonAlert[] = [];
  readonly dingtalk: { text: string; signed: boolean }[] = [];
  private readonly server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => { body += chunk.toString(); });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://receiver');
      if (url.pathname === '/hook') {
        this.alerts.push(...(JSON.parse(body) as { alerts: JsonAlert[] }).alerts);
        res.end('{}');
        return;
      }
      // DingTalk's check: a timestamp within an hour, and sign = Base64(HMAC-SHA256(secret, timestamp + "\n" + secret)).
      const timestamp = url.searchParams.get('timestamp') ?? '';
      const expected = createHmac('sha256', DINGTALK_SECRET).update(`${timestamp}\n${DINGTALK_SECRET}`).digest('base64');
      const signed = url.searchParams.get('access_token') === DINGTALK_TOKEN && url.searchParams.get('sign') === expected
        && Math.abs(Date.now() - Number(timestamp)) < 3_600_000;
      this.dingtalk.push({ text: (JSON.parse(body) as { markdown: { text: string } }).markdown.text, signed });
      res.setHeader('content-type', 'application/json');
      res.end(signed ? '{"errcode":0,"errmsg":"ok"}' : '{"errcode":310000,"errmsg":"sign not match"}');
    });
  });

  async start(): Promise<number> {
    await new Promise<void>((resolve) => { this.server.listen(0, '127.0.0.1', resolve); });
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => { this.server.close(() => { resolve(); }); });
  }
}

/** The webhooks file, written before loadConfig reads it. */
function webhooksFile(dir: string, jsonPort: number, dingtalkPort: number): string {
  const file = path.join(dir, 'webhooks.json');
  writeFileSync(file, JSON.stringify([
    { type: 'json', url: `http://127.0.0.1:${jsonPort}/hook` },
    { type: 'dingtalk', url: `http://127.0.0.1:${dingtalkPort}/robot/send?access_token=${DINGTALK_TOKEN}`, secret: DINGTALK_SECRET },
  ]));
  return file;
}

const FAST_ALERTS = { WXSYNC_ALERT_EVAL_S: '1', WXSYNC_ALERT_RESOLVE_HOLD_S: '2', WXSYNC_ALERT_MESSAGES_PER_MIN: '30' };
const FAST_SENTINEL = { WXSYNC_SENTINEL_INTERVAL_S: '15', WXSYNC_SENTINEL_SETTLE_S: '3', WXSYNC_RECONCILE_GRACE_S: '2', WXSYNC_RECONCILE_POLL_S: '1' };
// The sentinel spreads its spare user/get calls over the hours to the quota's reset: with WeChat's usual 500 a day,
// its interval stretches to minutes early in a Beijing day. A simulator with a large quota keeps it at 15 s.
const LARGE_QUOTA = { userGetDailyQuota: 100_000 };

// Issue 15, acceptance 1 and 3: `wxsync run` with the alerts role and local webhook receivers.
describe('alerts in `wxsync run`: a drift told to the webhooks, then its resolution; a receiver that is down changes nothing', { timeout: 900_000 }, () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => { for (const cleanup of cleanups.reverse()) await cleanup(); });

  it('the callback role down for 30 s: the receivers get the drift naming the account and its figures, then its resolution once the store equals the truth', async () => {
    const [mainPort = 0, callbackPort = 0] = await freePorts(2);
    const receiver = new Receiver();
    const receiverPort = await receiver.start();
    cleanups.push(() => receiver.close());
    const sim = await SimHarness.start({ followers: [2000], mode: 'safe', callbackUrl: `http://127.0.0.1:${callbackPort}/wechat`, ...LARGE_QUOTA });
    cleanups.push(() => sim.close());
    const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-alerts-'));
    cleanups.push(() => { rmSync(dir, { recursive: true, force: true }); });
    const t: TestEnv = testEnv({ PORT: String(mainPort), ...FAST_SENTINEL, ...FAST_ALERTS, WXSYNC_ALERT_WEBHOOKS: webhooksFile(dir, receiverPort, receiverPort) });
    cleanups.push(() => { t.cleanup(); });
    sim.configure(t);
    const callbackEnv = { ...t.env, PORT: String(callbackPort), WXSYNC_DATA_DIR: path.join(dir, 'callback') };
    const appid = sim.account().appid;
    const storeIsTruth = async (): Promise<boolean> => same(await storeFollowers(t.env, appid), (await sim.followers()).sort());
    const drifts = (status: string, since: number): JsonAlert[] => receiver.alerts.filter((a) => a.kind === 'drift' && a.status === status && a.appid === appid && Date.parse(a.at) >= since);

    const main = await startRun(t.env, mainPort, 'consumer,snapshot,reconcile,api,alerts');
    let callback: RunningWxsync = await startRun(callbackEnv, callbackPort, 'callback');
    try {
      // The store starts empty: the sentinel's first check is a drift of every follower, corrected by an import.
      await waitFor('the import\'s drift to fire and resolve', 300_000, () => (drifts('resolved', 0).length > 0 ? true : undefined), 1000);
      assert.ok(await storeIsTruth());

      const delivered = await sim.admin('POST', `/__sim/accounts/${appid}/churn`, { subscribe: 40, unsubscribe: 20 }) as { failed: number };
      assert.equal(delivered.failed, 0, 'the callback role takes pushes before the outage');
      const outage = await callbackOutage(sim, appid, callback, () => startRun(callbackEnv, callbackPort, 'callback'), OUTAGE_MS);
      callback = outage.callback;
      const { start: outageStart, end: outageEnd } = outage;
      assert.ok(outage.lost > 200, `the pushes of the outage failed and were lost: ${outage.lost}`);

      const [fired] = await waitFor('the drift alert', 120_000, () => {
        const found = drifts('firing', outageStart);
        return found.length > 0 ? found : undefined;
      }, 500).catch(async (error: unknown) => {
        const checks = JSON.stringify(await sentinelChecks(t.env, appid));
        const sentinelMetrics = (await (await adminFetch(t.env, '/metrics')).text()).split('\n').filter((l) => /sentinel|alert|quota/.test(l)).join('\n');
        throw new Error(`${(error as Error).message}\nreceived: ${JSON.stringify(receiver.alerts)}\nchecks: ${checks}\n${sentinelMetrics}\n${main.stderr()}`, { cause: error });
      });
      assert.ok(fired !== undefined);
      assert.ok(fired.text.includes(appid), fired.text);
      assert.match(fired.text, /^\[FIRING\] Drift on \S+: WeChat [\d,]+, store [\d,]+( \([\d,]+ in flight\))?: [\d,]+ (lost|too many); snapshot \S+ started$/);

      await waitFor('the store to equal the truth', 300_000, async () => (await storeIsTruth()) || undefined, 500);
      console.log(`alerts: store = truth ${((Date.now() - outageEnd) / 1000).toFixed(1)} s after the outage ended; first drift alert ${((Date.parse(fired.at) - outageStart) / 1000).toFixed(1)} s after it began`);

      // The outage may give more than one drift (a check after a correction, while pushes are still lost, finds a new
      // one): each fires once and resolves once, in turn, the last with the outcome that made the store equal WeChat.
      const episodes = await waitFor('every drift\'s resolution', 180_000, () => {
        const told = receiver.alerts.filter((a) => a.kind === 'drift' && a.appid === appid && Date.parse(a.firedAt) >= Date.parse(fired.firedAt));
        return told.length > 0 && told.length % 2 === 0 ? told : undefined;
      }, 500);
      episodes.forEach((a, k) => {
        assert.equal(a.status, k % 2 === 0 ? 'firing' : 'resolved', JSON.stringify(episodes));
        if (k % 2 === 1) assert.equal(a.firedAt, episodes[k - 1]?.firedAt, 'a resolution follows its own firing');
      });
      const resolved = episodes.at(-1) as JsonAlert;
      assert.match(resolved.text, new RegExp(`^\\[RESOLVED\\] Drift on ${appid} resolved: reconciled: [1-9]\\d* corrections; store = WeChat \\(after \\d+ (s|min)\\)$`));

      // The same alerts in Chinese at the signed DingTalk robot, every signature as DingTalk checks it.
      assert.ok(receiver.dingtalk.length > 0 && receiver.dingtalk.every((d) => d.signed), JSON.stringify(receiver.dingtalk));
      assert.ok(receiver.dingtalk.some((d) => d.text.includes(`公众号 ${appid} 粉丝数漂移：微信`) && d.text.includes('已自动启动快照')), JSON.stringify(receiver.dingtalk));
      assert.ok(receiver.dingtalk.some((d) => d.text.includes(`公众号 ${appid} 漂移已恢复：已对账：修正`)), JSON.stringify(receiver.dingtalk));

      const metrics = await (await adminFetch(t.env, '/metrics')).text();
      assert.ok((metricValue(metrics, 'wxsync_alert_notifications_total', { channel: 'json', result: 'delivered' }) ?? 0) >= 4);
      assert.ok((metricValue(metrics, 'wxsync_alert_notifications_total', { channel: 'dingtalk', result: 'delivered' }) ?? 0) >= 4);
      assert.equal(metricValue(metrics, 'wxsync_alerts_firing', { kind: 'drift', appid }), 0);
      assert.ok(!main.stderr().includes(DINGTALK_SECRET) && !main.stderr().includes(DINGTALK_TOKEN), 'no secret in the logs');
    } finally {
      const codes = { callback: await callback.stop(), main: await main.stop() };
      assert.deepEqual(codes, { callback: 0, main: 0 }, `wxsync run stopped cleanly\n${main.stderr()}`);
    }
  });

  it('the receivers down for the whole test: the store still equals the truth, and the alerts are logged as not delivered', async () => {
    const [port = 0, jsonPort = 0, dingtalkPort = 0] = await freePorts(3);
    const sim = await SimHarness.start({ followers: [500], mode: 'safe', callbackUrl: `http://127.0.0.1:${port}/wechat`, ...LARGE_QUOTA });
    cleanups.push(() => sim.close());
    const dir = mkdtempSync(path.join(tmpdir(), 'wxsync-alerts-'));
    cleanups.push(() => { rmSync(dir, { recursive: true, force: true }); });
    const t: TestEnv = testEnv({
      PORT: String(port), ...FAST_SENTINEL, ...FAST_ALERTS, WXSYNC_ALERT_WEBHOOKS: webhooksFile(dir, jsonPort, dingtalkPort),
      WXSYNC_ALERT_ATTEMPTS: '3', WXSYNC_ALERT_RETRY_INITIAL_MS: '200', WXSYNC_ALERT_RETRY_MAX_MS: '1000', WXSYNC_ALERT_TIMEOUT_MS: '1000',
    });
    cleanups.push(() => { t.cleanup(); });
    sim.configure(t);
    const appid = sim.account().appid;
    const storeIsTruth = async (): Promise<boolean> => same(await storeFollowers(t.env, appid), (await sim.followers()).sort());
    const running = await startRun(t.env, port, 'callback,consumer,snapshot,reconcile,api,alerts');
    try {
      await waitFor('the sentinel to import the followers', 300_000, async () => (await storeIsTruth()) || undefined, 1000);
      const churn = await sim.admin('POST', `/__sim/accounts/${appid}/churn`, { subscribe: 50, unsubscribe: 20 }) as { failed: number };
      assert.equal(churn.failed, 0, 'the pushes are taken while the alerts go nowhere');
      await waitFor('the churn in the store', 120_000, async () => (await storeIsTruth()) || undefined, 500);
      const metrics = await waitFor('the alerts to be dropped on both channels', 120_000, async () => {
        const text = await (await adminFetch(t.env, '/metrics')).text();
        return ['json', 'dingtalk'].every((channel) => (metricValue(text, 'wxsync_alert_notifications_total', { channel, result: 'dropped' }) ?? 0) >= 1) ? text : undefined;
      }, 1000);
      assert.equal(metricValue(metrics, 'wxsync_alert_notifications_total', { channel: 'json', result: 'delivered' }), undefined);
      assert.ok((metricValue(metrics, 'wxsync_sentinel_checks_total', { appid, result: 'drift' }) ?? 0) >= 1, 'the import was a drift, told to no one');
      assert.match(running.stderr(), /alert not delivered/);
      assert.ok(!running.stderr().includes(DINGTALK_SECRET) && !running.stderr().includes(DINGTALK_TOKEN), 'no secret in the logs');
      assert.ok(await storeIsTruth(), 'the pipeline\'s figures are unchanged');
    } finally {
      assert.equal(await running.stop(), 0, `wxsync run stopped cleanly\n${running.stderr()}`);
    }
  });
});
