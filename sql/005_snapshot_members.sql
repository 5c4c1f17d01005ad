-- The openids of each snapshot, one row each, joined to followers on the UInt64 key (a String-key
-- anti-join at 10M rows is an order of magnitude slower).
-- `fetched_at` is the page record's fetchedAt: a page fetched again (a snapshot resumed after a crash
-- re-fetches the pages past its checkpoint, and WeChat may answer them differently) keeps its rows apart from
-- the earlier fetch's, so a reader takes each page's latest fetch alone. The page and its fetch time close the
-- sort key, so an exact redelivery of one fetch (same openid, page and fetched_at) still replaces itself, and
-- the key's prefix keeps the anti-join on (appid, snapshot_id, openid_key) a streaming read.
-- sql/010 rebuilds a store created before fetched_at.
CREATE TABLE IF NOT EXISTS {{db}}.snapshot_members
(
    appid LowCardinality(String),
    snapshot_id String,
    openid_key UInt64 DEFAULT sipHash64(openid),
    openid String,
    page UInt32,
    fetched_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (appid, snapshot_id, openid_key, openid, page, fetched_at);
