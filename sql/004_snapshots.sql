-- One row per snapshot record (begin, each page, end), deduplicated by (snapshot, kind, page): a
-- redelivered record replaces itself. snapshot_status folds them into one row per snapshot.
CREATE TABLE IF NOT EXISTS {{db}}.snapshots
(
    appid LowCardinality(String),
    snapshot_id String,
    kind Enum8('begin' = 1, 'page' = 2, 'end' = 3),
    page UInt32 DEFAULT 0,
    started_at DateTime64(3, 'UTC') DEFAULT 0,
    ended_at DateTime64(3, 'UTC') DEFAULT 0,
    fetched_at DateTime64(3, 'UTC') DEFAULT 0,
    complete UInt8 DEFAULT 0,
    reason String DEFAULT '',
    total UInt64 DEFAULT 0,
    pages UInt32 DEFAULT 0,
    openids UInt64 DEFAULT 0,
    page_openids UInt32 DEFAULT 0,
    cursor String DEFAULT '',
    next_openid String DEFAULT '',
    loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY (appid, snapshot_id, kind, page);

-- `loaded` is true once begin, end and every page the end announced are in the store: only then may a
-- reconcile read snapshot_members as the whole snapshot.
CREATE VIEW IF NOT EXISTS {{db}}.snapshot_status AS
SELECT
    appid,
    snapshot_id,
    maxIf(started_at, kind = 'begin') AS started_at,
    maxIf(ended_at, kind = 'end') AS ended_at,
    countIf(kind = 'begin') > 0 AS has_begin,
    countIf(kind = 'end') > 0 AS has_end,
    maxIf(complete, kind = 'end') = 1 AS complete,
    anyIf(reason, kind = 'end') AS reason,
    maxIf(total, kind = 'end') AS total,
    maxIf(pages, kind = 'end') AS pages,
    maxIf(openids, kind = 'end') AS openids,
    uniqExactIf(page, kind = 'page') AS pages_loaded,
    has_begin AND has_end AND pages_loaded = pages AS loaded
FROM {{db}}.snapshots
GROUP BY appid, snapshot_id;
