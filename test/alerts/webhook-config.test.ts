import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_WEBHOOKS, parseWebhooks, webhookHost } from '../../alerts/webhook-config.ts';

const APPIDS = new Set(['wxa', 'wxb']);

function parse(value: unknown): { webhooks: ReturnType<typeof parseWebhooks>; problems: string[] } {
  const problems: string[] = [];
  return { webhooks: parseWebhooks(value, APPIDS, problems), problems };
}

describe('the webhooks file', () => {
  it('takes each channel with its defaults: Chinese for the chat robots, English for JSON', () => {
    const { webhooks, problems } = parse([
      { type: 'wecom', url: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k' },
      { type: 'dingtalk', url: 'https://oapi.dingtalk.com/robot/send?access_token=t', secret: 'SECx', language: 'en', appids: ['wxa', 'wxa'] },
      { type: 'feishu', url: 'https://open.feishu.cn/open-apis/bot/v2/hook/h', secret: 's', kinds: ['drift', 'pushes_lost'] },
      { type: 'json', url: 'http://127.0.0.1:9000/hook' },
    ]);
    assert.deepEqual(problems, []);
    assert.deepEqual(webhooks.map((w) => [w.type, w.language, w.appids, w.kinds]), [
      ['wecom', 'zh', undefined, undefined], ['dingtalk', 'en', ['wxa'], undefined], ['feishu', 'zh', undefined, ['drift', 'pushes_lost']], ['json', 'en', undefined, undefined],
    ]);
  });

  it('lists every problem of every entry, and never echoes a URL\'s credentials or a secret', () => {
    const { webhooks, problems } = parse([
      { type: 'slack', url: 'https://hooks.example/x' },
      { type: 'json', url: 'http://alerts.example/hook?key=leaked-key-1' },
      { type: 'wecom', url: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k', secret: 'leaked-secret-2' },
      { type: 'dingtalk', url: 'not a url' },
      { type: 'feishu', url: 'https://user:leaked-pass-3@open.feishu.cn/x', secret: '' },
      { type: 'json', url: 'https://h.example/', language: 'fr', appids: ['wxc'], kinds: ['drift', 'nonsense'] },
      { type: 'json', url: 'https://h.example/', appids: [], kinds: 'drift' },
      { type: 'json', url: 'https://h.example/', sekret: 'leaked-secret-4' },
      { type: 'json', url: 'file:///etc/passwd' },
      'a string',
      null,
      { type: 'json', url: `https://h.example/${'x'.repeat(3000)}` },
    ]);
    assert.deepEqual(webhooks, []);
    assert.deepEqual(problems, [
      'WXSYNC_ALERT_WEBHOOKS[0].type must be one of wecom, dingtalk, feishu, json',
      'WXSYNC_ALERT_WEBHOOKS[1].url must be https (http only to localhost), got http to alerts.example',
      'WXSYNC_ALERT_WEBHOOKS[2].secret is for dingtalk and feishu only: wecom webhooks are not signed',
      'WXSYNC_ALERT_WEBHOOKS[3].url is not a URL',
      'WXSYNC_ALERT_WEBHOOKS[4].url must not hold a user or password',
      'WXSYNC_ALERT_WEBHOOKS[4].secret must be a string of 1 to 256 characters without spaces',
      'WXSYNC_ALERT_WEBHOOKS[5].language must be one of zh, en',
      'WXSYNC_ALERT_WEBHOOKS[5].appids: "wxc" is not configured in WXSYNC_ACCOUNTS',
      'WXSYNC_ALERT_WEBHOOKS[5].kinds: "nonsense" is not an alert kind (drift, pushes_lost, spool_not_draining, consumer_stuck, snapshot_failed, snapshot_overdue, quota_low, reconcile_refused, pushes_refused_spike, datacube_disagrees)',
      'WXSYNC_ALERT_WEBHOOKS[6].appids must be a non-empty array (leave it out for all)',
      'WXSYNC_ALERT_WEBHOOKS[6].kinds must be a non-empty array (leave it out for all)',
      'WXSYNC_ALERT_WEBHOOKS[7] has an unknown field "sekret"',
      'WXSYNC_ALERT_WEBHOOKS[8].url must be https (http only to localhost), got file to ',
      'WXSYNC_ALERT_WEBHOOKS[9] must be an object',
      'WXSYNC_ALERT_WEBHOOKS[10] must be an object',
      'WXSYNC_ALERT_WEBHOOKS[11].url must be a URL of at most 2048 characters',
    ]);
    for (const leaked of ['leaked-key-1', 'leaked-secret-2', 'leaked-pass-3', 'leaked-secret-4']) assert.ok(!problems.join('\n').includes(leaked), leaked);
  });

  it('refuses anything but an array, and more than MAX_WEBHOOKS entries', () => {
    assert.deepEqual(parse({ type: 'json' }).problems, ['WXSYNC_ALERT_WEBHOOKS must hold a JSON array of webhooks']);
    const many = Array.from({ length: MAX_WEBHOOKS + 1 }, () => ({ type: 'json', url: 'https://h.example/' }));
    assert.deepEqual(parse(many).problems, [`WXSYNC_ALERT_WEBHOOKS lists ${MAX_WEBHOOKS + 1} webhooks, more than ${MAX_WEBHOOKS}`]);
  });

  it('is not fooled by a __proto__ key', () => {
    const { webhooks, problems } = parse(JSON.parse('[{"type":"json","url":"https://h.example/","__proto__":{"secret":"x"}}]'));
    assert.deepEqual(problems, ['WXSYNC_ALERT_WEBHOOKS[0] has an unknown field "__proto__"']);
    assert.deepEqual(webhooks, []);
    assert.equal(({} as Record<string, unknown>)['secret'], undefined);
  });

  it('shows a URL as its scheme and host only', () => {
    assert.equal(webhookHost('https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=secret-key'), 'https://qyapi.weixin.qq.com');
    assert.equal(webhookHost('nonsense'), '(not a URL)');
  });
});
