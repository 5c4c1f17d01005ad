-- Snapshot history: retention of snapshot data, the comparison of two snapshots, and the record of comparisons
-- (producers/reconcile/compare.ts).

-- snapshot_members gets one partition per snapshot, so dropping a snapshot is ALTER … DROP PARTITION: a metadata
-- operation that removes whole parts, where a DELETE would rewrite every part holding the snapshot's rows (and,
-- without partitions, merges mix snapshots in one part). Rebuilt in place like sql/009 and sql/010: built beside the
-- live table, copied, swapped, the view re-created, the old table dropped, each step guarded on the live table
-- being unpartitioned, so a fresh store (created unpartitioned by sql/005, empty) passes through in a few statements
-- and a start-up that died halfway redoes what it had not finished.
-- One INSERT block may touch at most 100 partitions by default; the copy holds every snapshot of the store, and a
-- consumer batch replayed from a backlog can carry pages of hundreds of small snapshots (the consumer's insert lifts
-- the limit too: consumers/clickhouse/sink.ts). Past the limit ClickHouse refuses the block outright, every time.

-- when: SELECT count() FROM system.tables WHERE database = '{{db}}' AND name = 'snapshot_members' AND partition_key = ''
DROP TABLE IF EXISTS {{db}}.snapshot_members_by_snapshot SYNC;

-- when: SELECT count() FROM system.tables WHERE database = '{{db}}' AND name = 'snapshot_members' AND partition_key = ''
CREATE TABLE {{db}}.snapshot_members_by_snapshot
(
    appid LowCardinality(String),
    snapshot_id String,
    openid_key UInt64 DEFAULT sipHash64(openid),
    openid String,
    page UInt32,
    fetched_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY (appid, snapshot_id)
ORDER BY (appid, snapshot_id, openid_key, openid, page, fetched_at);

-- when: SELECT count() FROM system.tables WHERE database = '{{db}}' AND name = 'snapshot_members' AND partition_key = ''
INSERT INTO {{db}}.snapshot_members_by_snapshot (appid, snapshot_id, openid_key, openid, page, fetched_at)
SELECT appid, snapshot_id, openid_key, openid, page, fetched_at
FROM {{db}}.snapshot_members
SETTINGS max_partitions_per_insert_block = 0;

-- The view goes before the swap, so it never writes to the old table whatever a ClickHouse version does with a
-- view's target across EXCHANGE.
-- when: SELECT count() FROM system.tables WHERE database = '{{db}}' AND name = 'snapshot_members' AND partition_key = ''
DROP VIEW IF EXISTS {{db}}.snapshot_member_pages_mv SYNC;

-- when: SELECT count() FROM system.tables WHERE database = '{{db}}' AND name = 'snapshot_members' AND partition_key = ''
EXCHANGE TABLES {{db}}.snapshot_members AND {{db}}.snapshot_members_by_snapshot;

-- The definition of sql/008 and sql/010, unguarded: after the swap, or after a start-up that died between the drop and here.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.snapshot_member_pages_mv TO {{db}}.snapshot_members
(
    appid LowCardinality(String),
    snapshot_id String,
    openid String,
    page UInt32,
    fetched_at DateTime64(3, 'UTC')
)
AS SELECT appid, snapshot_id, openid, page, fetched_at
FROM {{db}}.snapshot_member_pages
ARRAY JOIN openids AS openid;

-- After the swap this is the old table, every row of which is in the new one.
DROP TABLE IF EXISTS {{db}}.snapshot_members_by_snapshot SYNC;

-- Snapshots whose members were dropped by retention. A snapshot is marked here before its partition goes, so a
-- comparison that finds its snapshot marked after reading knows it may have read a partial one. The `snapshots`
-- rows of a dropped snapshot stay: `wxsync snapshots` still lists it, as dropped.
CREATE TABLE IF NOT EXISTS {{db}}.snapshot_drops
(
    appid LowCardinality(String),
    snapshot_id String,
    dropped_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(dropped_at)
ORDER BY (appid, snapshot_id);

-- One row per recorded comparison of two complete snapshots (after each reconcile, the snapshot reconciled against
-- the complete one before it), kept after the snapshots' data is dropped. A comparison recorded again replaces the
-- earlier row (the newest `computed_at` wins). `by_scene` and `by_campaign` hold the differences grouped by the
-- scene and the QR campaign (qr_scene) of the subscribe concerned ('' = unknown).
CREATE TABLE IF NOT EXISTS {{db}}.snapshot_comparisons
(
    appid LowCardinality(String),
    from_snapshot_id String,
    to_snapshot_id String,
    from_started_at DateTime64(3, 'UTC'),
    to_ended_at DateTime64(3, 'UTC'),
    -- The explanation window: a callback with `at` inside it explains a difference.
    window_from DateTime64(3, 'UTC'),
    window_to DateTime64(3, 'UTC'),
    added UInt64,
    added_unexplained UInt64,
    removed UInt64,
    removed_unexplained UInt64,
    by_scene Array(Tuple(key String, added UInt64, added_unexplained UInt64, removed UInt64, removed_unexplained UInt64)),
    by_campaign Array(Tuple(key String, added UInt64, added_unexplained UInt64, removed UInt64, removed_unexplained UInt64)),
    computed_at DateTime64(3, 'UTC'),
    duration_ms UInt64
)
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (appid, to_snapshot_id, from_snapshot_id);

-- A comparison's work table: the keys that differ, one partition per comparison, dropped when it ends (the TTL
-- clears what a crash left). Writing the differences once lets the lookups below read them by key, where
-- recomputing the join for each lookup would double the cost.
CREATE TABLE IF NOT EXISTS {{db}}.snapshot_compare_keys
(
    run_id String,
    side Enum8('added' = 1, 'removed' = 2),
    openid_key UInt64,
    created_at DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY run_id
ORDER BY (run_id, openid_key)
TTL created_at + INTERVAL 1 DAY;

-- The keys in one snapshot and not the other, in one pass over both key sets: a sorting merge join of two streams
-- that arrive sorted by openid_key (each snapshot a partition, read in its sort key order), as in sql/011's
-- reconcile_diff. Each page's latest fetch alone (snapshot_keys). An openid on two pages (the list shifted while
-- paging) yields one row: DISTINCT over the differences, not over the snapshots.
CREATE OR REPLACE VIEW {{db}}.snapshot_diff AS
SELECT DISTINCT
    if(f.in_from = 1, 'removed', 'added') AS side,
    if(f.in_from = 1, f.openid_key, t.openid_key) AS openid_key
FROM (
    SELECT openid_key, toUInt8(1) AS in_from
    FROM {{db}}.snapshot_keys(appid = {appid:String}, snapshot_id = {from_id:String})
) AS f
FULL OUTER JOIN (
    SELECT openid_key, toUInt8(1) AS in_to
    FROM {{db}}.snapshot_keys(appid = {appid:String}, snapshot_id = {to_id:String})
) AS t ON f.openid_key = t.openid_key
WHERE f.in_from = 0 OR t.in_to = 0
SETTINGS join_algorithm = 'full_sorting_merge';

-- Each difference of one comparison with what the event log says about it, by lookups over its keys alone:
--   explained: a callback (never a correction) of the matching type (subscribe for an added user, unsubscribe for a
--     removed one) with `at` inside [window_from_ms, window_to_ms];
--   scene, campaign: of the user's latest subscribe up to window_to_ms (for an added user the subscribe that
--     brought them, a callback or a reconcile's correction carrying batchget's subscribe_scene and qr_scene; for a
--     removed user the subscribe they left), '' when the store has none.
-- user_events is read as stored, without FINAL: max and argMax give the same answer over a redelivered duplicate.
CREATE OR REPLACE VIEW {{db}}.snapshot_compare_details AS
SELECT
    k.side AS side,
    k.openid_key AS openid_key,
    if(k.side = 'added', e.subscribe_callback, e.unsubscribe_callback) AS explained,
    e.scene AS scene,
    e.campaign AS campaign
FROM {{db}}.snapshot_compare_keys AS k
LEFT JOIN (
    SELECT
        openid_key,
        max(source = 'callback' AND type = 'subscribe' AND at BETWEEN window_from AND window_to) AS subscribe_callback,
        max(source = 'callback' AND type = 'unsubscribe' AND at BETWEEN window_from AND window_to) AS unsubscribe_callback,
        argMaxIf(scene, ord, type = 'subscribe' AND at <= window_to) AS scene,
        argMaxIf(qr_scene, ord, type = 'subscribe' AND at <= window_to) AS campaign
    FROM (
        SELECT *, fromUnixTimestamp64Milli({window_from_ms:Int64}, 'UTC') AS window_from, fromUnixTimestamp64Milli({window_to_ms:Int64}, 'UTC') AS window_to
        FROM {{db}}.user_events
        WHERE appid = {appid:String}
          AND openid_key IN (SELECT openid_key FROM {{db}}.snapshot_compare_keys WHERE run_id = {run_id:String})
    )
    GROUP BY openid_key
) AS e ON k.openid_key = e.openid_key
WHERE k.run_id = {run_id:String}
SETTINGS join_use_nulls = 0;

-- The differences of one side with their openids (from the snapshot that holds them: `to` for the added, `from` for
-- the removed), for listing. The openid of a key is the same string in every row, so any() of it.
CREATE OR REPLACE VIEW {{db}}.snapshot_compare_list AS
SELECT o.openid AS openid, d.side AS side, d.explained AS explained, d.scene AS scene, d.campaign AS campaign
FROM {{db}}.snapshot_compare_details(
    appid = {appid:String}, run_id = {run_id:String}, window_from_ms = {window_from_ms:Int64}, window_to_ms = {window_to_ms:Int64}
) AS d
INNER JOIN (
    SELECT openid_key, any(openid) AS openid
    FROM {{db}}.snapshot_members
    WHERE appid = {appid:String} AND snapshot_id = {snapshot_id:String}
      AND openid_key IN (SELECT openid_key FROM {{db}}.snapshot_compare_keys WHERE run_id = {run_id:String} AND side = {side:String})
    GROUP BY openid_key
) AS o ON d.openid_key = o.openid_key
WHERE d.side = {side:String};
