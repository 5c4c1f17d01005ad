-- The consumer writes one row per snapshot page with its openids as an array; ClickHouse expands it into
-- snapshot_members. Parsing one array per page instead of one TSV row per openid (each repeating appid,
-- snapshot_id and page) cut the insert's CPU about threefold, and the store decides the end-to-end rate.
-- Null: nothing is stored here, the view's target is the only copy.
CREATE TABLE IF NOT EXISTS {{db}}.snapshot_member_pages
(
    appid LowCardinality(String),
    snapshot_id String,
    page UInt32,
    openids Array(String)
)
ENGINE = Null;

-- openid_key is left to snapshot_members' DEFAULT, so the key is computed in one place however rows arrive.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.snapshot_member_pages_mv TO {{db}}.snapshot_members
(
    appid LowCardinality(String),
    snapshot_id String,
    openid String,
    page UInt32
)
AS SELECT appid, snapshot_id, openid, page
FROM {{db}}.snapshot_member_pages
ARRAY JOIN openids AS openid;
