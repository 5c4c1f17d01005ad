// The wxsync dashboard: one page over the admin API, started by the sign-in page (sign-in.js) with the admin token.
// Every figure on it is a value of an API answer, shown as it is (counts) or as a percentage of a share; nothing is
// computed here but sums for an "others" series and the datacube agreement, which compares two answers.
// It polls GET /api/status every few seconds: the health panel follows every poll, and the reports are read again
// only when the status's `version` says a figure may have changed. WeChat's datacube (check=1) is asked once per
// account and range while the page is open: it has a daily quota.
/* global document, window, fetch, localStorage, navigator, Blob, ResizeObserver, setTimeout */

const POLL_MS = 5000;
const LANG_KEY = 'wxsync-lang';
const ACCOUNT_KEY = 'wxsync-account';
/** Split keys charted on their own; the rest are summed into one "others" series. */
const TOP_KEYS = 8;
/** Campaigns in the heatmap, the largest first. */
const TOP_CAMPAIGNS = 10;
/** Days of the heatmap, and days WeChat's figures are compared over (the end of the range). */
const RETENTION_DAYS = 30;
const CHECK_DAYS = 30;
const MAX_HOURLY_DAYS = 31;
const DAY_MS = 86_400_000;
/** Split keys and accounts; none is the blue of net or the near-black of the followers line. */
const PALETTE = ['#e07b39', '#2e9d5b', '#9b59b6', '#c0392b', '#16a2b8', '#d4a017', '#e84393', '#8c6d31', '#7f8c8d', '#5dade2'];
const COLORS = {
  follows: '#2e9d5b', unfollows: '#d64541', net: '#2f6fdb', followers: '#18243a', corrections: '#e07b39',
  addedExplained: '#a8d8b9', addedUnexplained: '#2e9d5b', removedExplained: '#f2b8b5', removedUnexplained: '#d64541',
};

class SignedOut extends Error {}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') node.className = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children.filter((c) => c !== undefined && c !== null));
  return node;
}

/**
 * A first reconcile loads every follower as a correction, dwarfing every run after it: a break in the value axis
 * between the second highest value and the highest keeps those readable.
 */
function outlierBreaks(values) {
  const [highest = 0, next = 0] = [...values].sort((a, b) => b - a);
  return values.length >= 3 && highest > 4 * Math.max(next, 1)
    ? [{ start: Math.ceil(Math.max(next, 1) * 1.5), end: Math.floor(highest * 0.85), gap: '8%' }] : [];
}

function dateNumber(date) {
  return Date.parse(`${date}T00:00:00Z`) / DAY_MS;
}

function dateOf(day) {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

export async function start({ token, forget }) {
  const auth = { authorization: `Bearer ${token}` };
  const request = async (path) => {
    const res = await fetch(path, { headers: auth });
    if (res.status === 401) {
      forget();
      throw new SignedOut();
    }
    return res;
  };
  /** An API answer; a refusal becomes an Error with the API's message. */
  const get = async (path, anyStatus = false) => {
    const res = await request(path);
    const body = await res.json();
    if (!res.ok && !anyStatus) throw new Error(body.error ?? `HTTP ${res.status}`);
    return body;
  };
  const blobOf = async (path, type) => {
    const res = await request(path);
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return URL.createObjectURL(new Blob([await res.text()], { type }));
  };
  const loaded = (node) => new Promise((resolve, reject) => {
    node.addEventListener('load', resolve, { once: true });
    node.addEventListener('error', () => { reject(new Error(`cannot load ${node.tagName.toLowerCase()}`)); }, { once: true });
    document.head.append(node);
  });

  // The page's files, like its data, come with the token.
  const [cssUrl, chartsUrl, html, strings, accounts] = await Promise.all([
    blobOf('/dashboard/page.css', 'text/css'),
    blobOf('/dashboard/echarts.min.js', 'text/javascript'),
    request('/dashboard/page.html').then((r) => r.text()),
    get('/dashboard/strings.json'),
    get('/api/accounts'),
  ]);
  await Promise.all([loaded(el('link', { rel: 'stylesheet', href: cssUrl })), loaded(el('script', { src: chartsUrl }))]);
  const { echarts } = window;
  document.body.innerHTML = html;
  const $ = (id) => document.getElementById(id);

  const storedLang = localStorage.getItem(LANG_KEY);
  const storedAccount = localStorage.getItem(ACCOUNT_KEY);
  const appids = accounts.accounts.map((a) => a.appid);
  const state = {
    lang: storedLang === 'zh' || storedLang === 'en' ? storedLang : (navigator.language ?? '').toLowerCase().startsWith('zh') ? 'zh' : 'en',
    appid: storedAccount !== null && (storedAccount === '' || appids.includes(storedAccount)) ? storedAccount : appids.length === 1 ? appids[0] : '',
    range: { days: 30 },
    by: 'day',
    split: '',
    tz: accounts.tz,
    /** The last "today" the server named (the end of a --days range), the latest date a range may end on. */
    today: null,
    version: null,
    data: {},
    /** WeChat's answers, per account and range, for as long as the page is open. */
    checks: new Map(),
  };

  const t = (key) => strings[state.lang][key] ?? strings.en[key] ?? key;
  const locale = () => (state.lang === 'zh' ? 'zh-CN' : 'en-US');
  const int = (n) => (n === null || n === undefined ? t('unknown') : n.toLocaleString(locale()));
  const signed = (n) => (n > 0 ? `+${int(n)}` : int(n));
  const pct = (x) => (x === null || x === undefined ? t('unknown') : `${(x * 100).toFixed(1)}%`);
  const duration = (s) => {
    if (s === null || s === undefined) return t('unknown');
    if (s < 60) return `${Math.round(s)} ${t('s')}`;
    if (s < 3600) return `${Math.round(s / 60)} ${t('min')}`;
    if (s < 86_400) return `${(s / 3600).toFixed(1)} ${t('h')}`;
    return `${(s / 86_400).toFixed(1)} ${t('d')}`;
  };
  const ago = (s) => (state.lang === 'zh' ? `${duration(s)}${t('ago')}` : `${duration(s)} ${t('ago')}`);
  const time = (iso, seconds = false) => (iso === null || iso === undefined ? t('unknown') : new Intl.DateTimeFormat(locale(), {
    timeZone: state.tz, month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', ...(seconds ? { second: '2-digit' } : {}), hourCycle: 'h23',
  }).format(new Date(iso)));
  const keyLabel = (key) => {
    if (state.split === 'scene') return key === '' ? t('unknownScene') : strings[state.lang][`scene_${key}`] ?? key;
    return key === '' ? t('noCampaign') : key;
  };

  // Charts: one ECharts instance per container, made again when the language changes (its locale is fixed at init).
  const charts = new Map();
  const resizer = new ResizeObserver((entries) => {
    for (const entry of entries) {
      charts.get(entry.target.id)?.resize();
      // Axis names come and go with the width (renderChurn).
      if (entry.target.id === 'chart-churn' && state.data.churn !== undefined && (entry.target.clientWidth >= 560) !== state.data.named) renderChurn(state.data.churn);
    }
  });
  const chart = (id) => {
    let instance = charts.get(id);
    if (instance === undefined) {
      instance = echarts.init($(id), null, { renderer: 'canvas', locale: state.lang === 'zh' ? 'ZH' : 'EN' });
      charts.set(id, instance);
      resizer.observe($(id));
    }
    return instance;
  };
  const empty = (text) => ({ title: { text, left: 'center', top: 'middle', textStyle: { fontSize: 13, fontWeight: 'normal', color: '#8a93a5' } }, series: [] });
  /** Replaces a chart's option (no animation: a refresh redraws in place, without flicker). */
  const draw = (id, option) => { chart(id).setOption({ animation: false, ...option }, { notMerge: true }); };
  const tooltip = (formatter, trigger = 'axis') => ({ trigger, renderMode: 'richText', confine: true, formatter });

  const banner = (text) => {
    $('banner').hidden = text === null;
    $('banner').textContent = text ?? '';
  };
  const failed = (error) => {
    if (error instanceof SignedOut) {
      banner(t('signedOut'));
      return;
    }
    banner(`${t('error')}: ${error.message}`);
  };

  function table(node, columns, rows) {
    node.replaceChildren(
      el('thead', {}, el('tr', {}, ...columns.map((c) => el('th', { 'data-col': c.key, class: c.text ? 'text' : undefined }, c.label)))),
      el('tbody', {}, ...rows.map((row) => el('tr', { 'data-key': row.key }, ...columns.map((c) => {
        const cls = c.cls?.(row);
        return el('td', { 'data-col': c.key, class: [c.text ? 'text' : '', cls ?? ''].join(' ').trim() || undefined }, c.value(row));
      })))),
    );
  }

  // ---- text ----
  function translate() {
    document.documentElement.lang = state.lang === 'zh' ? 'zh-CN' : 'en';
    document.title = t('title');
    for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
    $('lang').textContent = t('otherLanguage');
    const select = $('account');
    select.replaceChildren(el('option', { value: '' }, t('allAccounts')), ...appids.map((appid) => el('option', { value: appid }, appid)));
    select.value = state.appid;
  }

  // ---- figures ----
  function rangeQuery() {
    const range = state.range.days === undefined ? `from=${state.range.from}&to=${state.range.to}` : `days=${state.range.days}`;
    return `${state.appid === '' ? 'all=1' : `appid=${encodeURIComponent(state.appid)}`}&${range}&by=${state.by}`;
  }

  /** The last CHECK_DAYS days of the range shown: the days WeChat's figures are set beside. */
  function checkRange(churn) {
    const to = dateNumber(churn.to);
    return { from: dateOf(Math.max(dateNumber(churn.from), to - CHECK_DAYS + 1)), to: churn.to };
  }

  async function loadFigures() {
    const asked = `${rangeQuery()}${state.split === '' ? '' : `&split=${state.split}`}`;
    const churn = await get(`/api/report/churn?${asked}`);
    if (state.range.days !== undefined) state.today = churn.to;
    const data = { churn, reconciles: await get(`/api/reconciles?${state.appid === '' ? 'all=1' : `appid=${encodeURIComponent(state.appid)}`}`) };
    if (state.appid !== '') {
      const appid = encodeURIComponent(state.appid);
      const days = checkRange(churn);
      const [campaigns, retention, listing, checkDays] = await Promise.all([
        get(`/api/report/campaigns?appid=${appid}`),
        get(`/api/retention?appid=${appid}&days=${RETENTION_DAYS}`),
        get(`/api/snapshots/${appid}`),
        get(`/api/report/churn?appid=${appid}&from=${days.from}&to=${days.to}&by=day`),
      ]);
      Object.assign(data, { campaigns, retention, listing, checkDays });
    }
    // The choice changed while this was read: the load asked for the new one draws it.
    if (asked !== `${rangeQuery()}${state.split === '' ? '' : `&split=${state.split}`}`) return;
    state.data = { ...state.data, ...data };
    render();
    if (state.appid !== '') loadCheck(state.appid, checkRange(churn)).catch(failed);
  }

  async function loadCheck(appid, days) {
    const key = `${appid} ${days.from} ${days.to}`;
    if (state.checks.has(key)) return;
    state.checks.set(key, { pending: true });
    renderCheck();
    try {
      const answer = await get(`/api/report/churn?appid=${encodeURIComponent(appid)}&from=${days.from}&to=${days.to}&by=day&check=1`);
      state.checks.set(key, { check: answer.check });
    } catch (error) {
      if (error instanceof SignedOut) throw error;
      state.checks.set(key, { error: error.message });
    }
    renderCheck();
  }

  // ---- rendering ----
  function render() {
    document.body.classList.toggle('all', state.appid === '');
    const { churn } = state.data;
    if (churn === undefined) return;
    renderSummary(churn);
    renderChurn(churn);
    if (state.appid === '') {
      renderAccounts(churn);
    } else if (state.data.campaigns !== undefined) {
      renderCampaigns(state.data.campaigns);
      renderRetention(state.data.retention);
      renderUnfollow(state.data.campaigns);
    }
    renderTruth();
    renderCheck();
    renderHealth();
    for (const button of document.querySelectorAll('[data-days]')) button.classList.toggle('on', Number(button.dataset.days) === state.range.days);
    $('from').value = churn.from;
    $('to').value = churn.to;
    if (state.today !== null) {
      $('from').max = state.today;
      $('to').max = state.today;
    }
    $('by').value = state.by;
    $('split').value = state.split;
    $('as-of').textContent = churn.rollupsAsOf === null ? `(${t('noRefreshYet')})` : `(${t('figuresAsOf')} ${time(churn.rollupsAsOf, true)})`;
  }

  function renderSummary(churn) {
    const { total } = churn;
    const shown = {
      follows: int(total.follows), unfollows: int(total.unfollows), net: signed(total.net), followersEnd: int(total.followersEnd),
      unfollowRate: pct(total.unfollowRate), recoveredShare: pct(total.recoveredShare),
    };
    for (const [figure, text] of Object.entries(shown)) {
      const node = document.querySelector(`[data-figure="${figure}"]`);
      node.textContent = text;
      node.classList.toggle('good', figure === 'net' && total.net > 0);
      node.classList.toggle('bad', figure === 'net' && total.net < 0);
    }
  }

  function renderChurn(churn) {
    const labels = churn.periods.map((p) => p.period);
    const series = [];
    if (churn.split === null || churn.splits.length === 0) {
      series.push(
        { id: 'follows', name: t('follows'), type: 'bar', stack: 'churn', data: churn.periods.map((p) => p.follows), itemStyle: { color: COLORS.follows } },
        { id: 'unfollows', name: t('unfollows'), type: 'bar', stack: 'churn', data: churn.periods.map((p) => -p.unfollows), itemStyle: { color: COLORS.unfollows } },
      );
    } else {
      const shown = churn.splits.slice(0, TOP_KEYS);
      const rest = churn.splits.slice(TOP_KEYS);
      const groups = shown.map((s, i) => ({ id: `key:${s.key}`, name: keyLabel(s.key), periods: s.periods, color: PALETTE[i % PALETTE.length] }));
      if (rest.length > 0) {
        groups.push({
          id: 'others', name: `${t('others')} (${rest.length})`, color: '#b4bccb',
          periods: churn.periods.map((_, i) => ({ follows: rest.reduce((n, s) => n + s.periods[i].follows, 0), unfollows: rest.reduce((n, s) => n + s.periods[i].unfollows, 0) })),
        });
      }
      for (const g of groups) {
        series.push(
          { id: `follows:${g.id}`, name: g.name, type: 'bar', stack: 'churn', data: g.periods.map((p) => p.follows), itemStyle: { color: g.color } },
          { id: `unfollows:${g.id}`, name: g.name, type: 'bar', stack: 'churn', data: g.periods.map((p) => -p.unfollows), itemStyle: { color: g.color, opacity: 0.55 } },
        );
      }
    }
    series.push(
      { id: 'net', name: t('net'), type: 'bar', data: churn.periods.map((p) => p.net), itemStyle: { color: COLORS.net }, barMaxWidth: 14 },
      { id: 'followers', name: t('followers'), type: 'line', yAxisIndex: 1, data: churn.periods.map((p) => p.followersEnd), showSymbol: labels.length <= 31, symbolSize: 4, itemStyle: { color: COLORS.followers }, lineStyle: { width: 2 } },
    );
    const previous = charts.get('chart-churn')?.getOption()?.dataZoom?.[0];
    const zoom = previous !== undefined && state.data.zoomKey === rangeQuery() ? { start: previous.start, end: previous.end } : { start: 0, end: 100 };
    state.data.zoomKey = rangeQuery();
    // On a narrow screen the legend says what the axes are.
    const named = $('chart-churn').clientWidth >= 560;
    state.data.named = named;
    draw('chart-churn', {
      tooltip: tooltip((params) => {
        const list = Array.isArray(params) ? params : [params];
        const lines = list.filter((p) => p.value !== 0 || p.seriesId === 'followers' || p.seriesId === 'net').map((p) => {
          const kind = p.seriesId.startsWith('unfollows') ? t('unfollows') : p.seriesId.startsWith('follows') ? t('follows') : '';
          const value = p.seriesId.startsWith('unfollows') ? int(-p.value) : p.seriesId === 'net' ? signed(p.value) : int(p.value);
          return `${kind !== '' && churn.split !== null ? `${kind} · ` : ''}${p.seriesName}: ${value}`;
        });
        return [list[0]?.axisValueLabel ?? '', ...lines].join('\n');
      }),
      legend: { type: 'scroll', top: 0, data: [...new Set(series.map((s) => s.name))] },
      grid: { left: 8, right: 8, top: 54, bottom: 44, containLabel: true },
      dataZoom: [{ type: 'inside', ...zoom }, { type: 'slider', height: 16, bottom: 6, ...zoom }],
      xAxis: { type: 'category', data: labels },
      yAxis: [
        { type: 'value', name: named ? `${t('follows')} / ${t('unfollows')}` : '', nameTextStyle: { align: 'left' }, axisLabel: { formatter: (v) => int(Math.abs(v)) } },
        { type: 'value', name: named ? t('followers') : '', nameTextStyle: { align: 'right' }, scale: true, splitLine: { show: false }, axisLabel: { formatter: (v) => int(v) } },
      ],
      series,
    });
  }

  function renderAccounts(churn) {
    table($('accounts-table'), [
      { key: 'appid', label: t('appid'), text: true, value: (r) => r.appid },
      { key: 'follows', label: t('follows'), value: (r) => int(r.total.follows) },
      { key: 'unfollows', label: t('unfollows'), value: (r) => int(r.total.unfollows) },
      { key: 'net', label: t('net'), value: (r) => signed(r.total.net), cls: (r) => (r.total.net > 0 ? 'good' : r.total.net < 0 ? 'bad' : '') },
      { key: 'followersEnd', label: t('followersEnd'), value: (r) => int(r.total.followersEnd) },
      { key: 'unfollowRate', label: t('unfollowRate'), value: (r) => pct(r.total.unfollowRate) },
    ], churn.accounts.map((a) => ({ ...a, key: a.appid })));
  }

  function renderCampaigns(campaigns) {
    const retention = (days) => (r) => pct(r.retention.find((x) => x.days === days)?.share ?? null);
    table($('campaigns-table'), [
      { key: 'campaign', label: t('campaignCol'), text: true, value: (r) => r.campaign },
      { key: 'brought', label: t('brought'), value: (r) => int(r.brought) },
      { key: 'stillFollowing', label: t('stillFollowing'), value: (r) => int(r.stillFollowing) },
      ...[1, 7, 30, 90].map((days) => ({ key: `d${days}`, label: `${t('after')} ${days} ${t('d')}`, value: retention(days) })),
      { key: 'lost24h', label: t('lost24h'), value: (r) => pct(r.lostWithin24hShare) },
      { key: 'median', label: t('medianToUnfollow'), value: (r) => duration(r.medianSecondsToUnfollow) },
    ], campaigns.campaigns.map((c) => ({ ...c, key: c.campaign })));
  }

  function renderRetention(retention) {
    const shown = retention.campaigns.slice(0, TOP_CAMPAIGNS);
    if (shown.length === 0) {
      draw('chart-retention', empty(t('noCampaigns')));
      return;
    }
    const days = Array.from({ length: retention.days }, (_, i) => i + 1);
    // The largest campaign on top.
    const rows = [...shown].reverse();
    const data = [];
    rows.forEach((c, y) => {
      for (const r of c.retention) if (r.day >= 1 && r.share !== null) data.push({ value: [r.day - 1, y, r.share * 100], eligible: r.eligible, stayed: r.stayed });
    });
    draw('chart-retention', {
      tooltip: tooltip((p) => `${rows[p.value[1]].campaign}\n${t('daysSince')}: ${p.value[0] + 1}\n${pct(p.value[2] / 100)} (${int(p.data.stayed)} / ${int(p.data.eligible)})`, 'item'),
      grid: { left: 8, right: 8, top: 8, bottom: 58, containLabel: true },
      xAxis: { type: 'category', data: days, name: t('daysSince'), nameLocation: 'middle', nameGap: 22, splitArea: { show: true } },
      yAxis: { type: 'category', data: rows.map((c) => c.campaign), splitArea: { show: true } },
      // From the lowest share shown (in tens, 90% at most), so that close shares still look apart.
      visualMap: { min: Math.min(90, Math.floor(Math.min(...data.map((d) => d.value[2])) / 10) * 10), max: 100, orient: 'horizontal', left: 'center', bottom: 0, itemHeight: 120, itemWidth: 10, formatter: (v) => `${Math.round(v)}%`, calculable: true, inRange: { color: ['#fde2d6', '#f5b48a', '#5b8fd9', '#1f4fa3'] } },
      series: [{ id: 'retention', name: t('retentionTitle'), type: 'heatmap', data, emphasis: { itemStyle: { borderColor: '#333', borderWidth: 1 } } }],
    });
  }

  function renderUnfollow(campaigns) {
    const buckets = campaigns.timeToUnfollow;
    draw('chart-unfollow', {
      tooltip: tooltip((params) => `${params[0].axisValueLabel}\n${t('unfollows')}: ${int(params[0].value)}`),
      grid: { left: 8, right: 8, top: 16, bottom: 8, containLabel: true },
      xAxis: { type: 'category', data: buckets.map((b) => b.label), axisLabel: { interval: 0, rotate: 30 } },
      yAxis: { type: 'value', axisLabel: { formatter: (v) => int(v) } },
      series: [{ id: 'timeToUnfollow', name: t('unfollows'), type: 'bar', data: buckets.map((b) => b.unfollows), itemStyle: { color: COLORS.unfollows } }],
    });
  }

  function renderTruth() {
    const status = state.data.status;
    const all = state.appid === '';
    $('corrections-title').textContent = all ? t('correctionsAllTitle') : t('correctionsTitle');
    const runs = state.data.reconciles?.runs ?? [];
    if (runs.length === 0) {
      draw('chart-corrections', empty(t('noReconcile')));
    } else if (all) {
      // The accounts' runs side by side, by the minute they finished (the role reconciles every account after its
      // snapshot, so their runs mostly share one); two runs of an account in one minute add up.
      const labels = [...new Set(runs.map((r) => time(r.finishedAt)))];
      const perAccount = appids.map((appid) => labels.map((label) => {
        const mine = runs.filter((r) => r.appid === appid && time(r.finishedAt) === label);
        return mine.length === 0 ? null : mine.reduce((n, r) => n + r.corrections, 0);
      }));
      draw('chart-corrections', {
        tooltip: tooltip((params) => [params[0].axisValueLabel, ...params.filter((p) => p.value !== null && p.value !== undefined).map((p) => `${p.seriesName}: ${int(p.value)}`)].join('\n')),
        legend: { top: 0 },
        grid: { left: 8, right: 8, top: 48, bottom: 8, containLabel: true },
        xAxis: { type: 'category', data: labels },
        yAxis: { type: 'value', breaks: outlierBreaks(perAccount.flat().filter((v) => v !== null)), axisLabel: { formatter: (v) => int(v) } },
        series: appids.map((appid, i) => ({
          id: `account:${appid}`, name: appid, type: 'bar', barMaxWidth: 24, itemStyle: { color: PALETTE[i % PALETTE.length] },
          label: { show: true, position: 'top', color: '#5d6678', formatter: (p) => int(p.value) }, data: perAccount[i],
        })),
      });
    } else {
      // Each run of the account, its corrections by what the lost push was, the total above.
      const rule = (id, color) => ({ id, name: t(`rule_${id}`), type: 'bar', stack: 'rules', barMaxWidth: 36, itemStyle: { color }, data: runs.map((r) => r.emitted[id]) });
      const series = [rule('missing', COLORS.follows), rule('stale', COLORS.unfollows), rule('live', COLORS.corrections)];
      series[2].label = { show: true, position: 'top', color: '#5d6678', formatter: (p) => int(runs[p.dataIndex].corrections) };
      const breaks = outlierBreaks(runs.map((r) => r.corrections));
      draw('chart-corrections', {
        tooltip: tooltip((params) => {
          const run = runs[params[0].dataIndex];
          return [time(run.finishedAt), ...params.map((p) => `${p.seriesName}: ${int(p.value)}`), `${t(`status_${run.status}`)} · ${run.snapshotId}`].join('\n');
        }),
        legend: { top: 0 },
        grid: { left: 8, right: 8, top: 48, bottom: 8, containLabel: true },
        xAxis: { type: 'category', data: runs.map((r) => time(r.finishedAt)) },
        yAxis: { type: 'value', breaks, axisLabel: { formatter: (v) => int(v) } },
        series,
      });
    }
    // The last recorded comparison of the account, or of each account.
    const compared = all
      ? (status?.accounts ?? []).filter((a) => a.lastComparison !== null).map((a) => ({ appid: a.appid, ...a.lastComparison }))
      : (() => {
        const last = state.data.listing?.snapshots.filter((s) => s.comparison !== null).at(-1);
        return last === undefined ? [] : [{ appid: state.appid, snapshotId: last.snapshotId, ...last.comparison }];
      })();
    if (compared.length === 0) {
      draw('chart-comparison', empty(t('noComparison')));
      $('comparison-note').textContent = '';
      return;
    }
    const bar = (id, name, stack, color, value) => ({ id, name, type: 'bar', stack, barMaxWidth: 48, itemStyle: { color }, data: compared.map(value) });
    draw('chart-comparison', {
      tooltip: tooltip((params) => [params[0].axisValueLabel, ...params.map((p) => `${p.seriesName}: ${int(p.value)}`)].join('\n')),
      legend: { top: 0 },
      grid: { left: 8, right: 8, top: 56, bottom: 8, containLabel: true },
      // Every account named, however narrow the chart.
      xAxis: { type: 'category', data: compared.map((c) => c.appid), axisLabel: { interval: 0, overflow: 'truncate', width: 110 } },
      yAxis: { type: 'value', axisLabel: { formatter: (v) => int(v) } },
      series: [
        bar('addedExplained', `${t('added')} · ${t('explained')}`, 'added', COLORS.addedExplained, (c) => c.added - c.addedUnexplained),
        bar('addedUnexplained', `${t('added')} · ${t('unexplained')}`, 'added', COLORS.addedUnexplained, (c) => c.addedUnexplained),
        bar('removedExplained', `${t('removed')} · ${t('explained')}`, 'removed', COLORS.removedExplained, (c) => c.removed - c.removedUnexplained),
        bar('removedUnexplained', `${t('removed')} · ${t('unexplained')}`, 'removed', COLORS.removedUnexplained, (c) => c.removedUnexplained),
      ],
    });
    $('comparison-note').textContent = compared.map((c) => `${all ? `${c.appid}: ` : ''}${t('added')} ${int(c.added)} (${t('unexplained')} ${int(c.addedUnexplained)}), `
      + `${t('removed')} ${int(c.removed)} (${t('unexplained')} ${int(c.removedUnexplained)}) · ${c.fromSnapshotId} → ${c.snapshotId}`).join('; ');
  }

  function renderCheck() {
    const { checkDays, churn } = state.data;
    if (state.appid === '' || checkDays === undefined || churn === undefined) return;
    const days = checkRange(churn);
    const found = state.checks.get(`${state.appid} ${days.from} ${days.to}`);
    const summary = $('check-summary');
    if (found === undefined || found.pending === true) {
      summary.textContent = t('checkLoading');
      $('check-table').replaceChildren();
      return;
    }
    if (found.error !== undefined) {
      summary.textContent = found.error;
      $('check-table').replaceChildren();
      return;
    }
    // wxsync's figures as they are now, WeChat's as it answered when asked.
    const wechat = new Map(found.check.days.map((d) => [d.day, d]));
    const rows = [...checkDays.periods].reverse().map((p) => {
      const theirs = wechat.get(p.period);
      const figures = theirs?.wechat ?? null;
      const agrees = figures === null ? null : figures.follows === p.follows && figures.unfollows === p.unfollows && figures.followers === p.followersEnd;
      return { key: p.period, ours: p, figures, status: theirs?.wechatStatus ?? 'today', agrees };
    });
    const compared = rows.filter((r) => r.agrees !== null);
    summary.textContent = `${int(compared.filter((r) => r.agrees).length)} ${t('checkAgree')} ${int(compared.length)} ${t('checkCompared')} (${days.from} – ${days.to})`;
    const theirs = (pick) => (r) => (r.figures === null ? t(r.status === 'today' ? 'today' : 'notReady') : int(pick(r.figures)));
    table($('check-table'), [
      { key: 'day', label: t('dayCol'), text: true, value: (r) => r.key },
      { key: 'wxsyncFollows', label: `${t('wxsyncCol')} ${t('follows')}`, value: (r) => int(r.ours.follows) },
      { key: 'wechatFollows', label: `${t('wechatCol')} ${t('follows')}`, value: theirs((f) => f.follows) },
      { key: 'wxsyncUnfollows', label: `${t('wxsyncCol')} ${t('unfollows')}`, value: (r) => int(r.ours.unfollows) },
      { key: 'wechatUnfollows', label: `${t('wechatCol')} ${t('unfollows')}`, value: theirs((f) => f.unfollows) },
      { key: 'wxsyncFollowers', label: `${t('wxsyncCol')} ${t('followers')}`, value: (r) => int(r.ours.followersEnd) },
      { key: 'wechatFollowers', label: `${t('wechatCol')} ${t('followers')}`, value: theirs((f) => f.followers) },
      {
        key: 'agree', label: t('differenceCol'), text: true,
        value: (r) => (r.agrees === null ? t('unknown') : r.agrees ? t('agree') : t('differ')),
        cls: (r) => (r.agrees === null ? '' : r.agrees ? 'good' : 'bad'),
      },
    ], rows);
  }

  function renderHealth() {
    const { status, ready } = state.data;
    if (status === undefined) return;
    const card = (key, label, value, cls, sub) => el('div', { class: 'card', 'data-health': key },
      el('span', { class: 'label' }, label), el('span', { class: `value ${cls}`.trim() }, value), sub === undefined ? undefined : el('span', { class: 'sub' }, sub));
    const lag = status.consumer.lagByTopic;
    const roles = ready?.roles ?? {};
    const readyRoles = Object.values(roles).filter(Boolean).length;
    $('health-cards').replaceChildren(
      card('lag', t('consumerLag'), int(status.consumer.lag), status.consumer.lag === null ? 'warn' : status.consumer.lag > 0 ? 'warn' : 'good',
        lag === null ? undefined : `${t('lagEvents')} ${int(lag.events)} · ${t('lagSnapshots')} ${int(lag.snapshots)} · ${t('lagProfiles')} ${int(lag.profiles)}`),
      card('spool', t('spoolDepth'), int(status.spool.depth), status.spool.depth > 0 ? 'warn' : ''),
      card('kafka', t('kafka'), status.kafkaReachable ? t('reachable') : t('unreachable'), status.kafkaReachable ? 'good' : 'bad'),
      card('store', t('store'), ready === undefined ? t('unknown') : ready.store ? t('writable') : t('notWritable'), ready?.store ? 'good' : 'bad'),
      card('consumer', t('consumer'), status.consumer.stalled === null ? t('unknown') : status.consumer.stalled ? t('stalled') : t('running'),
        status.consumer.stalled ? 'bad' : status.consumer.stalled === false ? 'good' : ''),
      card('roles', t('roles'), `${int(readyRoles)} / ${int(Object.keys(roles).length)}`, readyRoles === Object.keys(roles).length ? 'good' : 'bad',
        Object.entries(roles).map(([name, ok]) => `${name} ${ok ? t('ready') : t('notReadyRole')}`).join(' · ')),
    );
    $('health-cards').append(alertsCard(card, status.alerts));
    const shown = state.appid === '' ? status.accounts : status.accounts.filter((a) => a.appid === state.appid);
    table($('health-table'), [
      { key: 'appid', label: t('appid'), text: true, value: (a) => a.appid },
      { key: 'snapshot', label: t('lastSnapshot'), text: true, value: (a) => (a.lastSnapshot === null ? t('none') : `${t(`state_${a.lastSnapshot.state}`)}${a.lastSnapshot.reason === '' ? '' : `: ${a.lastSnapshot.reason}`}`), cls: (a) => (a.lastSnapshot?.state === 'incomplete' ? 'bad' : '') },
      { key: 'snapshotAge', label: `${t('lastSnapshot')} · ${t('age')}`, value: (a) => duration(a.lastSnapshot?.ageSeconds) },
      { key: 'snapshotTotal', label: `${t('lastSnapshot')} · ${t('followers')}`, value: (a) => int(a.lastSnapshot?.total) },
      { key: 'reconcile', label: t('lastReconcile'), text: true, value: (a) => (a.lastReconcile === null ? t('none') : t(`status_${a.lastReconcile.status}`)), cls: (a) => (a.lastReconcile === null ? '' : a.lastReconcile.status === 'done' ? 'good' : 'bad') },
      { key: 'reconcileCorrections', label: `${t('lastReconcile')} · ${t('corrections')}`, value: (a) => int(a.lastReconcile?.corrections) },
      { key: 'reconcileAge', label: `${t('lastReconcile')} · ${t('age')}`, value: (a) => duration(a.lastReconcile?.ageSeconds) },
      { key: 'sentinel', label: t('sentinel'), text: true, value: sentinelCell, cls: (a) => ({ equal: 'good', drift: 'bad', failed: 'warn' })[a.sentinel?.result] },
    ], shown.map((a) => ({ ...a, key: a.appid })));
    $('live').classList.toggle('offline', false);
    $('live-text').textContent = `${t('live')} · ${t('updated')} ${time(status.now, true)}`;
  }

  /** The alerts firing in wxsync's process: how many and which (per account); unknown without the alerts role there. */
  function alertsCard(card, alerts) {
    if (alerts === null) return card('alerts', t('alertsFiring'), t('unknown'), '');
    if (alerts.length === 0) return card('alerts', t('alertsFiring'), t('none'), 'good');
    return card('alerts', t('alertsFiring'), int(alerts.length), 'bad',
      alerts.map((a) => `${t(`alert_${a.kind}`)}${a.appid === '' ? '' : ` (${a.appid})`}`).join(' · '));
  }

  /** The sentinel's last check: its result (the drift when not equal) and its age, e.g. "drift +45 · 2 min ago". */
  function sentinelCell(a) {
    const check = a.sentinel;
    if (check === null) return t('unknown');
    const found = check.result === 'drift' ? `${t('sentinel_drift')} ${signed(check.drift)}` : t(`sentinel_${check.result}`);
    // The age is marked: the browser test compares the rest with the API's answer, which it reads at another second.
    return el('span', {}, `${found} · `, el('span', { 'data-age': '' }, ago(check.ageSeconds)));
  }

  // ---- polling ----
  // One load at a time, in the order asked: a load for a choice already left is never drawn over a newer one.
  let loading = Promise.resolve();
  const reload = () => {
    loading = loading.then(async () => {
      await loadFigures();
      banner(null);
    }).catch(failed);
    return loading;
  };

  async function poll() {
    try {
      const [status, ready] = await Promise.all([get('/api/status'), get('/readyz', true)]);
      state.data.status = status;
      state.data.ready = ready;
      renderHealth();
      if (status.version !== state.version) {
        state.version = status.version;
        await reload();
      }
    } catch (error) {
      if (error instanceof SignedOut) {
        failed(error);
        return;
      }
      $('live').classList.add('offline');
      $('live-text').textContent = t('offline');
    }
    setTimeout(() => { void poll(); }, POLL_MS);
  }

  // ---- controls ----
  const rangeDays = () => (state.range.days ?? dateNumber(state.range.to) - dateNumber(state.range.from) + 1);
  const changed = () => {
    if (state.by === 'hour' && rangeDays() > MAX_HOURLY_DAYS) state.by = 'day';
    $('by').querySelector('option[value="hour"]').disabled = rangeDays() > MAX_HOURLY_DAYS;
    void reload();
  };
  $('account').addEventListener('change', () => {
    state.appid = $('account').value;
    localStorage.setItem(ACCOUNT_KEY, state.appid);
    changed();
  });
  $('lang').addEventListener('click', () => {
    state.lang = state.lang === 'zh' ? 'en' : 'zh';
    localStorage.setItem(LANG_KEY, state.lang);
    for (const instance of charts.values()) instance.dispose();
    charts.clear();
    translate();
    render();
  });
  for (const button of document.querySelectorAll('[data-days]')) {
    button.addEventListener('click', () => {
      state.range = { days: Number(button.dataset.days) };
      changed();
    });
  }
  $('range').addEventListener('submit', (event) => {
    event.preventDefault();
    const from = $('from').value;
    const to = $('to').value;
    if (from === '' || to === '' || from > to) return;
    state.range = { from, to };
    changed();
  });
  $('by').addEventListener('change', () => {
    state.by = $('by').value;
    changed();
  });
  $('split').addEventListener('change', () => {
    state.split = $('split').value;
    changed();
  });

  translate();
  document.body.classList.toggle('all', state.appid === '');
  $('by').querySelector('option[value="hour"]').disabled = rangeDays() > MAX_HOURLY_DAYS;
  await poll();
}
