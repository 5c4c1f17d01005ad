-- The append-only event log: callbacks and corrections. Redelivered records carry the same id, so a
-- ReplacingMergeTree keyed by id keeps one row per event; read it with FINAL for exact counts.
-- `ord` orders events of one user: `at` in ms, then callbacks before corrections, then the type, then
-- bits of the id, so the latest event wins deterministically whatever order records arrive in.
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
PARTITION BY toYYYYMM(at)
ORDER BY (appid, openid_key, id);
