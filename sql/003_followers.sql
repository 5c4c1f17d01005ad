-- Current state per (appid, openid), folded from user_events by the materialized view below. Every
-- column is an idempotent, order-independent aggregate (argMax by ord, max), so a redelivered or late
-- event can never move the state backwards: the latest `at` wins.
CREATE TABLE IF NOT EXISTS {{db}}.followers
(
    appid LowCardinality(String),
    openid_key UInt64,
    openid String,
    subscribed AggregateFunction(argMax, UInt8, UInt64),
    last_source AggregateFunction(argMax, Enum8('callback' = 1, 'correction' = 2), UInt64),
    scene AggregateFunction(argMax, String, UInt64),
    qr_scene AggregateFunction(argMax, String, UInt64),
    subscribe_time SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    unsubscribe_time SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    last_event_time SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    last_ord SimpleAggregateFunction(max, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (appid, openid_key, openid);

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.followers_mv TO {{db}}.followers AS
SELECT
    appid,
    openid_key,
    openid,
    argMaxState(toUInt8(type = 'subscribe'), ord) AS subscribed,
    argMaxState(source, ord) AS last_source,
    -- Scenes describe the latest subscribe, so unsubscribes rank below every subscribe.
    argMaxState(scene, if(type = 'subscribe', ord, 0)) AS scene,
    argMaxState(qr_scene, if(type = 'subscribe', ord, 0)) AS qr_scene,
    max(if(type = 'subscribe', at, toDateTime64(0, 3, 'UTC'))) AS subscribe_time,
    max(if(type = 'unsubscribe', at, toDateTime64(0, 3, 'UTC'))) AS unsubscribe_time,
    max(at) AS last_event_time,
    max(ord) AS last_ord
FROM {{db}}.user_events
GROUP BY appid, openid_key, openid;

-- The readable form of `followers`: one row per user that ever had an event.
CREATE VIEW IF NOT EXISTS {{db}}.followers_current AS
SELECT
    appid,
    openid_key,
    openid,
    argMaxMerge(subscribed) = 1 AS subscribed,
    argMaxMerge(last_source) AS last_source,
    argMaxMerge(scene) AS scene,
    argMaxMerge(qr_scene) AS qr_scene,
    max(subscribe_time) AS subscribe_time,
    max(unsubscribe_time) AS unsubscribe_time,
    max(last_event_time) AS last_event_time
FROM {{db}}.followers
GROUP BY appid, openid_key, openid;
