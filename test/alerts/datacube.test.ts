import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { settledRange, createDatacubeCheck } from '../../alerts/datacube.ts';
import type { Config } from '../../lib/config.ts';
import { ErrorCode, WxsyncError } from '../../lib/errors.ts';
import { silentLogger } from '../../lib/logger.ts';
import { createRegistry } from '../../lib/metrics.ts';
import type { DatacubeSource } from '../../lib/wechat/datacube.ts';
import type { ChurnReport } from '../../reports/churn.ts';
import { resolveReport, runReport } from '../../reports/request.ts';
import { beijing, fixtureEvents, storeWithEvents, type EventStore } from '../support/event-store.ts';

const APPID = 'wx0123456789abcdef';
const NOW = beijing('2026-11-26T10:00');

describe('the settled days compared with the datacube', () => {
  it('are the last 7 up to the day before yesterday (China), after the first done reconcile', () => {
    assert.deepEqual(settledRange(NOW, beijing('2026-10-01T12:00')), { from: '2026-11-18', to: '2026-11-24' });
    assert.deepEqual(settledRange(NOW, beijing('2026-11-21T23:59')), { from: '2026-11-22', to: '2026-11-24' });
    assert.equal(settledRange(NOW, beijing('2026-11-24T01:00')), undefined, 'the day of the first reconcile is not settled for the store');
    assert.equal(settledRange(NOW, undefined), undefined, 'no reconcile yet');
  });
});

describe('wxsync_datacube_disagreeing_days over a store', () => {
  let store: EventStore;
  let config: Config;
  before(async () => {
    const event = fixtureEvents(APPID);
    store = await storeWithEvents([
      event('o1', 'subscribe', '2026-11-19T09:00', 'callback'),
      event('o2', 'subscribe', '2026-11-20T09:00', 'callback'),
      event('o3', 'subscribe', '2026-11-22T09:00', 'correction'),
      event('o1', 'unsubscribe', '2026-11-23T09:00', 'callback'),
    ]);
    config = { ...store.env.config, accounts: [{ appid: APPID, secret: 's', token: 'tok123', mode: 'plain' }] };
    await store.clickhouse.insert({
      table: `${store.db}.reconcile_runs`, format: 'JSONEachRow',
      values: [{ run_id: 'r1', appid: APPID, snapshot_id: 's1', trigger: 'test', dry_run: 0, status: 'done', reason: '', started_at: (beijing('2026-11-17T12:00') / 1000).toFixed(3), finished_at: (beijing('2026-11-17T12:01') / 1000).toFixed(3) }],
    });
  });
  after(async () => { await store.close(); });

  /** WeChat's answers: the store's own figures, but for the days in `off`, where WeChat counts one more follow. */
  async function datacube(off: ReadonlySet<string>): Promise<DatacubeSource> {
    const resolved = resolveReport('churn', { appid: APPID, from: '2026-11-18', to: '2026-11-24', by: 'day', tz: 'Asia/Shanghai' }, config, NOW);
    const report = await runReport(config, resolved, { clickhouse: store.clickhouse, datacube: () => { throw new Error('not asked'); } }) as ChurnReport;
    return {
      appid: APPID,
      datacube: (api, begin, end) => {
        const days = report.periods.filter((p) => p.period >= begin && p.period <= end);
        const extra = (day: string): number => (off.has(day) ? 1 : 0);
        return Promise.resolve({
          list: api.endsWith('getusersummary')
            ? days.map((d) => ({ ref_date: d.period, user_source: 0, new_user: d.follows + extra(d.period), cancel_user: d.unfollows }))
            : days.map((d) => ({ ref_date: d.period, user_source: 0, cumulate_user: d.followersEnd })),
        });
      },
    };
  }

  async function gauge(source: DatacubeSource): Promise<number | undefined> {
    const registry = createRegistry();
    const check = createDatacubeCheck({ config, clickhouse: store.clickhouse, datacube: () => source, registry, logger: silentLogger(), now: () => NOW });
    await check.run();
    return (await registry.getSingleMetric('wxsync_datacube_disagreeing_days')?.get())?.values.find((v) => v.labels['appid'] === APPID)?.value;
  }

  it('counts the settled days where the store and WeChat differ', async () => {
    const agreeing = await datacube(new Set());
    assert.equal(await gauge(agreeing), 0);
    const twoOff = await datacube(new Set(['2026-11-19', '2026-11-23']));
    assert.equal(await gauge(twoOff), 2);
  });

  it('counts 0 when WeChat gives no figures (an unverified account) or cannot be reached', async () => {
    const unverified = { appid: APPID, datacube: () => Promise.reject(new WxsyncError(ErrorCode.WechatAccountUnverified, 'unverified')) };
    assert.equal(await gauge(unverified), 0);
    const down = { appid: APPID, datacube: () => Promise.reject(new WxsyncError(ErrorCode.WechatUnreachable, 'down')) };
    assert.equal(await gauge(down), 0);
  });
});
