-- When the churn rollups (sql/012) last finished a refresh that wxsync asked for and waited on: the second that
-- refresh began reading user_events. ClickHouse keeps refresh times in memory only (system.view_refreshes), so a
-- process that opens the embedded store afresh (a CLI command while no wxsync run holds it) starts with every view
-- "never refreshed" although the rollup tables hold the last run's refresh; this row dates them. Rows only grow
-- newer (one per refresh), and merges keep the newest.
CREATE TABLE IF NOT EXISTS {{db}}.rollup_refreshes
(
    read_from DateTime('UTC')
)
ENGINE = ReplacingMergeTree(read_from)
ORDER BY tuple();
