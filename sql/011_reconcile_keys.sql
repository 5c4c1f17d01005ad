-- The reconcile's hot path on UInt64 keys only (replacing the String-carrying anti-join views of 007).
--
-- follower_keys: each user's newest event order, one narrow row per (appid, openid_key) once merged. `ord`
-- (consumers/clickhouse/route.ts eventOrder) puts the type in its lowest bit (1 = unsubscribe), so the newest
-- event's ord alone says whether the user follows: max(ord) is the latest event, bit 0 its type. A plain max
-- state merges several times faster under FINAL than followers' argMax states and String key.
CREATE TABLE IF NOT EXISTS {{db}}.follower_keys
(
    appid LowCardinality(String),
    openid_key UInt64,
    last_ord SimpleAggregateFunction(max, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (appid, openid_key);

-- An existing store fills it once from its event log, before the view below exists (max is idempotent, so a
-- second fill would be harmless too).
-- when: SELECT count() = 0 FROM system.tables WHERE database = '{{db}}' AND name = 'follower_keys_mv'
INSERT INTO {{db}}.follower_keys SELECT appid, openid_key, max(ord) FROM {{db}}.user_events GROUP BY appid, openid_key;

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.follower_keys_mv TO {{db}}.follower_keys AS
SELECT appid, openid_key, ord AS last_ord
FROM {{db}}.user_events;

-- The two String-key anti-join views this file replaces (007 defined them before).
DROP VIEW IF EXISTS {{db}}.reconcile_missing;
DROP VIEW IF EXISTS {{db}}.reconcile_stale;

-- Every difference between one snapshot and the store, in one pass over both key sets:
--   missing: in the snapshot, not following in the store (no event, or the newest is an unsubscribe);
--   stale:   following in the store, not in the snapshot.
-- follower_keys is read as stored, without FINAL (which cost more than the join itself at 10M, even on one
-- part): a user may then have several rows, one per unmerged part. The row with the newest order always
-- meets its condition when the user truly differs, so no difference is lost; an older row may add a false
-- one, which reconcile_openids drops once it has each candidate's newest order. An openid on two pages (the
-- list shifted while paging) or a redelivered page yields one row: DISTINCT over the few differences, not
-- over the whole snapshot. Both sides arrive sorted by openid_key (each table's sort key), so a sorting merge
-- join streams them; a hash join of 10M keys was ~2.5× slower here.
CREATE OR REPLACE VIEW {{db}}.reconcile_diff AS
SELECT DISTINCT
    if(s.in_snapshot = 1, s.openid_key, f.openid_key) AS openid_key,
    if(s.in_snapshot = 1, 'missing', 'stale') AS rule
FROM (
    SELECT openid_key, toUInt8(1) AS in_snapshot
    FROM {{db}}.snapshot_keys(appid = {appid:String}, snapshot_id = {snapshot_id:String})
) AS s
FULL OUTER JOIN (
    SELECT openid_key, last_ord FROM {{db}}.follower_keys WHERE appid = {appid:String}
) AS f ON s.openid_key = f.openid_key
WHERE (s.in_snapshot = 1 AND (f.last_ord = 0 OR bitAnd(f.last_ord, 1) = 1))
   OR (s.in_snapshot = 0 AND f.last_ord != 0 AND bitAnd(f.last_ord, 1) = 0)
SETTINGS join_algorithm = 'full_sorting_merge';

-- A run's work tables, one partition per run, dropped when the run ends (the TTL clears what a crash left).
-- reconcile_keys holds the possible differences and the window users (rule 'live': a window user the
-- snapshot agrees on); reconcile_candidates the true ones with their openids and newest orders, numbered, so
-- the job reads them page by page in bounded memory whatever their count.
CREATE TABLE IF NOT EXISTS {{db}}.reconcile_keys
(
    run_id String,
    rule LowCardinality(String),
    openid_key UInt64,
    in_window UInt8,
    created_at DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY run_id
ORDER BY (run_id, openid_key)
TTL created_at + INTERVAL 1 DAY;

CREATE TABLE IF NOT EXISTS {{db}}.reconcile_candidates
(
    run_id String,
    seq UInt64,
    rule LowCardinality(String),
    openid String,
    in_window UInt8,
    store_ord UInt64,
    created_at DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY run_id
ORDER BY (run_id, seq)
TTL created_at + INTERVAL 1 DAY;

-- The candidates of one run: each key's newest order in the store (over every unmerged row), the possible
-- differences that are not true ones dropped (a window user stays, as `live`: it is confirmed live all the
-- same), and the openids: from the snapshot for the missing (the store may never have seen them), from the
-- store for the others. Lookups over the few candidates, so the comparison itself carries no String.
CREATE OR REPLACE VIEW {{db}}.reconcile_openids AS
SELECT
    if(differs, k.rule, 'live') AS rule,
    o.openid AS openid,
    k.in_window AS in_window,
    n.store_ord AS store_ord,
    (k.rule = 'missing') = (n.store_ord = 0 OR bitAnd(n.store_ord, 1) = 1) AS differs
FROM {{db}}.reconcile_keys AS k
LEFT JOIN (
    SELECT openid_key, max(last_ord) AS store_ord FROM {{db}}.follower_keys
    WHERE appid = {appid:String}
      AND openid_key IN (SELECT openid_key FROM {{db}}.reconcile_keys WHERE run_id = {run_id:String})
    GROUP BY openid_key
) AS n ON k.openid_key = n.openid_key
INNER JOIN (
    SELECT openid_key, any(openid) AS openid FROM {{db}}.snapshot_members
    WHERE appid = {appid:String} AND snapshot_id = {snapshot_id:String}
      AND openid_key IN (SELECT openid_key FROM {{db}}.reconcile_keys WHERE run_id = {run_id:String} AND rule = 'missing')
    GROUP BY openid_key
    UNION ALL
    SELECT openid_key, any(openid) AS openid FROM {{db}}.followers
    WHERE appid = {appid:String}
      AND openid_key IN (SELECT openid_key FROM {{db}}.reconcile_keys WHERE run_id = {run_id:String} AND rule != 'missing')
    GROUP BY openid_key
) AS o ON k.openid_key = o.openid_key
WHERE k.run_id = {run_id:String} AND (differs OR k.in_window = 1)
SETTINGS join_use_nulls = 0;

-- What each run confirmed live: window users checked, corrected, skipped (the answer could not be ordered
-- after the store's newest event); differences confirmed but not orderable; corrections at a fallback time
-- (subscribe_time absent or outside the contract).
ALTER TABLE {{db}}.reconcile_runs
    ADD COLUMN IF NOT EXISTS live_checked UInt64 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS live_emitted UInt64 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS live_skipped UInt64 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS missing_skipped UInt64 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS stale_skipped UInt64 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS fallback_times UInt64 DEFAULT 0;
