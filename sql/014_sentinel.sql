-- The drift sentinel (producers/snapshot/sentinel.ts): one row per check of an account's live follower count
-- against the store, and a later row with the outcome once the snapshot it started is reconciled. The alerts
-- read the newest row per account to say what was found and what was done.
--   result:  equal | drift | failed (no figure claimed) | outcome (the row that reports a started snapshot's end)
--   action:  '' | 'snapshot <id> started' | 'snapshot refused: <why>' | …
CREATE TABLE IF NOT EXISTS {{db}}.sentinel_checks
(
    appid LowCardinality(String),
    checked_at DateTime64(3, 'UTC'),
    result LowCardinality(String),
    wechat_total UInt64,
    store_count UInt64,
    in_flight UInt64,
    drift Int64,
    action String,
    snapshot_id String,
    outcome String,
    reason String
)
ENGINE = MergeTree
ORDER BY (appid, checked_at);

-- The store's followers of one account as of `before_ms` (epoch ms): users whose newest event dated before it is
-- a subscribe. follower_keys (sql/011) holds each user's newest order, whose bit 0 is the event's type; only the
-- users with an event at or after `before_ms` (window_keys, sql/007) need their events read again, so a check
-- reads the few recent users' events instead of the whole log. `in_flight` counts the users with an event from
-- `before_ms` to `until_ms`: dated inside the seconds of the call, they may or may not be in WeChat's count.
CREATE OR REPLACE VIEW {{db}}.sentinel_store_count AS
SELECT
    (SELECT count() FROM {{db}}.follower_keys FINAL
        WHERE appid = {appid:String} AND bitAnd(last_ord, 1) = 0
          AND openid_key NOT IN (SELECT openid_key FROM {{db}}.window_keys(appid = {appid:String}, since_ms = {before_ms:Int64})))
    + (SELECT countIf(bitAnd(last_ord, 1) = 0) FROM (
        SELECT openid_key, max(ord) AS last_ord FROM {{db}}.user_events
        WHERE appid = {appid:String} AND at < fromUnixTimestamp64Milli({before_ms:Int64}, 'UTC')
          AND openid_key IN (SELECT openid_key FROM {{db}}.window_keys(appid = {appid:String}, since_ms = {before_ms:Int64}))
        GROUP BY openid_key)) AS store_count,
    (SELECT uniqExact(openid_key) FROM {{db}}.user_events
        WHERE appid = {appid:String}
          AND at >= fromUnixTimestamp64Milli({before_ms:Int64}, 'UTC') AND at <= fromUnixTimestamp64Milli({until_ms:Int64}, 'UTC')) AS in_flight;
