-- The openids of each snapshot, one row each, joined to followers on the UInt64 key (a String-key
-- anti-join at 10M rows is an order of magnitude slower). A redelivered page replaces its own rows.
CREATE TABLE IF NOT EXISTS {{db}}.snapshot_members
(
    appid LowCardinality(String),
    snapshot_id String,
    openid_key UInt64 DEFAULT sipHash64(openid),
    openid String,
    page UInt32
)
ENGINE = ReplacingMergeTree
ORDER BY (appid, snapshot_id, openid_key, openid);
