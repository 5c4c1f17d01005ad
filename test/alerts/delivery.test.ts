import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createDelivery, type DeliveryOptions, type Outgoing } from '../../alerts/delivery.ts';
import { renderMessage, type TextContext } from '../../alerts/text.ts';
import type { AlertWebhook } from '../../alerts/webhook-config.ts';
import { createLogger } from '../../lib/logger.ts';
import { createRegistry } from '../../lib/metrics.ts';
import { freePorts } from '../../lib/ports.ts';

const CONTEXT: TextContext = { names: new Map(), tz: 'Asia/Shanghai' };
const FAST: DeliveryOptions = { timeoutMs: 300, attempts: 3, retryInitialMs: 20, retryMaxMs: 50, queueMax: 100 };
const OUTGOING: Outgoing = (() => {
  const message = { transitions: [{ status: 'firing' as const, kind: 'drift' as const, appid: 'wxa', figures: { drift: 5 }, firedAt: 0, at: 0 }], omitted: 0 };
  return { message, rendered: renderMessage(message, 'en', CONTEXT) };
})();

/** A local receiver: answers with `answer(n)` for its n-th request (0-based); 'hang' never answers. */
class Receiver {
  readonly bodies: { url: string; body: unknown; at: number }[] = [];
  private readonly server: http.Server;
  constructor(private readonly answer: (n: number) => { status: number; body: string } | 'hang') {
    this.server = http.createServer((req, res) => {
      let text = '';
      req.on('data', (chunk: Buffer) => { text += chunk.toString(); });
      req.on('end', () => {
        const n = this.bodies.length;
        this.bodies.push({ url: req.url ?? '', body: JSON.parse(text) as unknown, at: Date.now() });
        const reply = this.answer(n);
        if (reply === 'hang') return;
        res.writeHead(reply.status, { 'content-type': 'application/json' });
        res.end(reply.body);
      });
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => { this.server.listen(0, '127.0.0.1', resolve); });
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => { this.server.close(() => { resolve(); }); });
  }
}

function captured(): { logger: ReturnType<typeof createLogger>; text: () => string; lines: () => Record<string, unknown>[] } {
  const out: string[] = [];
  const logger = createLogger('trace', 'delivery-test', { write: (line: string) => { out.push(line); } });
  return { logger, text: () => out.join(''), lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

async function counts(registry: ReturnType<typeof createRegistry>): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric('wxsync_alert_notifications_total')?.get();
  return Object.fromEntries((metric?.values ?? []).map((v) => [`${String(v.labels['channel'])} ${String(v.labels['result'])}`, v.value]));
}

describe('alert delivery', () => {
  const receivers: Receiver[] = [];
  const receiver = async (answer: ConstructorParameters<typeof Receiver>[0]): Promise<{ r: Receiver; base: string }> => {
    const r = new Receiver(answer);
    receivers.push(r);
    return { r, base: await r.start() };
  };
  let downPort = 0;
  before(async () => { [downPort = 0] = await freePorts(1); });
  after(async () => { await Promise.all(receivers.map((r) => r.close())); });

  it('delivers to a receiver that answers errcode 0, and retries one that answers an error until it takes the message', async () => {
    const { r, base } = await receiver((n) => (n < 2 ? { status: 200, body: '{"errcode":45009,"errmsg":"api freq out of limit"}' } : { status: 200, body: '{"errcode":0}' }));
    const registry = createRegistry();
    const { logger } = captured();
    const delivery = createDelivery({ webhooks: [{ type: 'wecom', url: `${base}/cgi-bin/webhook/send?key=k`, language: 'en' }], context: CONTEXT, options: FAST, logger, registry });
    delivery.send(0, OUTGOING);
    await delivery.idle();
    assert.equal(r.bodies.length, 3);
    assert.ok((r.bodies[2]?.at ?? 0) - (r.bodies[1]?.at ?? 0) >= 10, 'with a backoff between attempts');
    assert.deepEqual(await counts(registry), { 'wecom retried': 2, 'wecom delivered': 1 });
    await delivery.stop();
  });

  it('a receiver that is down: retried with backoff, then dropped with one log line naming the channel and host only', async () => {
    const registry = createRegistry();
    const { logger, lines, text } = captured();
    const url = `http://127.0.0.1:${downPort}/robot/send?access_token=TOKEN-NEVER-LOGGED`;
    const delivery = createDelivery({ webhooks: [{ type: 'dingtalk', url, secret: 'SEC-NEVER-LOGGED', language: 'zh' }], context: CONTEXT, options: FAST, logger, registry });
    const started = performance.now();
    delivery.send(0, OUTGOING);
    assert.ok(performance.now() - started < 20, 'send only queues');
    await delivery.idle();
    const dropped = lines().filter((l) => l['msg'] === 'alert not delivered');
    assert.equal(dropped.length, 1);
    assert.deepEqual([dropped[0]?.['channel'], dropped[0]?.['host'], dropped[0]?.['attempts'], dropped[0]?.['reason'], dropped[0]?.['alerts']], ['dingtalk', `http://127.0.0.1:${downPort}`, 3, 'ECONNREFUSED', ['firing drift wxa']]);
    assert.deepEqual(await counts(registry), { 'dingtalk retried': 2, 'dingtalk dropped': 1 });
    for (const secret of ['TOKEN-NEVER-LOGGED', 'SEC-NEVER-LOGGED', '/robot/send']) assert.ok(!text().includes(secret), `${secret} is not in the logs:\n${text()}`);
    await delivery.stop();
  });

  it('a slow receiver is cut at the deadline and holds up no other webhook', async () => {
    const slow = await receiver(() => 'hang');
    const fast = await receiver(() => ({ status: 200, body: '{"code":0}' }));
    const registry = createRegistry();
    const { logger, lines } = captured();
    const webhooks: AlertWebhook[] = [
      { type: 'json', url: `${slow.base}/hook`, language: 'en' },
      { type: 'feishu', url: `${fast.base}/open-apis/bot/v2/hook/h`, secret: 's', language: 'en' },
    ];
    const delivery = createDelivery({ webhooks, context: CONTEXT, options: { ...FAST, attempts: 2 }, logger, registry });
    const started = Date.now();
    delivery.send(0, OUTGOING);
    delivery.send(1, OUTGOING);
    while (fast.r.bodies.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.ok(Date.now() - started < 250, 'the fast receiver had its message before the slow one\'s first deadline');
    await delivery.idle();
    assert.ok(Date.now() - started >= 2 * FAST.timeoutMs, 'each attempt waited its deadline out');
    assert.equal(slow.r.bodies.length, 2);
    assert.deepEqual(lines().filter((l) => l['msg'] === 'alert not delivered').map((l) => [l['channel'], l['reason']]), [['json', `no answer within ${FAST.timeoutMs} ms`]]);
    assert.deepEqual(await counts(registry), { 'json retried': 1, 'json dropped': 1, 'feishu delivered': 1 });
    await delivery.stop();
  });

  it('a full queue drops its oldest message; stopping drops what waits, each with its log line, without waiting for the receiver', async () => {
    const slow = await receiver(() => 'hang');
    const registry = createRegistry();
    const { logger, lines } = captured();
    const delivery = createDelivery({ webhooks: [{ type: 'json', url: `${slow.base}/hook`, language: 'en' }], context: CONTEXT, options: { ...FAST, timeoutMs: 10_000, queueMax: 2 }, logger, registry });
    for (let i = 0; i < 5; i += 1) delivery.send(0, OUTGOING);
    const started = Date.now();
    await delivery.stop();
    assert.ok(Date.now() - started < 1000, 'stop aborts the attempt in flight');
    const reasons = lines().filter((l) => l['msg'] === 'alert not delivered').map((l) => String(l['reason']).split(' (')[0]);
    // The first is in flight; of the four queued behind it, two pushed the oldest out; the two left go at stop.
    assert.deepEqual(reasons, ['queue full', 'queue full', 'shutting down', 'shutting down', 'shutting down']);
    assert.deepEqual(await counts(registry), { 'json dropped': 5 });
  });
});
