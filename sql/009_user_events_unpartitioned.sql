-- Upgrades a store whose user_events was created PARTITION BY toYYYYMM(at) (see sql/002 for why it no longer
-- is): a new table is built beside it, every row copied, the two swapped, the old one dropped. Each step is
-- guarded on the live table still being partitioned, so a fresh store skips them all, and a start-up that died
-- halfway through simply redoes the unfinished steps at the next migrate (the copy target is rebuilt from
-- scratch until the swap, and the swap is the last step that needs the old table to be live).
-- The views reading user_events are dropped just before the swap and created again after it, so they read the
-- new table whatever a ClickHouse version does with a view's source across EXCHANGE. The
-- copy itself does not pass through that view (it writes the new table before it is user_events), so nothing
-- is folded twice; a fold twice would be harmless anyway, every state of followers being idempotent.
-- Like every migration this runs at start-up before any role writes. With a ClickHouse server shared by
-- several processes, stop the consumers of older versions while the first upgraded process starts.

-- when: SELECT count() FROM system.tables WHERE database = '{{db}}' AND name = 'user_events' AND partition_key != ''
DROP TABLE IF EXISTS {{db}}.user_events_unpartitioned SYNC;

-- when: SELECT count() FROM system.tables WHERE database = '{{db}}' AND name = 'user_events' AND partition_key != ''
CREATE TABLE {{db}}.user_events_unpartitioned
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

-- Every row as stored, duplicates not yet merged away included; loaded_at is kept, not reset.
-- when: SELECT count() FROM system.tables WHERE database = '{{db}}' AND name = 'user_events' AND partition_key != ''
INSERT INTO {{db}}.user_events_unpartitioned
    (id, appid, openid, openid_key, type, at, source, scene, qr_scene, ticket, received_at, correction_snapshot_id, correction_rule, ord, loaded_at)
SELECT id, appid, openid, openid_key, type, at, source, scene, qr_scene, ticket, received_at, correction_snapshot_id, correction_rule, ord, loaded_at
FROM {{db}}.user_events;

-- when: SELECT count() FROM system.tables WHERE database = '{{db}}' AND name = 'user_events' AND partition_key != ''
DROP VIEW IF EXISTS {{db}}.followers_mv SYNC;

-- Likewise every other view reading user_events: a store that already has sql/011's follower_keys_mv (one made
-- between the two changes) gets it back from sql/011, which refills follower_keys whenever the view is missing.
-- when: SELECT count() FROM system.tables WHERE database = '{{db}}' AND name = 'user_events' AND partition_key != ''
DROP VIEW IF EXISTS {{db}}.follower_keys_mv SYNC;

-- when: SELECT count() FROM system.tables WHERE database = '{{db}}' AND name = 'user_events' AND partition_key != ''
EXCHANGE TABLES {{db}}.user_events AND {{db}}.user_events_unpartitioned;

-- The definition of sql/003, unguarded: after the swap, or after a start-up that died between the drop and here.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.followers_mv TO {{db}}.followers AS
SELECT
    appid,
    openid_key,
    openid,
    argMaxState(toUInt8(type = 'subscribe'), ord) AS subscribed,
    argMaxState(source, ord) AS last_source,
    argMaxState(scene, if(type = 'subscribe', ord, 0)) AS scene,
    argMaxState(qr_scene, if(type = 'subscribe', ord, 0)) AS qr_scene,
    max(if(type = 'subscribe', at, toDateTime64(0, 3, 'UTC'))) AS subscribe_time,
    max(if(type = 'unsubscribe', at, toDateTime64(0, 3, 'UTC'))) AS unsubscribe_time,
    max(at) AS last_event_time,
    max(ord) AS last_ord
FROM {{db}}.user_events
GROUP BY appid, openid_key, openid;

-- After the swap this is the old, partitioned table, every row of which is in the new one.
DROP TABLE IF EXISTS {{db}}.user_events_unpartitioned SYNC;
