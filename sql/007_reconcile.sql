-- The building blocks of reconciliation, as parameterized views (the comparison itself is in 011):
--   SELECT * FROM {{db}}.window_keys(appid = 'wx…', since_ms = 1767225600000)
-- `since_ms` is T0 − δ in epoch ms: an openid with an event at or after it is newer than the snapshot.
-- Views are CREATE OR REPLACE, so a changed definition reaches an existing store at the next migrate.

-- Followers the store holds as subscribed, for one account (what `wxsync followers` lists). FINAL merges each user's aggregate states in
-- sorting-key order, a streaming merge: GROUP BY hashes every follower and ran ~6× slower at 10M here.
CREATE OR REPLACE VIEW {{db}}.subscribed_keys AS
SELECT openid_key, openid
FROM {{db}}.followers FINAL
WHERE appid = {appid:String} AND finalizeAggregation(subscribed) = 1;

-- The openids of one snapshot: of each page, the rows of its latest fetch alone (a snapshot resumed after a crash
-- fetches the pages past its checkpoint again, and WeChat may answer them differently), taken from the page's
-- row in `snapshots`. A redelivered page may not be merged away yet, so readers deduplicate what they need to.
CREATE OR REPLACE VIEW {{db}}.snapshot_keys AS
SELECT openid_key, openid
FROM {{db}}.snapshot_members
WHERE appid = {appid:String} AND snapshot_id = {snapshot_id:String}
  AND (page, fetched_at) IN (
    SELECT page, max(fetched_at) FROM {{db}}.snapshots
    WHERE appid = {appid:String} AND snapshot_id = {snapshot_id:String} AND kind = 'page'
    GROUP BY page
  );

-- Openids with an event at or after `since_ms`, i.e. newer than the snapshot.
CREATE OR REPLACE VIEW {{db}}.window_keys AS
SELECT DISTINCT openid_key
FROM {{db}}.user_events
WHERE appid = {appid:String} AND at >= fromUnixTimestamp64Milli({since_ms:Int64}, 'UTC');

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
