/**
 * Sending alert messages, off the evaluation's path: `send` only queues. Each webhook has its own bounded queue
 * and one sender, so a receiver that is down or slow holds up nobody else; an attempt has a whole-request deadline,
 * a failed one is retried with backoff, and after the last attempt the message is dropped with one log line
 * (`alert not delivered`). Logs name the channel and the receiver's host only: the URL's path and query and the
 * signing secret are credentials.
 */
import axios from 'axios';
import { backoffDelay, sleep } from '../lib/backoff.ts';
import type { Logger } from '../lib/logger.ts';
import { Counter, type Registry } from '../lib/metrics.ts';
import type { Message } from './outbox.ts';
import type { RenderedMessage, TextContext } from './text.ts';
import { answerProblem, buildRequest } from './webhooks.ts';
import { webhookHost, type AlertWebhook } from './webhook-config.ts';

/** A receiver's answer is a short acknowledgement; anything longer is read no further. */
const MAX_ANSWER_BYTES = 64 * 1024;

export interface DeliveryOptions {
  readonly timeoutMs: number;
  readonly attempts: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  readonly queueMax: number;
}

export interface Outgoing {
  readonly message: Message;
  /** In the webhook's language. */
  readonly rendered: RenderedMessage;
}

export interface Delivery {
  /** Queues a message for webhook `index` of the list; never waits. */
  send(index: number, outgoing: Outgoing): void;
  /** Resolves once every queue is empty (tests). */
  idle(): Promise<void>;
  /** Stops sending; what is still queued is dropped, each with its log line. */
  stop(): Promise<void>;
}

export interface DeliveryDeps {
  readonly webhooks: readonly AlertWebhook[];
  readonly context: TextContext;
  readonly options: DeliveryOptions;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly now?: () => number;
}

/** What a failed request says, without its URL: the error code, or the deadline that cut it. */
function failure(error: unknown, timedOut: boolean, timeoutMs: number): string {
  if (timedOut) return `no answer within ${timeoutMs} ms`;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : 'request failed';
}

export function createDelivery(deps: DeliveryDeps): Delivery {
  const { webhooks, options, logger } = deps;
  const now = deps.now ?? Date.now;
  const notifications = new Counter({
    name: 'wxsync_alert_notifications_total',
    help: 'Alert messages by channel and result: delivered, retried (an attempt failed and another follows), dropped (not delivered)',
    labelNames: ['channel', 'result'],
    registers: [deps.registry],
  });
  const http = axios.create({
    timeout: 0,
    maxRedirects: 0,
    // Where alerts leave from must not depend on proxy variables the process happens to inherit, as for WeChat's API.
    proxy: false,
    responseType: 'text',
    maxContentLength: MAX_ANSWER_BYTES,
    validateStatus: () => true,
    transformResponse: [(data: unknown) => data],
    headers: { 'user-agent': 'wxsync', 'content-type': 'application/json; charset=utf-8' },
  });
  const stopping = new AbortController();
  const queues = webhooks.map(() => [] as Outgoing[]);
  const senders = new Map<number, Promise<void>>();

  const notDelivered = (index: number, outgoing: Outgoing, attempts: number, reason: string): void => {
    const webhook = webhooks[index] as AlertWebhook;
    notifications.inc({ channel: webhook.type, result: 'dropped' });
    logger.warn({
      channel: webhook.type, host: webhookHost(webhook.url), attempts, reason,
      alerts: outgoing.message.transitions.map((t) => `${t.status} ${t.kind}${t.appid === '' ? '' : ` ${t.appid}`}`),
    }, 'alert not delivered');
  };

  /** One attempt: undefined when the receiver took it, else why not. */
  const attempt = async (webhook: AlertWebhook, outgoing: Outgoing): Promise<string | undefined> => {
    const request = buildRequest(webhook, outgoing.message, outgoing.rendered, deps.context, now());
    const deadline = AbortSignal.timeout(options.timeoutMs);
    try {
      const answer = await http.post<string>(request.url, request.body, { signal: AbortSignal.any([deadline, stopping.signal]) });
      return answerProblem(webhook.type, answer.status, typeof answer.data === 'string' ? answer.data : '');
    } catch (error) {
      return failure(error, deadline.aborted, options.timeoutMs);
    }
  };

  const deliver = async (index: number, outgoing: Outgoing): Promise<void> => {
    const webhook = webhooks[index] as AlertWebhook;
    for (let tried = 1; ; tried += 1) {
      const problem = await attempt(webhook, outgoing);
      if (problem === undefined) {
        notifications.inc({ channel: webhook.type, result: 'delivered' });
        return;
      }
      if (stopping.signal.aborted || tried >= options.attempts) {
        notDelivered(index, outgoing, tried, stopping.signal.aborted ? `shutting down (${problem})` : problem);
        return;
      }
      notifications.inc({ channel: webhook.type, result: 'retried' });
      logger.debug({ channel: webhook.type, host: webhookHost(webhook.url), attempt: tried, reason: problem }, 'alert delivery failed; retrying');
      await sleep(backoffDelay(tried - 1, options.retryInitialMs, options.retryMaxMs), stopping.signal);
    }
  };

  const drain = async (index: number): Promise<void> => {
    const queue = queues[index] as Outgoing[];
    while (!stopping.signal.aborted) {
      const next = queue.shift();
      if (next === undefined) break;
      await deliver(index, next);
    }
    senders.delete(index);
  };

  return {
    send(index, outgoing) {
      const queue = queues[index];
      if (queue === undefined || stopping.signal.aborted) return;
      // Full: the oldest goes, since the newest says what holds now.
      if (queue.length >= options.queueMax) notDelivered(index, queue.shift() as Outgoing, 0, `queue full (${options.queueMax} messages wait)`);
      queue.push(outgoing);
      if (!senders.has(index)) senders.set(index, drain(index));
    },
    async idle() {
      while (senders.size > 0) await Promise.all(senders.values());
    },
    async stop() {
      stopping.abort();
      await Promise.all(senders.values());
      queues.forEach((queue, index) => {
        for (const outgoing of queue.splice(0)) notDelivered(index, outgoing, 0, 'shutting down');
      });
    },
  };
}
