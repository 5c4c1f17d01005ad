-- Upgrades a store created before snapshot_members carried `fetched_at` (see sql/005 and sql/008): the Null
-- table snapshot_member_pages gains the column; snapshot_members, whose sort key must end with it, is rebuilt
-- beside the live one, copied, swapped and the old one dropped; the view between them is created again to carry
-- the column. Guarded like sql/009: a fresh store skips every guarded step, and a start-up that died halfway
-- redoes what it had not finished at the next migrate.
-- Rows copied from before the upgrade get the fetchedAt of their page's row in `snapshots` (0 when there is
-- none), so every old row of a page counts as one fetch, which is all an old store could tell apart.
-- Runs before any role writes; with a ClickHouse server shared by several processes, stop the consumers of
-- older versions while the first upgraded process starts: a page arriving between the view's drop and its
-- re-creation would lose its members.

ALTER TABLE {{db}}.snapshot_member_pages ADD COLUMN IF NOT EXISTS fetched_at DateTime64(3, 'UTC') AFTER page;

-- when: SELECT count() FROM system.tables WHERE database = '{{db}}' AND name = 'snapshot_members' AND position(sorting_key, 'fetched_at') = 0
DROP TABLE IF EXISTS {{db}}.snapshot_members_by_fetch SYNC;

-- when: SELECT count() FROM system.tables WHERE database = '{{db}}' AND name = 'snapshot_members' AND position(sorting_key, 'fetched_at') = 0
CREATE TABLE {{db}}.snapshot_members_by_fetch
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

-- when: SELECT count() FROM system.tables WHERE database = '{{db}}' AND name = 'snapshot_members' AND position(sorting_key, 'fetched_at') = 0
INSERT INTO {{db}}.snapshot_members_by_fetch (appid, snapshot_id, openid_key, openid, page, fetched_at)
SELECT m.appid, m.snapshot_id, m.openid_key, m.openid, m.page, p.fetched_at
FROM {{db}}.snapshot_members AS m
LEFT JOIN
(
    SELECT appid, snapshot_id, page, max(fetched_at) AS fetched_at
    FROM {{db}}.snapshots
    WHERE kind = 'page'
    GROUP BY appid, snapshot_id, page
) AS p ON m.appid = p.appid AND m.snapshot_id = p.snapshot_id AND m.page = p.page
SETTINGS join_use_nulls = 0;

-- The view goes when it lacks the column, or when its target is about to be swapped (so it cannot keep writing
-- to the old table, whatever a ClickHouse version does with a view's target across EXCHANGE).
-- when: SELECT (SELECT count() FROM system.tables WHERE database = '{{db}}' AND name = 'snapshot_members' AND position(sorting_key, 'fetched_at') = 0) + (SELECT count() FROM system.tables WHERE database = '{{db}}' AND name = 'snapshot_member_pages_mv' AND position(create_table_query, 'fetched_at') = 0)
DROP VIEW IF EXISTS {{db}}.snapshot_member_pages_mv SYNC;

-- when: SELECT count() FROM system.tables WHERE database = '{{db}}' AND name = 'snapshot_members' AND position(sorting_key, 'fetched_at') = 0
EXCHANGE TABLES {{db}}.snapshot_members AND {{db}}.snapshot_members_by_fetch;

-- The definition of sql/008, unguarded: after the swap, or after a start-up that died between the drop and here.
CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.snapshot_member_pages_mv TO {{db}}.snapshot_members
(
    appid LowCardinality(String),
    snapshot_id String,
    openid String,
    page UInt32,
    fetched_at DateTime64(3, 'UTC')
)
AS SELECT appid, snapshot_id, openid, page, fetched_at
FROM {{db}}.snapshot_member_pages
ARRAY JOIN openids AS openid;

-- After the swap this is the old table, every row of which is in the new one.
DROP TABLE IF EXISTS {{db}}.snapshot_members_by_fetch SYNC;
