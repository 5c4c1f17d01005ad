-- The consumer writes one row per snapshot page with its openids as an array; ClickHouse expands it into
-- snapshot_members. Parsing one array per page instead of one TSV row per openid (each repeating appid,
-- snapshot_id and page) cut the insert's CPU about threefold, and the store decides the end-to-end rate.
-- Null: nothing is stored here, the view's target is the only copy. sql/010 upgrades a store created before
-- fetched_at (a CREATE … IF NOT EXISTS leaves an existing table or view as it is).
CREATE TABLE IF NOT EXISTS {{db}}.snapshot_member_pages
(
    appid LowCardinality(String),
    snapshot_id String,
    page UInt32,
    fetched_at DateTime64(3, 'UTC'),
    openids Array(String)
)
ENGINE = Null;

-- openid_key is left to snapshot_members' DEFAULT, so the key is computed in one place however rows arrive.
-- Guarded on the target having fetched_at: a store whose upgrade (sql/010) died with this view dropped and the
-- old snapshot_members still live gets the view from sql/010, after the swap.
-- when: SELECT count() FROM system.columns WHERE database = '{{db}}' AND table = 'snapshot_members' AND name = 'fetched_at'
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
