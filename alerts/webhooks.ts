/**
 * What each receiver is sent and how its answer is read, pure:
 * - WeCom group robot: POST {msgtype: markdown} to the robot URL (its `key` is in the query). Answers {errcode: 0}.
 * - DingTalk robot: POST {msgtype: markdown}; with a signing secret, `&timestamp=<ms>&sign=<s>` appended, s being
 *   urlEncode(Base64(HMAC-SHA256(key = secret, message = timestamp + "\n" + secret))). Answers {errcode: 0}.
 * - Feishu bot: POST {msg_type: text}; with a signing secret, `timestamp` (seconds) and `sign` in the body,
 *   sign = Base64(HMAC-SHA256(key = timestamp + "\n" + secret, message = "")). Answers {code: 0}.
 * - JSON: POST {source, title, text, alerts: [{kind, status, appid, account, figures, text, firedAt, at}]}; any 2xx.
 * The request is built again for every attempt: DingTalk and Feishu refuse a signature more than an hour old.
 */
import { createHmac } from 'node:crypto';
import type { Message } from './outbox.ts';
import { transitionLine, type RenderedMessage, type TextContext } from './text.ts';
import type { AlertWebhook, Channel } from './webhook-config.ts';

/** WeCom refuses markdown content over 4096 bytes; DingTalk and Feishu allow more, but a chat message this long is enough. */
export const MAX_CONTENT_BYTES = 4000;

export interface WebhookRequest {
  readonly url: string;
  readonly body: Record<string, unknown>;
}

export function dingtalkSign(secret: string, timestampMs: number): string {
  return encodeURIComponent(createHmac('sha256', secret).update(`${timestampMs}\n${secret}`).digest('base64'));
}

export function feishuSign(secret: string, timestampSeconds: number): string {
  return createHmac('sha256', `${timestampSeconds}\n${secret}`).update('').digest('base64');
}

/** `text` cut to at most `maxBytes` of UTF-8, on a character boundary, marked when cut. */
export function clip(text: string, maxBytes = MAX_CONTENT_BYTES): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  const mark = '…';
  let cut = Buffer.from(text).subarray(0, maxBytes - Buffer.byteLength(mark)).toString('utf8');
  // A multi-byte character cut in half decodes to U+FFFD.
  cut = cut.replace(/\uFFFD$/, '');
  return `${cut}${mark}`;
}

function markdown(rendered: RenderedMessage): string {
  return clip([`**${rendered.title}**`, ...rendered.lines.map((line) => `- ${line}`)].join('\n'));
}

export function buildRequest(webhook: AlertWebhook, message: Message, rendered: RenderedMessage, context: TextContext, nowMs: number): WebhookRequest {
  switch (webhook.type) {
    case 'wecom':
      return { url: webhook.url, body: { msgtype: 'markdown', markdown: { content: markdown(rendered) } } };
    case 'dingtalk': {
      const body = { msgtype: 'markdown', markdown: { title: rendered.title, text: markdown(rendered) } };
      if (webhook.secret === undefined) return { url: webhook.url, body };
      const url = new URL(webhook.url);
      // Appended as text: URLSearchParams would encode the already URL-encoded sign a second time.
      const signed = `${url.search === '' ? '?' : '&'}timestamp=${nowMs}&sign=${dingtalkSign(webhook.secret, nowMs)}`;
      return { url: `${url.origin}${url.pathname}${url.search}${signed}`, body };
    }
    case 'feishu': {
      const body = { msg_type: 'text', content: { text: clip(rendered.text) } };
      if (webhook.secret === undefined) return { url: webhook.url, body };
      const seconds = Math.floor(nowMs / 1000);
      return { url: webhook.url, body: { timestamp: String(seconds), sign: feishuSign(webhook.secret, seconds), ...body } };
    }
    case 'json':
      return {
        url: webhook.url,
        body: {
          source: 'wxsync',
          title: rendered.title,
          text: rendered.text,
          omitted: message.omitted,
          alerts: message.transitions.map((t) => ({
            kind: t.kind, status: t.status, appid: t.appid, account: context.names.get(t.appid) ?? null, figures: t.figures,
            text: transitionLine(t, webhook.language, context), firedAt: new Date(t.firedAt).toISOString(), at: new Date(t.at).toISOString(),
          })),
        },
      };
  }
}

/**
 * Whether the receiver took the message: a 2xx, and for the chat robots a JSON answer with errcode (WeCom,
 * DingTalk) or code (Feishu) 0. Undefined when it did; the reason it did not otherwise (the answer's own code and
 * message, cut short: no URL is ever in it).
 */
export function answerProblem(channel: Channel, status: number, body: string): string | undefined {
  if (status < 200 || status > 299) return `HTTP ${status}`;
  if (channel === 'json') return undefined;
  let answer: unknown;
  try {
    answer = JSON.parse(body);
  } catch {
    return `HTTP ${status} without a JSON answer`;
  }
  const record = typeof answer === 'object' && answer !== null ? answer as Record<string, unknown> : {};
  const code = channel === 'feishu' ? record['code'] ?? record['StatusCode'] : record['errcode'];
  if (code === 0) return undefined;
  const text = record['errmsg'] ?? record['msg'] ?? record['StatusMessage'];
  return `${channel === 'feishu' ? 'code' : 'errcode'} ${JSON.stringify(code ?? null)}${typeof text === 'string' ? ` ${JSON.stringify(text.slice(0, 120))}` : ''}`;
}
