-- batchget answers (wx.user.profiles); the newest fetch of a user wins.
CREATE TABLE IF NOT EXISTS {{db}}.user_profiles
(
    appid LowCardinality(String),
    openid_key UInt64 DEFAULT sipHash64(openid),
    openid String,
    subscribe UInt8,
    subscribe_time DateTime64(3, 'UTC') DEFAULT 0,
    unionid String DEFAULT '',
    subscribe_scene LowCardinality(String) DEFAULT '',
    qr_scene UInt32 DEFAULT 0,
    qr_scene_str String DEFAULT '',
    tagid_list Array(UInt32),
    remark String DEFAULT '',
    fetched_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(fetched_at)
ORDER BY (appid, openid_key, openid);
