-- The two anti-joins between a snapshot (the truth at T0..T1) and the store, as parameterized views:
--   SELECT * FROM {{db}}.reconcile_missing(appid = 'wx…', snapshot_id = '…', since_ms = 1767225600000)
-- `since_ms` is T0 − δ in epoch ms. Every openid with an event at or after it is newer than the snapshot, so the views
-- flag it `in_window` (the job skips and counts it) instead of leaving it out, which keeps the counts honest.
-- Both sides join on the UInt64 openid key: a String-key anti-join at 10M rows is ~10× slower.
-- Views are CREATE OR REPLACE, so a changed definition reaches an existing store at the next migrate.

-- Followers the store holds as subscribed, for one account. FINAL merges each user's aggregate states in
-- sorting-key order, a streaming merge: GROUP BY hashes every follower and ran ~6× slower at 10M here.
CREATE OR REPLACE VIEW {{db}}.subscribed_keys AS
SELECT openid_key, openid
FROM {{db}}.followers FINAL
WHERE appid = {appid:String} AND finalizeAggregation(subscribed) = 1;

-- The openids of one snapshot. A redelivered page may not be merged away yet, hence DISTINCT on the result.
CREATE OR REPLACE VIEW {{db}}.snapshot_keys AS
SELECT openid_key, openid
FROM {{db}}.snapshot_members
WHERE appid = {appid:String} AND snapshot_id = {snapshot_id:String};

-- Openids with an event at or after `since_ms`, i.e. newer than the snapshot.
CREATE OR REPLACE VIEW {{db}}.window_keys AS
SELECT DISTINCT openid_key
FROM {{db}}.user_events
WHERE appid = {appid:String} AND at >= fromUnixTimestamp64Milli({since_ms:Int64}, 'UTC');

-- LEFT ANTI JOIN rather than NOT IN: with an aggregated side, NOT IN ran ~8× slower at 1M rows here.

-- missing: in the snapshot, not subscribed in the store ⇒ a `subscribe` correction once batchget confirms.
CREATE OR REPLACE VIEW {{db}}.reconcile_missing AS
SELECT DISTINCT
    s.openid_key AS openid_key,
    s.openid AS openid,
    s.openid_key IN (SELECT openid_key FROM {{db}}.window_keys(appid = {appid:String}, since_ms = {since_ms:Int64})) AS in_window
FROM {{db}}.snapshot_keys(appid = {appid:String}, snapshot_id = {snapshot_id:String}) AS s
LEFT ANTI JOIN {{db}}.subscribed_keys(appid = {appid:String}) AS f ON s.openid_key = f.openid_key;

-- stale: subscribed in the store, not in the snapshot ⇒ an `unsubscribe` correction once batchget confirms.
CREATE OR REPLACE VIEW {{db}}.reconcile_stale AS
SELECT
    f.openid_key AS openid_key,
    f.openid AS openid,
    f.openid_key IN (SELECT openid_key FROM {{db}}.window_keys(appid = {appid:String}, since_ms = {since_ms:Int64})) AS in_window
FROM {{db}}.subscribed_keys(appid = {appid:String}) AS f
LEFT ANTI JOIN {{db}}.snapshot_keys(appid = {appid:String}, snapshot_id = {snapshot_id:String}) AS s ON f.openid_key = s.openid_key;

-- One row per reconcile run, refused and dry runs included: what each rule found, skipped and emitted.
CREATE TABLE IF NOT EXISTS {{db}}.reconcile_runs
(
    run_id String,
    appid LowCardinality(String),
    snapshot_id String,
    trigger LowCardinality(String),
    dry_run UInt8,
    status LowCardinality(String),
    reason String,
    started_at DateTime64(3, 'UTC'),
    finished_at DateTime64(3, 'UTC'),
    snapshot_openids UInt64,
    followers UInt64,
    missing UInt64,
    missing_in_window UInt64,
    missing_unconfirmed UInt64,
    missing_emitted UInt64,
    stale UInt64,
    stale_in_window UInt64,
    stale_unconfirmed UInt64,
    stale_emitted UInt64
)
ENGINE = MergeTree
ORDER BY (appid, started_at, run_id);
