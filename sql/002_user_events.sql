-- The append-only event log: callbacks and corrections. Redelivered records carry the same id, so a
-- ReplacingMergeTree keyed by id keeps one row per event; read it with FINAL for exact counts.
-- `ord` orders events of one user: `at` in ms, then callbacks before corrections, then arrival, then the
-- type (consumers/clickhouse/route.ts eventOrder), so the latest event wins whatever order records arrive in.
-- No PARTITION BY, on purpose:
-- * ReplacingMergeTree collapses duplicates only within a partition, and a correction re-emitted by a later
--   reconcile keeps its id but may carry another `at`: any key that depends on `at` would keep both copies.
-- * One INSERT may hold events of any age (a first reconcile emits corrections at followers' real subscribe
--   times, back to 2013), and ClickHouse refuses a block spanning more than 100 partitions outright.
-- * Nothing needs one: the log is never dropped by time, and reads go by (appid, openid_key), the sort key.
-- sql/009 rebuilds a store created with the earlier monthly partitioning.
CREATE TABLE IF NOT EXISTS {{db}}.user_events
(
    id String,
    appid LowCardinality(String),
    openid String,
    openid_key UInt64 DEFAULT sipHash64(openid),
    type Enum8('subscribe' = 1, 'unsubscribe' = 2),
    at DateTime64(3, 'UTC'),
    source Enum8('callback' = 1, 'correction' = 2),
    scene String DEFAULT '',
    qr_scene String DEFAULT '',
    ticket String DEFAULT '',
    received_at DateTime64(3, 'UTC'),
    correction_snapshot_id String DEFAULT '',
    correction_rule LowCardinality(String) DEFAULT '',
    ord UInt64,
    loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (appid, openid_key, id);
