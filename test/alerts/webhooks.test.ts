import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Message } from '../../alerts/outbox.ts';
import { renderMessage, type TextContext } from '../../alerts/text.ts';
import { MAX_CONTENT_BYTES, answerProblem, buildRequest, clip, dingtalkSign, feishuSign } from '../../alerts/webhooks.ts';
import type { AlertWebhook } from '../../alerts/webhook-config.ts';

const CONTEXT: TextContext = { names: new Map([['wxa', '测试号']]), tz: 'Asia/Shanghai' };
const NOW = 1_577_262_236_757;
const MESSAGE: Message = {
  transitions: [
    { status: 'firing', kind: 'drift', appid: 'wxa', figures: { drift: 50, wechatTotal: 20_000, storeCount: 19_950, inFlight: 0, action: 'snapshot s-1 started' }, firedAt: NOW, at: NOW },
    { status: 'resolved', kind: 'consumer_stuck', appid: '', figures: { secondsSinceWrite: 3 }, firedAt: NOW - 600_000, at: NOW },
  ],
  omitted: 0,
};

function request(webhook: AlertWebhook): { url: string; body: Record<string, unknown> } {
  return buildRequest(webhook, MESSAGE, renderMessage(MESSAGE, webhook.language, CONTEXT), CONTEXT, NOW);
}

describe('DingTalk signing, as DingTalk documents it', () => {
  it('sign = urlEncode(Base64(HmacSHA256(key = secret, message = timestamp + "\\n" + secret)))', () => {
    // The documented steps, one by one: the string to sign, the HMAC keyed by the secret, Base64, then URL-encoding
    // (Python's quote_plus in the documentation; Base64's alphabet needs only +, / and = encoded).
    const secret = 'this is secret';
    const timestamp = 1_577_262_236_757;
    const stringToSign = `${timestamp}\n${secret}`;
    const hmacCode = createHmac('sha256', Buffer.from(secret, 'utf8')).update(Buffer.from(stringToSign, 'utf8')).digest();
    const expected = hmacCode.toString('base64').replaceAll('+', '%2B').replaceAll('/', '%2F').replaceAll('=', '%3D');
    assert.equal(dingtalkSign(secret, timestamp), expected);
    assert.match(expected, /%3D$/, 'the padding is encoded');
  });

  it('appends &timestamp=…&sign=… to the robot URL, its access_token kept', () => {
    const { url, body } = request({ type: 'dingtalk', url: 'https://oapi.dingtalk.com/robot/send?access_token=tok', secret: 'SECabc', language: 'zh' });
    assert.equal(url, `https://oapi.dingtalk.com/robot/send?access_token=tok&timestamp=${NOW}&sign=${dingtalkSign('SECabc', NOW)}`);
    const parsed = new URL(url);
    assert.equal(parsed.searchParams.get('sign'), createHmac('sha256', 'SECabc').update(`${NOW}\nSECabc`).digest('base64'), 'the receiver decodes the sign once');
    assert.equal(body['msgtype'], 'markdown');
    const markdown = body['markdown'] as { title: string; text: string };
    assert.equal(markdown.title, 'wxsync：告警 1 条，恢复 1 条');
    assert.match(markdown.text, /微信 20,000，库中 19,950：少 50；已自动启动快照 s-1/);
  });

  it('sends an unsigned robot its URL untouched', () => {
    assert.equal(request({ type: 'dingtalk', url: 'https://oapi.dingtalk.com/robot/send?access_token=tok', language: 'zh' }).url, 'https://oapi.dingtalk.com/robot/send?access_token=tok');
  });
});

describe('the other channels', () => {
  it('Feishu: sign = Base64(HmacSHA256(key = seconds + "\\n" + secret, message = "")), in the body', () => {
    const { url, body } = request({ type: 'feishu', url: 'https://open.feishu.cn/open-apis/bot/v2/hook/abc', secret: 'fsec', language: 'en' });
    const seconds = Math.floor(NOW / 1000);
    assert.equal(url, 'https://open.feishu.cn/open-apis/bot/v2/hook/abc');
    assert.deepEqual(Object.keys(body), ['timestamp', 'sign', 'msg_type', 'content']);
    assert.equal(body['timestamp'], String(seconds));
    assert.equal(body['sign'], createHmac('sha256', `${seconds}\nfsec`).update(Buffer.alloc(0)).digest('base64'));
    assert.equal(feishuSign('fsec', seconds), body['sign']);
    assert.equal(body['msg_type'], 'text');
    assert.match((body['content'] as { text: string }).text, /^wxsync: 1 firing, 1 resolved\n\[FIRING\] Drift on 测试号 \(wxa\): WeChat 20,000, store 19,950: 50 lost; snapshot s-1 started\n\[RESOLVED\] Consumer storing again \(after 10 min\)$/);
  });

  it('WeCom: a markdown message to the robot URL, its key kept', () => {
    const { url, body } = request({ type: 'wecom', url: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k-1', language: 'zh' });
    assert.equal(url, 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k-1');
    assert.equal(body['msgtype'], 'markdown');
    assert.match((body['markdown'] as { content: string }).content, /^\*\*wxsync：告警 1 条，恢复 1 条\*\*\n- \[告警\] 公众号 测试号 \(wxa\) 粉丝数漂移/);
  });

  it('JSON: every alert with its kind, status, account and figures', () => {
    const { body } = request({ type: 'json', url: 'https://hooks.example/wxsync', language: 'en' });
    assert.equal(body['source'], 'wxsync');
    assert.deepEqual((body['alerts'] as Record<string, unknown>[]).map((a) => [a['kind'], a['status'], a['appid'], a['account']]), [['drift', 'firing', 'wxa', '测试号'], ['consumer_stuck', 'resolved', '', null]]);
    assert.deepEqual((body['alerts'] as Record<string, unknown>[])[0]?.['figures'], MESSAGE.transitions[0]?.figures);
  });

  it('clips a long message on a character boundary', () => {
    const clipped = clip('告'.repeat(3000));
    assert.ok(Buffer.byteLength(clipped) <= MAX_CONTENT_BYTES);
    assert.ok(clipped.endsWith('告…'));
  });
});

describe('reading the receiver\'s answer', () => {
  it('a 2xx with errcode or code 0 is delivered; anything else names what came back', () => {
    assert.equal(answerProblem('wecom', 200, '{"errcode":0,"errmsg":"ok"}'), undefined);
    assert.equal(answerProblem('dingtalk', 200, '{"errcode":310000,"errmsg":"sign not match"}'), 'errcode 310000 "sign not match"');
    assert.equal(answerProblem('feishu', 200, '{"code":0,"msg":"success","data":{}}'), undefined);
    assert.equal(answerProblem('feishu', 200, '{"StatusCode":0,"StatusMessage":"success"}'), undefined);
    assert.equal(answerProblem('feishu', 200, '{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}')?.startsWith('code 19021'), true);
    assert.equal(answerProblem('wecom', 200, 'not json'), 'HTTP 200 without a JSON answer');
    assert.equal(answerProblem('json', 204, ''), undefined);
    assert.equal(answerProblem('json', 500, 'oops'), 'HTTP 500');
  });
});
