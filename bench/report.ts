/**
 * Reports at scale (issue 13, point 5): `report churn` over 365 days, `report campaigns` and `compare` of two
 * snapshots, each timed next to the same answer computed from the raw tables in the same run, and checked equal.
 *   - the store (chDB, in this process) is filled directly with INSERT … SELECT FROM numbers(…), not through Kafka
 *     (bench/consumer.ts measures that): 3 accounts holding 50%, 30% and 20% of the current followers, plus former
 *     followers, so that the event log holds `--events` events over 3 years ending now, each id once (plus the
 *     redeliveries below). Deterministic: every choice is a hash of (account, user, event), relative to "now".
 *     Per user: one follow (most), or several with unfollows between them;
 *     current followers end subscribed, former ones unsubscribed; scenes (QR codes of 50 campaigns, search,
 *     profile card, …), QR followers leaving sooner; follows before wxsync watched (the first 180 days) known
 *     from the initial load's corrections; 3% of other events recovered by corrections (pushes lost); 0.5% of users
 *     with an unsubscribe first (no change), 2% of current followers with a correction that agrees (no change);
 *     10% of events stored again with the same id (redeliveries, on top of `--events`). The views
 *     feeding the reconcile's tables (followers, follower_keys) are dropped first: nothing here reads those tables,
 *     and they would double the loading time. The log is then merged (OPTIMIZE … FINAL, one part, as at rest), the
 *     bench waits (`--settle`) for other merges, and only then are the duplicates inserted, in parts of their own,
 *     and merges of user_events stopped: every measurement reads the same parts, duplicates included;
 *   - the rollups (sql/012) are refreshed once with reports/refresh.ts refreshRollups, timed, peak RSS kept (their
 *     hourly fallback schedule is moved out of the way in this store, so only the refreshes the bench asks for run);
 *   - timed, each `--runs` times (raw: `--raw-runs`): churnReport over the 365 days ending today by day, every
 *     account, next to rawChurnReport (window functions over user_events); campaignsReport of the largest
 *     account next to rawCampaignsReport; snapshot history's compare of two complete snapshots of a fourth account
 *     (`--snapshot` members each, 0.2% drift each way, half of the drift explained by callbacks in the window) next
 *     to a set difference of snapshot_members by openid (GROUP BY openid over both snapshots; NOT IN took minutes
 *     and 9–13 GB at 10M in this chDB) with the callbacks looked up by IN. The first run
 *     is reported apart: it is the first in this process (ClickHouse's caches cold; the OS page cache is warm, the
 *     data having just been written). Each rollup answer must equal the raw one: deepEqual, or the bench fails.
 * Peak RSS of this process (chDB inside) is printed per phase (the kernel's high-water mark, reset between
 * phases) and overall.
 *
 * Usage: node --import tsx bench/report.ts [--followers 10000000] [--events 50000000] [--snapshot 10000000]
 *          [--runs 5] [--raw-runs 2] [--data DIR] [--settle 600] [--now 2026-11-26T00:00:00Z]
 *   --followers N   current followers over the 3 accounts (default 10M); --events defaults to 5 per follower;
 *   --data DIR      keep the store in DIR and reuse it when a later run asks for the same data (skips generation);
 *   --settle S      wait at most S seconds for background merges to end after loading (a store at rest).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClickHouse, type ClickHouseClient } from '../lib/clickhouse.ts';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { migrate } from '../lib/migrate.ts';
import { historyFor } from '../producers/reconcile/compare.ts';
import { campaignsReport } from '../reports/campaigns.ts';
import { churnReport, type ChurnRequest } from '../reports/churn.ts';
import { reportRange } from '../reports/range.ts';
import { rawCampaignsReport } from '../reports/raw-campaigns.ts';
import { rawChurnReport } from '../reports/raw.ts';
import { ROLLUP_VIEWS, refreshRollups } from '../reports/refresh.ts';
import { parseCount, peakRssMb, report } from './support.ts';

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args[at + 1];
};
const FOLLOWERS = parseCount(arg('--followers'), 10_000_000);
const EVENTS = parseCount(arg('--events'), FOLLOWERS * 5);
const SNAPSHOT = parseCount(arg('--snapshot'), FOLLOWERS);
const RUNS = parseCount(arg('--runs'), 5);
const RAW_RUNS = parseCount(arg('--raw-runs'), 2);
const DATA = arg('--data');
const TZ = 'Asia/Shanghai';
const DAY_S = 86_400;
const YEARS = 3;
const SPAN_S = YEARS * 365 * DAY_S;
/** wxsync began watching this long after the data starts: follows before are known from the initial load. */
const WATCH_AFTER_S = 180 * DAY_S;
const DUPLICATE_PERMILLE = 100;
const LOST_PERMILLE = 30;
const LEAD_PERMILLE = 5;
const REDUNDANT_PERMILLE = 20;
const CAMPAIGNS = 50;
const PAGE = 10_000;
const DRIFT = 0.002;
const GOALS = { churn: 0.5, campaigns: 1, compare: 2 } as const;
const SETTLE_S = parseCount(arg('--settle'), 600);
const FEEDING_VIEWS = ['followers_mv', 'follower_keys_mv'] as const;

const ACCOUNTS = [
  { appid: 'wxbenchaccount0001', share: 0.5 },
  { appid: 'wxbenchaccount0002', share: 0.3 },
  { appid: 'wxbenchaccount0003', share: 0.2 },
] as const;
const COMPARE_APPID = 'wxbenchcompare0001';

/** Spells (follows) per user, by permille of a hash: [upper bound, spells]. */
const SPELLS_CURRENT = [[750, 1], [900, 2], [970, 3], [1000, 5]] as const;
const SPELLS_FORMER = [[800, 1], [950, 2], [1000, 4]] as const;
/** Subscribe scenes by permille; a QR scene names one of CAMPAIGNS campaigns. */
const SCENES = [
  [350, 'ADD_SCENE_QR_CODE'], [600, 'ADD_SCENE_SEARCH'], [720, 'ADD_SCENE_PROFILE_CARD'], [770, 'ADD_SCENE_PROFILE_LINK'],
  [820, 'ADD_SCENE_WECHAT_ADVERTISEMENT'], [850, 'ADD_SCENE_ACCOUNT_MIGRATION'], [950, 'ADD_SCENE_OTHERS'], [1000, ''],
] as const;
/** How long a follow lasts before its unfollow, by permille: [upper bound, from s, to s] (log-uniform within). */
const LASTS_QR = [[250, 60, 3600], [450, 3600, DAY_S], [650, DAY_S, 7 * DAY_S], [800, 7 * DAY_S, 30 * DAY_S], [900, 30 * DAY_S, 90 * DAY_S], [1000, 90 * DAY_S, 365 * DAY_S]] as const;
const LASTS_OTHER = [[50, 60, 3600], [150, 3600, DAY_S], [300, DAY_S, 7 * DAY_S], [500, 7 * DAY_S, 30 * DAY_S], [750, 30 * DAY_S, 90 * DAY_S], [1000, 90 * DAY_S, 365 * DAY_S]] as const;

const mean = (table: readonly (readonly [number, number])[]): number => table.reduce((sum, [upTo, n], i) => sum + (upTo - (table[i - 1]?.[0] ?? 0)) / 1000 * n, 0);
/** Distinct events per current and per former follower, as the generator below draws them. */
const EVENTS_PER_CURRENT = LEAD_PERMILLE / 1000 + 2 * mean(SPELLS_CURRENT) - 1 + REDUNDANT_PERMILLE / 1000;
const EVENTS_PER_FORMER = LEAD_PERMILLE / 1000 + 2 * mean(SPELLS_FORMER);

// ---------------------------------------------------------------------------------------------------------------
// Memory: the kernel's high-water mark of this process, reset per phase (writing 5 to clear_refs).

function statusKb(field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return match === null ? 0 : Number(match[1]);
}
let overallPeakMb = 0;
function phasePeak(): { readonly peakMb: number; readonly rssMb: number } {
  const peakMb = statusKb('VmHWM') / 1024;
  overallPeakMb = Math.max(overallPeakMb, peakMb, peakRssMb());
  return { peakMb, rssMb: statusKb('VmRSS') / 1024 };
}
function resetPeak(): number {
  phasePeak();
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // Not Linux, or not allowed: phase peaks are then the process's peak so far.
  }
  return statusKb('VmRSS') / 1024;
}

// ---------------------------------------------------------------------------------------------------------------
// Data generation, in SQL.

const h = (...parts: string[]): string => `sipHash64({appid:String}, ${parts.join(', ')})`;
const byPermille = <T extends readonly [number, ...unknown[]]>(r: string, table: readonly T[], value: (row: T) => string): string =>
  `multiIf(${table.slice(0, -1).map((row) => `${r} < ${row[0]}, ${value(row)}`).join(', ')}, ${value(table[table.length - 1] as T)})`;
const unit = (hash: string): string => `((${hash} % 1000000) / 1000000)`;
/** How long spell `spell` lasts, in seconds. */
const lasts = (table: readonly (readonly [number, number, number])[], spell: string): string =>
  byPermille(`${h('i', `200 + ${spell}`)} % 1000`, table, ([, from, to]) => `${from} * pow(${to / from}, ${unit(h('i', `300 + ${spell}`))})`);
const openidOf = (n: string): string => `concat('o', substring(hex(sipHash128({appid:String}, ${n})), 1, 27))`;

/**
 * Every event of users 0 … users−1 of one account, users below `current` following now. Per user, arrays of its
 * events (kind, spell, gap before it), then one row per event. Kinds: 0 an unsubscribe before any follow, 1 a
 * subscribe (spell j), 2 the unsubscribe ending spell j, 3 a subscribe correction during the last spell (no change).
 */
function eventsSelect(): string {
  return `
    SELECT hex(sipHash128({appid:String}, i, k)) AS id, {appid:String} AS appid, openid,
      if(kind IN (1, 3), 'subscribe', 'unsubscribe') AS type,
      fromUnixTimestamp64Milli(at_ms, 'UTC') AS at,
      if(correction, 'correction', 'callback') AS source,
      if(kind IN (1, 3), scenes[j + 1], '') AS scene,
      if(kind IN (1, 3), campaigns[j + 1], '') AS qr_scene,
      fromUnixTimestamp64Milli(received_ms, 'UTC') AS received_at,
      if(correction, if(initial, 'initial-load', 'bench-snapshot'), '') AS correction_snapshot_id,
      if(correction, if(kind IN (1, 3), 'missing', 'stale'), '') AS correction_rule,
      bitOr(bitOr(bitShiftLeft(toUInt64(at_ms), 22), bitShiftLeft(toUInt64(NOT correction), 21)),
        bitOr(bitShiftLeft(toUInt64(least(1048575, greatest(0, received_ms - at_ms + 300000))), 1), toUInt64(kind IN (0, 2)))) AS ord
    FROM (
      SELECT i, openid, kinds, scenes, campaigns, k, kinds[k] AS kind, spell_of[k] AS j, t0 + offsets[k] AS at_s, at_s * 1000 AS at_ms,
        kind = 1 AND k = indexOf(kinds, 1) AND at_s < {watch_s:Int64} AS initial,
        kind = 3 OR initial OR (kind != 0 AND ${h('i', '1000 + k')} % 1000 < ${LOST_PERMILLE}) AS correction,
        at_ms + if(correction, 3600000, toInt64(${h('i', '2000 + k')} % 3000)) AS received_ms
      FROM (
        SELECT i, openid, kinds, spell_of, scenes, campaigns,
          arrayMap(k -> if(k = 1, 0, greatest(1, toInt64(raw_gaps[k] * squeeze))), arrayEnumerate(raw_gaps)) AS gaps,
          arrayCumSum(gaps) AS offsets,
          {start_s:Int64} + toInt64(pow(${unit(h('i', '4'))}, 0.75) * ({span_s:Int64} - arraySum(gaps))) AS t0
        FROM (
          SELECT i, openid, kinds, spell_of, scenes, campaigns,
            arrayMap(k -> multiIf(
                k = 1, 0,
                kinds[k] = 2, if(scenes[spell_of[k] + 1] = 'ADD_SCENE_QR_CODE', ${lasts(LASTS_QR, 'spell_of[k]')}, ${lasts(LASTS_OTHER, 'spell_of[k]')}),
                kinds[k] = 3, 3600 * pow(720, ${unit(h('i', '5000 + k'))}),
                kinds[k - 1] = 0, ${DAY_S} * pow(30, ${unit(h('i', '5000 + k'))}),
                3600 * pow(2880, ${unit(h('i', '5000 + k'))})),
              arrayEnumerate(kinds)) AS raw_gaps,
            least(1, {span_s:Int64} * 0.9 / greatest(1, arraySum(raw_gaps))) AS squeeze
          FROM (
            SELECT number AS i, ${openidOf('number')} AS openid,
              i < {current:UInt64} AS cur,
              if(cur, ${byPermille(`${h('i', '1')} % 1000`, SPELLS_CURRENT, ([, n]) => String(n))},
                ${byPermille(`${h('i', '1')} % 1000`, SPELLS_FORMER, ([, n]) => String(n))}) AS spells,
              ${h('i', '2')} % 1000 < ${LEAD_PERMILLE} AS lead,
              cur AND ${h('i', '3')} % 1000 < ${REDUNDANT_PERMILLE} AS redundant,
              toUInt32(lead + 2 * spells - cur + redundant) AS n,
              arrayMap(k -> multiIf(lead AND k = 0, 0, redundant AND k = n - 1, 3, (k - lead) % 2 = 0, 1, 2), range(n)) AS kinds,
              arrayMap(k -> toUInt32(multiIf(kinds[k + 1] = 0, 0, kinds[k + 1] = 3, spells - 1, intDiv(k - lead, 2))), range(n)) AS spell_of,
              arrayMap(j -> ${byPermille(`${h('i', '100 + j')} % 1000`, SCENES, ([, s]) => `'${s}'`)}, range(spells)) AS scenes,
              arrayMap(j -> if(scenes[j + 1] = 'ADD_SCENE_QR_CODE',
                concat('qr-', leftPad(toString(1 + toUInt32(${CAMPAIGNS} * pow(${unit(h('i', '150 + j'))}, 2))), 2, '0')), ''), range(spells)) AS campaigns
            FROM numbers({users:UInt64})
          )
        )
      )
      ARRAY JOIN arrayEnumerate(kinds) AS k
    )`;
}

const COLUMNS = '(id, appid, openid, type, at, source, scene, qr_scene, received_at, correction_snapshot_id, correction_rule, ord)';

/** What loading did, kept with a reused store. */
interface Loaded {
  readonly loadS: number;
  readonly settleS: number;
  readonly settled: boolean;
  readonly redeliverS: number;
  readonly distinct: number;
  readonly redelivered: number;
  readonly compareEvents: number;
}

interface Plan {
  readonly now: number;
  readonly accounts: readonly { readonly appid: string; readonly current: number; readonly users: number }[];
}

function plan(now: number): Plan {
  // Former followers enough for the events asked for (redeliveries come on top).
  const former = Math.max(0, (EVENTS - FOLLOWERS * EVENTS_PER_CURRENT) / EVENTS_PER_FORMER);
  const accounts = ACCOUNTS.map((a) => {
    const current = Math.round(FOLLOWERS * a.share);
    return { appid: a.appid, current, users: current + Math.round(former * a.share) };
  });
  return { now, accounts };
}

async function count(client: ClickHouseClient, query: string, params: Record<string, unknown> = {}): Promise<number> {
  const [row] = await (await client.query({ query, query_params: params, format: 'JSONEachRow' })).json<{ n: string }>();
  return Number(row?.n ?? 0);
}

async function generate(client: ClickHouseClient, db: string, p: Plan): Promise<void> {
  const startS = Math.floor(p.now / 1000) - SPAN_S;
  for (const account of p.accounts) {
    const params = { appid: account.appid, users: account.users, current: account.current, start_s: startS, span_s: SPAN_S, watch_s: startS + WATCH_AFTER_S };
    const started = performance.now();
    await client.command({ query: `INSERT INTO ${db}.user_events ${COLUMNS} ${eventsSelect()}`, query_params: params });
    const inserted = await count(client, `SELECT count() AS n FROM ${db}.user_events WHERE appid = {appid:String}`, params);
    report(`  ${account.appid}: events`, inserted, 'rows', `${account.users.toLocaleString('en-US')} users, ${account.current.toLocaleString('en-US')} following; ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
}

/**
 * Redeliveries: 10% of the events stored again with the same id, in parts of their own, after the store has
 * settled, and merges stopped so that every measurement reads them (merging with the originals would drop them).
 */
async function redeliver(client: ClickHouseClient, db: string, p: Plan): Promise<number> {
  const appids = p.accounts.map((a) => a.appid);
  const before = await count(client, `SELECT count() AS n FROM ${db}.user_events`);
  await client.command({ query: `SYSTEM STOP MERGES ${db}.user_events` });
  await client.command({
    query: `INSERT INTO ${db}.user_events ${COLUMNS} SELECT ${COLUMNS.slice(1, -1)} FROM ${db}.user_events
      WHERE appid IN {appids:Array(String)} AND sipHash64(id) % 1000 < ${DUPLICATE_PERMILLE}`,
    query_params: { appids },
  });
  return await count(client, `SELECT count() AS n FROM ${db}.user_events`) - before;
}

/**
 * Two complete snapshots of the compare account, `from` of users 0 … S−1 and `to` of users D … S+D−1: D removed,
 * D added. Half of each side (even users) has a callback of the matching type inside the explanation window; the
 * removed users followed a year earlier (a correction of the initial load, with a scene), the added ones by QR.
 */
async function generateSnapshots(client: ClickHouseClient, db: string, now: number): Promise<number> {
  const drift = Math.max(1, Math.round(SNAPSHOT * DRIFT));
  const from = { id: 'bench-compare-from', base: 0, t0: now - 2 * DAY_S * 1000 };
  const to = { id: 'bench-compare-to', base: drift, t0: now - DAY_S * 1000 };
  const pages = Math.ceil(SNAPSHOT / PAGE);
  for (const s of [from, to]) {
    const params = { appid: COMPARE_APPID, sid: s.id, base: s.base, n: SNAPSHOT, t0: s.t0, t1: s.t0 + 1_800_000, pages };
    await client.command({
      query: `INSERT INTO ${db}.snapshot_members (appid, snapshot_id, openid, page)
        SELECT {appid:String}, {sid:String}, ${openidOf('{base:UInt64} + number')}, intDiv(number, ${PAGE}) + 1 FROM numbers({n:UInt64})`,
      query_params: params,
    });
    const snapshots = `INSERT INTO ${db}.snapshots (appid, snapshot_id, kind, page, started_at, ended_at, complete, total, pages, openids)`;
    for (const select of [
      `SELECT {appid:String}, {sid:String}, 'begin', 0, fromUnixTimestamp64Milli({t0:Int64}, 'UTC'), 0, 0, 0, 0, 0`,
      `SELECT {appid:String}, {sid:String}, 'page', number + 1, 0, 0, 0, {n:UInt64}, 0, 0 FROM numbers({pages:UInt32})`,
      `SELECT {appid:String}, {sid:String}, 'end', 0, fromUnixTimestamp64Milli({t0:Int64}, 'UTC'), fromUnixTimestamp64Milli({t1:Int64}, 'UTC'), 1, {n:UInt64}, {pages:UInt32}, {n:UInt64}`,
    ]) await client.command({ query: `${snapshots} ${select}`, query_params: params });
  }
  // The window runs from `from`'s start to `to`'s end: callbacks at from.t0 + 1 h + a few seconds per user.
  const eventRow = (type: string, source: string, atMs: string, scene: string, qr: string): string =>
    `SELECT hex(sipHash128({appid:String}, n, '${type}')), {appid:String}, ${openidOf('n')}, '${type}', fromUnixTimestamp64Milli(${atMs}, 'UTC'), '${source}',
      ${scene}, ${qr}, fromUnixTimestamp64Milli(${atMs} + 1000, 'UTC'), ${source === 'correction' ? `'initial-load', 'missing'` : `'', ''`},
      bitOr(bitOr(bitShiftLeft(toUInt64(${atMs}), 22), bitShiftLeft(toUInt64(${source === 'callback' ? 1 : 0}), 21)), bitOr(bitShiftLeft(toUInt64(301000), 1), toUInt64(${type === 'unsubscribe' ? 1 : 0})))`;
  const params = { appid: COMPARE_APPID, drift, s: SNAPSHOT, t: from.t0 + 3_600_000, year_ago: now - 365 * DAY_S * 1000 };
  const scene = `['ADD_SCENE_SEARCH', 'ADD_SCENE_QR_CODE', 'ADD_SCENE_PROFILE_CARD'][1 + n % 3]`;
  const qr = `if(n % 3 = 1, concat('qr-', leftPad(toString(1 + n % ${CAMPAIGNS}), 2, '0')), '')`;
  for (const query of [
    `${eventRow('subscribe', 'correction', '{year_ago:Int64} + toInt64(n) * 1000', scene, qr)} FROM (SELECT number AS n FROM numbers({drift:UInt64}))`,
    `${eventRow('unsubscribe', 'callback', '{t:Int64} + toInt64(n) * 1000', `''`, `''`)} FROM (SELECT number AS n FROM numbers({drift:UInt64}) WHERE n % 2 = 0)`,
    `${eventRow('subscribe', 'callback', '{t:Int64} + toInt64(n - {s:UInt64}) * 1000', `'ADD_SCENE_QR_CODE'`, `concat('qr-', leftPad(toString(1 + n % ${CAMPAIGNS}), 2, '0'))`)}
      FROM (SELECT {s:UInt64} + number AS n FROM numbers({drift:UInt64}) WHERE n % 2 = 0)`,
  ]) await client.command({ query: `INSERT INTO ${db}.user_events ${COLUMNS} ${query}`, query_params: params });
  return count(client, `SELECT count() AS n FROM ${db}.user_events WHERE appid = {appid:String}`, params);
}

/** Waits until no merge runs in the bench's database (a store at rest), at most `seconds`; true if it got there. */
async function settle(client: ClickHouseClient, db: string, seconds: number): Promise<boolean> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    if (await count(client, `SELECT count() AS n FROM system.merges WHERE database = {db:String}`, { db }) === 0) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Timing.

interface Timing {
  readonly first: number;
  readonly median: number;
  readonly runs: number;
}

async function timed<T>(runs: number, work: () => Promise<T>): Promise<{ timing: Timing; answer: T }> {
  const seconds: number[] = [];
  let answer: T | undefined;
  for (let i = 0; i < runs; i += 1) {
    const started = performance.now();
    const result = await work();
    seconds.push((performance.now() - started) / 1000);
    answer ??= result;
  }
  const sorted = [...seconds].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  const median = sorted.length % 2 === 1 ? sorted[Math.floor(mid)] ?? 0 : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
  return { timing: { first: seconds[0] ?? 0, median, runs }, answer: answer as T };
}

const fmt = (s: number): string => (s < 10 ? `${s.toFixed(3)} s` : `${s.toFixed(1)} s`);
const fmtTiming = (t: Timing): string => `${fmt(t.median)} (first ${fmt(t.first)}, ${t.runs} runs)`;

interface Row {
  readonly figure: string;
  readonly ours: string;
  readonly raw: string;
  readonly goal: string;
  readonly met: string;
  readonly same: string;
}

function table(rows: readonly Row[]): string {
  const header: Row = { figure: 'figure', ours: 'wxsync (rollup): median (first, runs)', raw: 'raw tables: median (first, runs)', goal: 'goal', met: 'met?', same: 'same answer?' };
  const all = [header, ...rows];
  const keys = ['figure', 'ours', 'raw', 'goal', 'met', 'same'] as const;
  const width = Object.fromEntries(keys.map((k) => [k, Math.max(...all.map((r) => r[k].length))])) as Record<(typeof keys)[number], number>;
  const line = (r: Row): string => `| ${keys.map((k) => r[k].padEnd(width[k])).join(' | ')} |`;
  return [line(header), `|${keys.map((k) => '-'.repeat(width[k] + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const dir = DATA ?? mkdtempSync(path.join(tmpdir(), 'wxsync-bench-report-'));
  const config = loadConfig({ WXSYNC_DATA_DIR: dir, WXSYNC_LOG_LEVEL: 'warn' });
  const db = config.clickhouse.database;
  const logger = createLogger('warn');
  const metaFile = path.join(dir, 'bench-report.json');
  const wanted = { followers: FOLLOWERS, events: EVENTS, snapshot: SNAPSHOT, version: 2 };
  const kept = DATA !== undefined && existsSync(metaFile) ? JSON.parse(readFileSync(metaFile, 'utf8')) as typeof wanted & { now: number; loaded: Loaded } : undefined;
  const reuse = kept !== undefined && kept.followers === wanted.followers && kept.events === wanted.events && kept.snapshot === wanted.snapshot && kept.version === wanted.version;
  const nowArg = arg('--now');
  const now = reuse ? kept.now : nowArg === undefined ? Math.floor(Date.now() / 1000) * 1000 : Date.parse(nowArg);
  const p = plan(now);

  process.stdout.write(`\n-- reports at ${FOLLOWERS.toLocaleString('en-US')} followers, ${EVENTS.toLocaleString('en-US')} events over ${YEARS} years ending ${new Date(now).toISOString()}; `
    + `snapshots of ${SNAPSHOT.toLocaleString('en-US')}; ${RUNS} runs (raw ${RAW_RUNS}); store ${dir}${reuse ? ' (reused)' : ''}\n`);
  process.stdout.write('   a shared 2-core machine: other work runs at the same time, so timings are noisy; compare figures of the same run\n');
  const clickhouse = createClickHouse(config.clickhouse);
  try {
    let rssBefore = resetPeak();
    let started = performance.now();
    let loaded: Loaded;
    if (kept === undefined || !reuse) {
      await migrate(clickhouse, db, logger);
      // The reconcile's tables (followers, follower_keys) are fed by views on every insert into user_events: no
      // measured query reads them, and they would double the loading time. Without them the store is not reused
      // through migrate (which would refill follower_keys from the whole log).
      for (const view of FEEDING_VIEWS) await clickhouse.command({ query: `DROP VIEW IF EXISTS ${db}.${view} SYNC` });
      // Only the refreshes this bench asks for: the hourly fallback schedule could otherwise refresh half-loaded data.
      await clickhouse.command({ query: `ALTER TABLE ${db}.${ROLLUP_VIEWS[0]} MODIFY REFRESH EVERY 1 YEAR` });
      await clickhouse.command({ query: `ALTER TABLE ${db}.${ROLLUP_VIEWS[1]} MODIFY REFRESH EVERY 1 YEAR DEPENDS ON ${db}.${ROLLUP_VIEWS[0]}` });
      await generate(clickhouse, db, p);
      const compareEvents = await generateSnapshots(clickhouse, db, now);
      const loadS = (performance.now() - started) / 1000;
      // A store at rest: the log merged (one part; no duplicates yet to lose), other tables' merges done.
      started = performance.now();
      await clickhouse.command({ query: `OPTIMIZE TABLE ${db}.user_events FINAL` });
      const settled = await settle(clickhouse, db, SETTLE_S);
      const settleS = (performance.now() - started) / 1000;
      started = performance.now();
      const distinct = await count(clickhouse, `SELECT count() AS n FROM ${db}.user_events WHERE appid != {c:String}`, { c: COMPARE_APPID });
      const redelivered = await redeliver(clickhouse, db, p);
      loaded = { loadS, settleS, settled, redeliverS: (performance.now() - started) / 1000, distinct, redelivered, compareEvents };
      writeFileSync(metaFile, JSON.stringify({ ...wanted, now, loaded }));
    } else {
      loaded = kept.loaded;
      await clickhouse.command({ query: `SYSTEM STOP MERGES ${db}.user_events` });
    }
    const parts = await count(clickhouse, `SELECT count() AS n FROM system.parts WHERE database = {db:String} AND table = 'user_events' AND active`, { db });
    let mem = phasePeak();
    const note = reuse ? '(store reused: figures of the run that made it)' : '';
    report('setup: events generated and loaded', loaded.loadS, 's', reuse ? note : `peak RSS ${Math.round(mem.peakMb)} MB`);
    report('  merges after loading (OPTIMIZE … FINAL)', loaded.settleS, 's', loaded.settled ? 'none left running' : `merges still running after ${SETTLE_S} s`);
    report('  events (3 accounts), each id once', loaded.distinct, 'rows', `plus ${loaded.compareEvents.toLocaleString('en-US')} of the compare account`);
    report('  the same ids again (redeliveries)', loaded.redelivered, 'rows', `${(loaded.redeliverS).toFixed(1)} s; then merges of user_events stopped: ${parts} active parts read by every measurement`);

    // The rollups, from scratch over the whole log.
    rssBefore = resetPeak();
    started = performance.now();
    await refreshRollups(clickhouse, db, { timeoutMs: 3_600_000 });
    const refreshS = (performance.now() - started) / 1000;
    mem = phasePeak();
    const spells = await count(clickhouse, `SELECT count() AS n FROM ${db}.follow_spells`);
    const hourly = await count(clickhouse, `SELECT count() AS n FROM ${db}.churn_hourly`);
    const yearAgo = Math.floor(now / 1000) - 365 * DAY_S;
    const hourlyYear = await count(clickhouse, `SELECT count() AS n FROM ${db}.churn_hourly WHERE hour >= toDateTime({t:UInt32}, 'UTC')`, { t: yearAgo });
    report('refreshRollups (follow_spells, churn_hourly)', refreshS, 's', `peak RSS ${Math.round(mem.peakMb)} MB (${Math.round(rssBefore)} MB before, ${Math.round(mem.rssMb)} MB after)`);
    process.stdout.write(`   follow_spells ${spells.toLocaleString('en-US')} rows; churn_hourly ${hourly.toLocaleString('en-US')} rows, ${hourlyYear.toLocaleString('en-US')} of them in the last 365 days\n`);

    const rows: Row[] = [];
    const met = (t: Timing, goal: number): string => (t.median <= goal ? 'yes' : '**no**');

    // report churn: 365 days by day, every account.
    rssBefore = resetPeak();
    const churnRequest: ChurnRequest = { appids: p.accounts.map((a) => a.appid), range: reportRange({ days: '365', by: 'day', tz: TZ }, now) };
    const churn = await timed(RUNS, () => churnReport(clickhouse, db, churnRequest));
    const churnMem = phasePeak();
    resetPeak();
    const rawChurn = await timed(RAW_RUNS, () => rawChurnReport(clickhouse, db, churnRequest, churn.answer.rollupsAsOf));
    const rawChurnMem = phasePeak();
    assert.deepEqual(rawChurn.answer, churn.answer, 'report churn: the rollups and the raw event log disagree');
    const followers = p.accounts.reduce((sum, a) => sum + a.current, 0);
    assert.equal(churn.answer.total.followersEnd, followers, 'report churn: followers at the end differ from the generated followers');
    rows.push({
      figure: `report churn, 365 days by day, ${p.accounts.length} accounts`, ours: fmtTiming(churn.timing), raw: fmtTiming(rawChurn.timing),
      goal: `≤ ${GOALS.churn} s`, met: met(churn.timing, GOALS.churn), same: 'yes (deepEqual)',
    });
    report('report churn: rollup', churn.timing.median, 's', `first ${fmt(churn.timing.first)}; peak RSS ${Math.round(churnMem.peakMb)} MB (${Math.round(rssBefore)} before)`);
    report('report churn: raw event log', rawChurn.timing.median, 's', `first ${fmt(rawChurn.timing.first)}; peak RSS ${Math.round(rawChurnMem.peakMb)} MB`);
    const t = churn.answer.total;
    process.stdout.write(`   365 days: ${t.follows.toLocaleString('en-US')} follows (${t.returningFollows.toLocaleString('en-US')} returning), ${t.unfollows.toLocaleString('en-US')} unfollows, `
      + `followers ${t.followersStart.toLocaleString('en-US')} → ${t.followersEnd.toLocaleString('en-US')}, recovered ${((t.recoveredShare ?? 0) * 100).toFixed(1)}%\n`);

    // report campaigns: the largest account.
    const largest = p.accounts[0];
    assert.ok(largest !== undefined);
    rssBefore = resetPeak();
    const campaignsRequest = { appid: largest.appid, nowMs: now, tz: TZ };
    const campaigns = await timed(RUNS, () => campaignsReport(clickhouse, db, campaignsRequest));
    const campaignsMem = phasePeak();
    resetPeak();
    const rawCampaigns = await timed(RAW_RUNS, () => rawCampaignsReport(clickhouse, db, campaignsRequest, campaigns.answer.rollupsAsOf));
    const rawCampaignsMem = phasePeak();
    assert.deepEqual(rawCampaigns.answer, campaigns.answer, 'report campaigns: the rollups and the raw event log disagree');
    rows.push({
      figure: `report campaigns, ${largest.current.toLocaleString('en-US')}-follower account`, ours: fmtTiming(campaigns.timing), raw: fmtTiming(rawCampaigns.timing),
      goal: `≤ ${GOALS.campaigns} s`, met: met(campaigns.timing, GOALS.campaigns), same: 'yes (deepEqual)',
    });
    report('report campaigns: rollup', campaigns.timing.median, 's', `first ${fmt(campaigns.timing.first)}; peak RSS ${Math.round(campaignsMem.peakMb)} MB (${Math.round(rssBefore)} before)`);
    report('report campaigns: raw event log', rawCampaigns.timing.median, 's', `first ${fmt(rawCampaigns.timing.first)}; peak RSS ${Math.round(rawCampaignsMem.peakMb)} MB`);
    const brought = campaigns.answer.campaigns.reduce((sum, c) => sum + c.brought, 0);
    process.stdout.write(`   ${campaigns.answer.campaigns.length} campaigns brought ${brought.toLocaleString('en-US')} first follows; ${campaigns.answer.cohorts.length} cohort weeks\n`);

    // compare: two complete snapshots of the compare account.
    const history = historyFor(config, clickhouse, logger);
    rssBefore = resetPeak();
    const pair = { from: 'bench-compare-from', to: 'bench-compare-to' };
    const compare = await timed(RUNS, () => history.compare(COMPARE_APPID, pair));
    const compareMem = phasePeak();
    resetPeak();
    const window = { from_ms: Date.parse(compare.answer.window.from), to_ms: Date.parse(compare.answer.window.to) };
    const callbacks = (type: string): string => `SELECT openid FROM ${db}.user_events WHERE appid = {appid:String} AND source = 'callback' AND type = '${type}'
      AND at BETWEEN fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC') AND fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')`;
    const rawCompare = await timed(RAW_RUNS, async () => {
      // Each openid of either snapshot with the snapshots holding it: a difference is in one only.
      const found = await (await clickhouse.query({
        query: `SELECT side, count() AS n,
            countIf(NOT if(side = 'added', openid IN (${callbacks('subscribe')}), openid IN (${callbacks('unsubscribe')}))) AS unexplained
          FROM (
            SELECT openid, if(countIf(snapshot_id = {to:String}) > 0, 'added', 'removed') AS side
            FROM ${db}.snapshot_members
            WHERE appid = {appid:String} AND snapshot_id IN ({from:String}, {to:String})
            GROUP BY openid
            HAVING countIf(snapshot_id = {from:String}) = 0 OR countIf(snapshot_id = {to:String}) = 0
          )
          GROUP BY side`,
        query_params: { appid: COMPARE_APPID, ...window, ...pair }, format: 'JSONEachRow',
      })).json<{ side: string; n: string; unexplained: string }>();
      const side = (name: string): { n: number; unexplained: number } => {
        const row = found.find((r) => r.side === name);
        return { n: Number(row?.n ?? 0), unexplained: Number(row?.unexplained ?? 0) };
      };
      return { added: side('added').n, addedUnexplained: side('added').unexplained, removed: side('removed').n, removedUnexplained: side('removed').unexplained };
    });
    const rawCompareMem = phasePeak();
    const c = compare.answer;
    assert.deepEqual(rawCompare.answer, { added: c.added.total, addedUnexplained: c.added.unexplained, removed: c.removed.total, removedUnexplained: c.removed.unexplained },
      'compare: the comparison and the raw set difference disagree');
    rows.push({
      figure: `compare two ${SNAPSHOT.toLocaleString('en-US')}-member snapshots`, ours: fmtTiming(compare.timing), raw: fmtTiming(rawCompare.timing),
      goal: `≤ ${GOALS.compare} s`, met: met(compare.timing, GOALS.compare), same: 'yes (added, removed, unexplained)',
    });
    report('compare: snapshot history', compare.timing.median, 's', `first ${fmt(compare.timing.first)}; peak RSS ${Math.round(compareMem.peakMb)} MB (${Math.round(rssBefore)} before)`);
    report('compare: raw set difference (GROUP BY openid)', rawCompare.timing.median, 's', `first ${fmt(rawCompare.timing.first)}; peak RSS ${Math.round(rawCompareMem.peakMb)} MB`);
    process.stdout.write(`   ${c.added.total.toLocaleString('en-US')} added (${c.added.unexplained.toLocaleString('en-US')} unexplained), ${c.removed.total.toLocaleString('en-US')} removed (${c.removed.unexplained.toLocaleString('en-US')} unexplained)\n`);

    rows.push({ figure: 'refreshRollups, whole log (after loading)', ours: fmt(refreshS), raw: '—', goal: '— (after consumer writes, paced to a third of the time)', met: '—', same: '—' });
    phasePeak();
    rows.push({ figure: 'peak RSS of this process (chDB inside)', ours: `${Math.round(overallPeakMb).toLocaleString('en-US')} MB`, raw: '', goal: '', met: '', same: '' });
    process.stdout.write(`\n${table(rows)}\n`);
  } finally {
    await clickhouse.close();
    if (DATA === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
