import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { AccountHealth, StatusAnswer } from '../../api/status.ts';
import type { ReconcileRuns } from '../../api/reconciles.ts';
import type { RetentionReport } from '../../api/retention.ts';
import { packageRoot } from '../../lib/config.ts';
import type { SnapshotListing } from '../../producers/reconcile/compare.ts';
import type { CampaignsReport } from '../../reports/campaigns.ts';
import type { CheckDay } from '../../reports/check.ts';
import type { ChurnReport } from '../../reports/churn.ts';
import { waitFor } from '../support/env.ts';
import { startDashboardFixture, type DashboardFixture } from './fixture.ts';

// Issue 14.2's acceptance: the dashboard in headless Chromium (Debian's, driven by playwright-core) against a
// `wxsync run` fed by the simulator. Nothing it loads leaves the machine, every chart has data, every number shown is
// the API's, the account and the language switch, it follows new data without a reload, and each view is
// photographed at desktop and phone width under test-output/dashboard/.

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];
const OUT = path.join(packageRoot, 'test-output', 'dashboard');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

// The page's formats (dashboard/web/app.js), to compare what it shows with the API's numbers.
const int = (n: number | null | undefined): string => (n === null || n === undefined ? '–' : n.toLocaleString('en-US'));
const signed = (n: number): string => (n > 0 ? `+${int(n)}` : int(n));
const pct = (x: number | null | undefined): string => (x === null || x === undefined ? '–' : `${(x * 100).toFixed(1)}%`);
const UNITS = { en: { s: 's', min: 'min', h: 'h', d: 'd' }, zh: { s: '秒', min: '分钟', h: '小时', d: '天' } } as const;
const SENTINEL = { en: { equal: 'equal', drift: 'drift', failed: 'check failed', none: 'none' }, zh: { equal: '一致', drift: '漂移', failed: '检查失败', none: '无' } } as const;
function duration(s: number | null | undefined, lang: 'en' | 'zh'): string {
  const u = UNITS[lang];
  if (s === null || s === undefined) return '–';
  if (s < 60) return `${Math.round(s)} ${u.s}`;
  if (s < 3600) return `${Math.round(s / 60)} ${u.min}`;
  if (s < 86_400) return `${(s / 3600).toFixed(1)} ${u.h}`;
  return `${(s / 86_400).toFixed(1)} ${u.d}`;
}

/** What the page shows, read in the page: visible charts' series (ECharts' own option), figures, table cells, health. */
interface Shown {
  readonly lang: string;
  readonly title: string;
  readonly appid: string;
  readonly charts: Record<string, { id: string; data: unknown[] }[]>;
  readonly figures: Record<string, string>;
  readonly tables: Record<string, { key: string; cells: Record<string, string> }[]>;
  readonly health: Record<string, string>;
  readonly checkSummary: string;
  readonly live: string;
  readonly overflow: number;
}
// A string, evaluated in the page (this project's TypeScript has no DOM types).
const READ_PAGE = `(() => {
  const visible = (node) => node.offsetParent !== null;
  const charts = {};
  for (const node of document.querySelectorAll('.chart')) {
    if (!visible(node)) continue;
    const option = window.echarts.getInstanceByDom(node)?.getOption();
    // A category without a value (null, '-') is no data.
    charts[node.id] = (option?.series ?? []).map((s) => ({ id: s.id, data: (s.data ?? []).map((d) => (d !== null && typeof d === 'object' && 'value' in d ? d.value : d)).filter((d) => d !== null && d !== '-') }));
  }
  const tables = {};
  // An age the page computed at its last poll reads as {age}: the API, asked at another second, tells another.
  const text = (cell) => {
    const copy = cell.cloneNode(true);
    for (const age of copy.querySelectorAll('[data-age]')) age.textContent = '{age}';
    return copy.textContent;
  };
  for (const table of document.querySelectorAll('table')) {
    if (!visible(table) || table.tBodies[0] === undefined) continue;
    tables[table.id] = [...table.tBodies[0].rows].map((row) => ({ key: row.dataset.key, cells: Object.fromEntries([...row.cells].map((c) => [c.dataset.col, text(c)])) }));
  }
  return {
    lang: document.documentElement.lang,
    title: document.querySelector('h1')?.textContent ?? '',
    appid: document.getElementById('account')?.value ?? '',
    charts,
    figures: Object.fromEntries([...document.querySelectorAll('[data-figure]')].map((n) => [n.dataset.figure, n.textContent])),
    tables,
    health: Object.fromEntries([...document.querySelectorAll('[data-health]')].map((n) => [n.dataset.health, n.querySelector('.value').textContent])),
    checkSummary: document.getElementById('check-summary')?.textContent ?? '',
    live: document.getElementById('live-text')?.textContent ?? '',
    overflow: document.documentElement.scrollWidth - window.innerWidth,
  };
})()`;

interface Watched {
  readonly page: Page;
  /** Console errors and uncaught page errors. */
  readonly problems: string[];
  readonly requests: string[];
}

describe('the dashboard in headless Chromium', { timeout: 1_200_000 }, () => {
  let f: DashboardFixture;
  let browser: Browser;

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `Chromium is not installed at ${CHROMIUM}: install it with \`apt-get install -y chromium\` (bash .ci/run does when it is missing)`);
    mkdirSync(OUT, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    f = await startDashboardFixture(5);
  });
  after(async () => {
    await browser.close();
    await f.close();
  });

  /** Each page's problems, for a failure's message. */
  const problemsOf = new WeakMap<Page, string[]>();

  async function watch(context: BrowserContext): Promise<Watched> {
    const page = await context.newPage();
    const problems: string[] = [];
    problemsOf.set(page, problems);
    const requests: string[] = [];
    page.on('console', (message) => { if (message.type() === 'error') problems.push(`console: ${message.text()}`); });
    page.on('pageerror', (error) => { problems.push(`page error: ${error.message}`); });
    page.on('request', (request) => { requests.push(request.url()); });
    // The console names no address; this does.
    page.on('response', (response) => { if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`); });
    return { page, problems, requests };
  }

  const read = (page: Page): Promise<Shown> => page.evaluate<Shown>(READ_PAGE);

  async function shot(page: Page, name: string): Promise<void> {
    const size = page.viewportSize();
    await page.screenshot({ path: path.join(OUT, `${name}-${size?.width ?? 0}x${size?.height ?? 0}.png`), fullPage: true });
  }

  /** The figures the page shows for a view, from the API's answers, as the page formats them. */
  /** The churn chart's series: follows up and unfollows down (per split key: the 8 largest, then the rest summed), net, followers. */
  function churnSeries(churn: ChurnReport): Shown['charts'][string] {
    const bars = (id: string, periods: readonly { follows: number; unfollows: number }[]): Shown['charts'][string] => [
      { id: id === '' ? 'follows' : `follows:${id}`, data: periods.map((p) => p.follows) },
      { id: id === '' ? 'unfollows' : `unfollows:${id}`, data: periods.map((p) => -p.unfollows) },
    ];
    const rest = churn.splits.slice(8);
    const split = churn.split === null || churn.splits.length === 0 ? bars('', churn.periods) : [
      ...churn.splits.slice(0, 8).flatMap((s) => bars(`key:${s.key}`, s.periods)),
      ...(rest.length === 0 ? [] : bars('others', churn.periods.map((_, i) => ({
        follows: rest.reduce((n, s) => n + (s.periods[i]?.follows ?? 0), 0), unfollows: rest.reduce((n, s) => n + (s.periods[i]?.unfollows ?? 0), 0),
      })))),
    ];
    return [...split, { id: 'net', data: churn.periods.map((p) => p.net) }, { id: 'followers', data: churn.periods.map((p) => p.followersEnd) }];
  }

  async function expected(appid: string, lang: 'en' | 'zh', range = 'days=30&by=day'): Promise<Partial<Shown>> {
    const query = appid === '' ? 'all=1' : `appid=${appid}`;
    const churn = await f.api<ChurnReport>(`/api/report/churn?${query}&${range}`);
    const status = await f.api<StatusAnswer>('/api/status');
    const runs = (await f.api<ReconcileRuns>(`/api/reconciles?${query}`)).runs;
    const { total } = churn;
    const charts: Shown['charts'] = { 'chart-churn': churnSeries(churn) };
    const comparisons = (appid === '' ? status.accounts : status.accounts.filter((a) => a.appid === appid))
      .filter((a): a is AccountHealth & { lastComparison: NonNullable<AccountHealth['lastComparison']> } => a.lastComparison !== null).map((a) => a.lastComparison);
    charts['chart-comparison'] = [
      { id: 'addedExplained', data: comparisons.map((c) => c.added - c.addedUnexplained) },
      { id: 'addedUnexplained', data: comparisons.map((c) => c.addedUnexplained) },
      { id: 'removedExplained', data: comparisons.map((c) => c.removed - c.removedUnexplained) },
      { id: 'removedUnexplained', data: comparisons.map((c) => c.removedUnexplained) },
    ];
    const tables: Shown['tables'] = {};
    const sentinel = ({ sentinel: check }: AccountHealth): string => {
      if (check === null) return '–';
      const found = check.result === 'drift' ? `${SENTINEL[lang].drift} ${signed(check.drift)}` : SENTINEL[lang][check.result];
      return `${found} · {age}`;
    };
    const health = (accounts: readonly AccountHealth[]): Shown['tables'][string] => accounts.map((a) => ({
      key: a.appid,
      cells: {
        snapshotTotal: int(a.lastSnapshot?.total), reconcileCorrections: int(a.lastReconcile?.corrections), sentinel: sentinel(a),
      },
    }));
    if (appid === '') {
      // A bar per run of each account (by the minute it finished: the fixture's runs of an account are a day apart).
      charts['chart-corrections'] = f.appids.map((id) => ({ id: `account:${id}`, data: runs.filter((r) => r.appid === id).map((r) => r.corrections) }));
      tables['accounts-table'] = churn.accounts.map((a) => ({
        key: a.appid,
        cells: { follows: int(a.total.follows), unfollows: int(a.total.unfollows), net: signed(a.total.net), followersEnd: int(a.total.followersEnd), unfollowRate: pct(a.total.unfollowRate) },
      }));
      tables['health-table'] = health(status.accounts);
    } else {
      const campaigns = await f.api<CampaignsReport>(`/api/report/campaigns?appid=${appid}`);
      const retention = await f.api<RetentionReport>(`/api/retention?appid=${appid}&days=30`);
      charts['chart-corrections'] = (['missing', 'stale', 'live'] as const).map((rule) => ({ id: rule, data: runs.map((r) => r.emitted[rule]) }));
      const rows = retention.campaigns.slice(0, 10).reverse();
      charts['chart-retention'] = [{ id: 'retention', data: rows.flatMap((c, y) => c.retention.filter((r) => r.day >= 1 && r.share !== null).map((r) => [r.day - 1, y, (r.share ?? 0) * 100])) }];
      charts['chart-unfollow'] = [{ id: 'timeToUnfollow', data: campaigns.timeToUnfollow.map((b) => b.unfollows) }];
      tables['campaigns-table'] = campaigns.campaigns.map((c) => ({
        key: c.campaign,
        cells: {
          brought: int(c.brought), stillFollowing: int(c.stillFollowing),
          ...Object.fromEntries(c.retention.map((r) => [`d${r.days}`, pct(r.share)])),
          lost24h: pct(c.lostWithin24hShare), median: duration(c.medianSecondsToUnfollow, lang),
        },
      }));
      tables['health-table'] = health(status.accounts.filter((a) => a.appid === appid));
    }
    return {
      figures: {
        follows: int(total.follows), unfollows: int(total.unfollows), net: signed(total.net), followersEnd: int(total.followersEnd),
        unfollowRate: pct(total.unfollowRate), recoveredShare: pct(total.recoveredShare),
      },
      charts,
      tables,
      health: {
        lag: int(status.consumer.lag), spool: int(status.spool.depth),
        alerts: status.alerts === null ? '–' : status.alerts.length === 0 ? SENTINEL[lang].none : int(status.alerts.length),
      },
    };
  }

  /** Only the parts `want` names: every figure, every series' data, the named cells of every row. */
  function pick(shown: Shown, want: Partial<Shown>): Partial<Shown> {
    const tables = Object.fromEntries(Object.entries(want.tables ?? {}).map(([id, rows]) => [id, (shown.tables[id] ?? []).map((row, i) => ({
      key: row.key, cells: Object.fromEntries(Object.keys(rows[i]?.cells ?? rows[0]?.cells ?? {}).map((col) => [col, row.cells[col] ?? '(none)'])),
    }))]));
    const charts = Object.fromEntries(Object.keys(want.charts ?? {}).map((id) => [id, shown.charts[id] ?? []]));
    return { figures: shown.figures, charts, tables, health: Object.fromEntries(Object.keys(want.health ?? {}).map((k) => [k, shown.health[k] ?? '(none)'])) };
  }

  /** Until the page shows what the API answers (a refresh may land between reading one and the other). */
  async function showsTheApi(page: Page, appid: string, lang: 'en' | 'zh', range?: string): Promise<Shown> {
    let last: { shown: Partial<Shown>; want: Partial<Shown> } | undefined;
    try {
      return await waitFor(`the page to show the API's figures for ${appid === '' ? 'all accounts' : appid}`, 90_000, async () => {
        const want = await expected(appid, lang, range);
        const shown = await read(page);
        last = { shown: pick(shown, want), want };
        return JSON.stringify(last.shown) === JSON.stringify(want) ? shown : undefined;
      }, 1000);
    } catch (error) {
      const signIn = await page.evaluate('document.getElementById("signin")?.textContent ?? null').catch((e: unknown) => String(e));
      assert.deepEqual(last?.shown, last?.want, `${(error as Error).message}; sign-in: ${JSON.stringify(signIn)}; page problems: ${JSON.stringify(problemsOf.get(page))}`);
      throw error;
    }
  }

  /** Every chart on the page has data: a series with at least one value, and not only zeros. */
  function chartsHaveData(shown: Shown, ids: readonly string[]): void {
    assert.deepEqual(Object.keys(shown.charts).sort(), [...ids].sort(), 'the visible charts');
    for (const [id, series] of Object.entries(shown.charts)) {
      const values = series.flatMap((s) => s.data).flat().filter((v) => typeof v === 'number');
      assert.ok(values.some((v) => v !== 0), `chart ${id} has data: ${JSON.stringify(series).slice(0, 300)}`);
    }
  }

  async function choose(page: Page, appid: string): Promise<void> {
    await page.selectOption('#account', appid);
  }

  it('loads from this machine only, shows the API\'s numbers in every chart, switches account and language, and follows new data', async () => {
    const [first = '', second = ''] = f.appids;
    const origin = f.origin;
    const context = await browser.newContext({ viewport: DESKTOP, locale: 'en-US' });
    const watched = await watch(context);
    const { page } = watched;
    try {
      await page.goto(f.url);
      assert.equal(new URL(page.url()).hash, '', 'the token left the address bar');

      // Several accounts: the all-accounts view first, in the browser's language.
      let shown = await showsTheApi(page, '', 'en');
      assert.deepEqual([shown.lang, shown.title, shown.appid], ['en', 'wxsync followers', '']);

      // Each view in each language at desktop and phone width: every chart has data, every number is the API's,
      // nothing is wider than the screen.
      const CHARTS = {
        all: ['chart-churn', 'chart-corrections', 'chart-comparison'],
        account: ['chart-churn', 'chart-retention', 'chart-unfollow', 'chart-corrections', 'chart-comparison'],
      };
      for (const viewport of [DESKTOP, PHONE]) {
        await page.setViewportSize(viewport);
        for (const lang of ['en', 'zh'] as const) {
          if ((await read(page)).lang !== (lang === 'zh' ? 'zh-CN' : 'en')) await page.click('#lang');
          for (const appid of ['', first]) {
            await choose(page, appid);
            shown = await showsTheApi(page, appid, lang);
            assert.equal(shown.title, lang === 'zh' ? 'wxsync 粉丝数据' : 'wxsync followers');
            chartsHaveData(shown, appid === '' ? CHARTS.all : CHARTS.account);
            assert.ok(shown.overflow <= 0, `the page fits ${viewport.width} px (wider by ${shown.overflow} px)`);
            await shot(page, `${appid === '' ? 'all-accounts' : 'account'}-${lang}`);
          }
        }
      }
      await page.setViewportSize(DESKTOP);

      // WeChat's datacube, asked once for the account: its figures beside wxsync's.
      const { tables } = await waitFor('WeChat\'s figures', 60_000, async () => {
        const now = await read(page);
        return /\d+ 天一致/.test(now.checkSummary) ? now : undefined;
      });
      const days = tables['check-table']?.map((r) => r.key) ?? [];
      const check = await f.api<ChurnReport>(`/api/report/churn?appid=${first}&from=${days.at(-1) ?? ''}&to=${days[0] ?? ''}&by=day&check=1`);
      const wechat = (d: CheckDay): string[] => (d.wechat === null
        ? Array.from({ length: 3 }, () => (d.wechatStatus === 'today' ? '今天' : '未就绪'))
        : [int(d.wechat.follows), int(d.wechat.unfollows), int(d.wechat.followers)]);
      assert.deepEqual(tables['check-table']?.map((r) => [r.key, r.cells['wechatFollows'], r.cells['wechatUnfollows'], r.cells['wechatFollowers']]),
        [...check.check?.days ?? []].reverse().map((d) => [d.day, ...wechat(d)]), 'WeChat\'s figures are the datacube\'s');
      assert.ok((check.check?.compared ?? 0) >= 5, 'WeChat had figures for the simulated days');
      assert.match((await read(page)).checkSummary, new RegExp(`^${check.check?.equal ?? -1} 天一致，共比较 ${check.check?.compared ?? -1} 天`));

      // Any range, any bucket, split by campaign or scene: the chart's series are the API's.
      await page.click('[data-days="90"]');
      await page.selectOption('#by', 'week');
      await page.selectOption('#split', 'campaign');
      shown = await showsTheApi(page, first, 'zh', 'days=90&by=week&split=campaign');
      assert.ok((shown.charts['chart-churn']?.length ?? 0) > 4, 'a series per campaign');
      await shot(page, 'account-by-campaign-zh');
      await page.selectOption('#split', 'scene');
      await showsTheApi(page, first, 'zh', 'days=90&by=week&split=scene');
      // Over a year, typed in: no cap on the range.
      const today = days[0] ?? '';
      const yearAgo = new Date(Date.parse(today) - 400 * 86_400_000).toISOString().slice(0, 10);
      await page.selectOption('#split', '');
      await page.fill('#from', yearAgo);
      await page.fill('#to', today);
      await page.selectOption('#by', 'month');
      await page.click('#range button[type="submit"]');
      shown = await showsTheApi(page, first, 'zh', `from=${yearAgo}&to=${today}&by=month`);
      assert.ok((shown.charts['chart-churn']?.[0]?.data.length ?? 0) >= 13, 'more than a year of months');
      await page.click('[data-days="30"]');
      await page.selectOption('#by', 'day');
      await showsTheApi(page, first, 'zh');

      // The other account; then a reload keeps the language and the account (the tab kept the token).
      await choose(page, second);
      chartsHaveData(await showsTheApi(page, second, 'zh'), CHARTS.account);
      await page.reload();
      shown = await showsTheApi(page, second, 'zh');
      assert.deepEqual([shown.lang, shown.appid], ['zh-CN', second]);
      await page.click('#lang');

      // New data while the page is open: it follows without a reload.
      await choose(page, first);
      const before = await showsTheApi(page, first, 'en');
      await page.evaluate('window.stillTheSamePage = true');
      await f.churn(0, { subscribe: 9, unsubscribe: 0, qrScene: 'spring_poster', resubscribeRate: 0, dropRate: 0 });
      const churned = await waitFor('the new follows in the API', 120_000, async () => {
        const churn = await f.api<ChurnReport>(`/api/report/churn?appid=${first}&days=30&by=day`);
        return churn.total.follows === Number((before.figures['follows'] ?? '').replace(/,/g, '')) + 9 ? churn : undefined;
      }, 1000);
      const after = await showsTheApi(page, first, 'en');
      assert.equal(after.figures['follows'], int(churned.total.follows));
      assert.equal(await page.evaluate('window.stillTheSamePage'), true, 'refreshed in place, not reloaded');

      // Another browser, in Chinese: the language comes from it.
      const zhContext = await browser.newContext({ viewport: DESKTOP, locale: 'zh-CN' });
      const zh = await watch(zhContext);
      try {
        await zh.page.goto(f.url);
        const inChinese = await showsTheApi(zh.page, '', 'zh');
        assert.deepEqual([inChinese.lang, inChinese.title], ['zh-CN', 'wxsync 粉丝数据']);
        assert.deepEqual(zh.problems, [], 'no console error in Chinese');
        assert.deepEqual(zh.requests.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith(`blob:${origin}/`) && !url.startsWith('data:')), []);
      } finally {
        await zhContext.close();
      }

      // The pipeline's health is the status API's.
      const status = await f.api<StatusAnswer>('/api/status');
      assert.equal(status.kafkaReachable, true);
      assert.deepEqual(watched.problems, [], 'no console error, no page error');
      const away = watched.requests.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith(`blob:${origin}/`) && !url.startsWith('data:'));
      assert.deepEqual(away, [], 'every request went to the admin listener');
      assert.ok(watched.requests.includes(`${origin}/dashboard/echarts.min.js`), 'ECharts came from wxsync');
    } finally {
      await context.close();
    }
  });

  it('without the token in its address, the page asks for it, and its files are refused', async () => {
    const context = await browser.newContext({ viewport: DESKTOP, locale: 'en-US' });
    const { page, problems } = await watch(context);
    try {
      const res = await page.goto(`${f.origin}/dashboard`);
      assert.equal(res?.status(), 200);
      assert.match(await page.textContent('#signin') ?? '', /^Open the dashboard with the address wxsync prints/);
      assert.deepEqual(problems, []);
      const app = await page.goto(`${f.origin}/dashboard/app.js`);
      assert.equal(app?.status(), 401, 'the dashboard\'s code needs the token');
      await page.goto(`${f.url.replace(/#token=.*/, '')}#token=not-the-token`);
      // A locator, not waitForFunction: a predicate polled in the page is evaluated there, and the sign-in page's CSP
      // (no 'unsafe-eval') refuses it whenever the first poll lands after the new document committed.
      await page.locator('#signin', { hasText: /^The admin token was refused/ }).waitFor({ timeout: 15_000 });
    } finally {
      await context.close();
    }
  });

  it('the API the page reads', async () => {
    const listing = await f.api<SnapshotListing>(`/api/snapshots/${f.appids[0] ?? ''}`);
    const runs = await f.api<ReconcileRuns>(`/api/reconciles?appid=${f.appids[0] ?? ''}`);
    // Each snapshot's one reconcile, oldest first; every correction found by it.
    assert.deepEqual(runs.runs.map((r) => r.snapshotId), listing.snapshots.map((s) => s.snapshotId));
    assert.deepEqual(runs.runs.map((r) => r.corrections), listing.snapshots.map((s) => s.reconcile?.corrections));
    assert.ok(runs.runs.slice(1).some((r) => r.emitted.missing > 0) && runs.runs.slice(1).some((r) => r.emitted.stale > 0), 'lost follows and lost unfollows found');
  });
});
