-- Churn rollups: what `wxsync report churn` and `wxsync report campaigns` read.
--
-- Exact by construction: each refresh recomputes both tables from user_events as it stands, so a redelivered
-- event, a duplicate push, a late push or a correction dated in the past can never leave a count off by one the
-- way an incrementally maintained counter can. Refreshable materialized views replace their target atomically, so a
-- report reads one whole refresh or the one before it. `wxsync run` asks for a refresh after the consumer writes
-- (reports/refresh.ts RollupRefresher paces them) and `wxsync report ... --fresh` asks for one; the hourly
-- schedule is the fallback for a store no consumer writes to. Reports say which refresh they read.
--
-- A user's state is the type of their latest event (followers' argMax by ord), so a follow is a subscribe whose
-- previous event in `ord` order is not a subscribe, and an unfollow is an unsubscribe whose previous event is a
-- subscribe. Redundant events (the same id twice before a merge, a correction that agrees with a push) change no
-- state and count nothing. The transitions of a user therefore alternate, starting with a follow: each follow and
-- the unfollow after it, if any, make one spell.

-- One row per follow spell.
CREATE TABLE IF NOT EXISTS {{db}}.follow_spells
(
    appid LowCardinality(String),
    openid_key UInt64,
    followed_at DateTime64(3, 'UTC'),
    -- The user followed before in the store's history (WeChat does not say whether a new follower ever
    -- followed before wxsync began watching).
    returning UInt8,
    follow_source Enum8('callback' = 1, 'correction' = 2),
    -- Of the follow: the subscribe scene and the QR campaign (qr_scene_str or the qrscene_ key), '' when unknown.
    scene LowCardinality(String),
    qr_scene String,
    unfollowed UInt8,
    -- 1970 while still following.
    unfollowed_at DateTime64(3, 'UTC'),
    unfollow_source Enum8('none' = 0, 'callback' = 1, 'correction' = 2)
)
ENGINE = MergeTree
ORDER BY (appid, followed_at);

-- Grouping a user's events in storage order (appid, openid_key) streams (optimize_aggregation_in_order), so
-- memory holds one user's events at a time, not the log.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.follow_spells_refresh
REFRESH EVERY 1 HOUR
TO {{db}}.follow_spells
AS
SELECT
    appid,
    openid_key,
    t[k].2 AS followed_at,
    toUInt8(k > 1) AS returning,
    t[k].3 AS follow_source,
    t[k].4 AS scene,
    t[k].5 AS qr_scene,
    toUInt8(k < length(t)) AS unfollowed,
    if(k < length(t), t[k + 1].2, toDateTime64(0, 3, 'UTC')) AS unfollowed_at,
    if(k < length(t), CAST(toString(t[k + 1].3), 'Enum8(\'none\' = 0, \'callback\' = 1, \'correction\' = 2)'), 'none') AS unfollow_source
FROM
(
    SELECT
        appid,
        openid_key,
        -- (is unsubscribe, at, source, scene, qr_scene) of each transition, in order: an event whose type differs
        -- from the one before it (before the first, the user did not follow).
        arrayMap(e -> (e.2, e.3, e.4, e.5, e.6),
            arrayFilter((e, prev, i) -> e.2 != if(i = 1, 1, prev.2), events, arrayPushFront(arrayPopBack(events), events[1]), arrayEnumerate(events))
        ) AS t
    FROM
    (
        SELECT
            appid,
            openid_key,
            arraySort(e -> e.1, groupArray((ord, toUInt8(type = 'unsubscribe'), at, source, scene, qr_scene))) AS events
        FROM {{db}}.user_events
        GROUP BY appid, openid_key
    )
)
ARRAY JOIN arrayFilter(i -> i % 2 = 1, arrayEnumerate(t)) AS k
SETTINGS optimize_aggregation_in_order = 1;

-- Follows and unfollows per UTC hour: every hour of a whole-hour time zone (Beijing's included) is a whole
-- number of these, so a report in any such zone sums them.
CREATE TABLE IF NOT EXISTS {{db}}.churn_hourly
(
    appid LowCardinality(String),
    hour DateTime('UTC'),
    kind Enum8('first' = 1, 'returning' = 2, 'unfollow' = 3),
    source Enum8('callback' = 1, 'correction' = 2),
    scene LowCardinality(String),
    qr_scene String,
    n UInt64
)
ENGINE = MergeTree
ORDER BY (appid, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.churn_hourly_refresh
REFRESH EVERY 1 HOUR DEPENDS ON {{db}}.follow_spells_refresh
TO {{db}}.churn_hourly
AS
SELECT appid, hour, kind, source, scene, qr_scene, count() AS n
FROM
(
    SELECT appid, toStartOfHour(followed_at) AS hour, if(returning = 1, 'returning', 'first') AS kind, toString(follow_source) AS source, scene, qr_scene
    FROM {{db}}.follow_spells
    UNION ALL
    SELECT appid, toStartOfHour(unfollowed_at) AS hour, 'unfollow' AS kind, toString(unfollow_source) AS source, scene, qr_scene
    FROM {{db}}.follow_spells
    WHERE unfollowed = 1
)
GROUP BY appid, hour, kind, source, scene, qr_scene;

-- churn_hourly without scene and campaign: what a report without --split reads (tens of thousands of rows for
-- years of an account, where churn_hourly holds one per campaign and scene as well).
CREATE TABLE IF NOT EXISTS {{db}}.churn_hourly_totals
(
    appid LowCardinality(String),
    hour DateTime('UTC'),
    kind Enum8('first' = 1, 'returning' = 2, 'unfollow' = 3),
    source Enum8('callback' = 1, 'correction' = 2),
    n UInt64
)
ENGINE = MergeTree
ORDER BY (appid, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.churn_hourly_totals_refresh
REFRESH EVERY 1 HOUR DEPENDS ON {{db}}.churn_hourly_refresh
TO {{db}}.churn_hourly_totals
AS
SELECT appid, hour, kind, source, sum(n) AS n
FROM {{db}}.churn_hourly
GROUP BY appid, hour, kind, source;
