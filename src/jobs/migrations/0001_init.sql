-- One row per asset request, one row per variation (one Runware task each).
CREATE TABLE IF NOT EXISTS assets (
    id            TEXT PRIMARY KEY,
    campaign      TEXT NOT NULL,
    profile       TEXT NOT NULL,
    request_json  TEXT NOT NULL,   -- the validated `generation` object
    callback_url  TEXT,
    ttl_secs      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL -- unix milliseconds
);
CREATE INDEX IF NOT EXISTS assets_campaign ON assets (campaign, created_at);

CREATE TABLE IF NOT EXISTS variations (
    id                   TEXT PRIMARY KEY,
    asset_id             TEXT NOT NULL REFERENCES assets (id),
    idx                  INTEGER NOT NULL,
    state                TEXT NOT NULL,
    task_uuid            TEXT NOT NULL UNIQUE, -- fixed before the first submit: resubmits are idempotent
    webhook_token_sha256 TEXT NOT NULL,
    master_key           TEXT NOT NULL UNIQUE,
    stage_progress       REAL,
    stage_detail         TEXT,
    poll_count           INTEGER NOT NULL DEFAULT 0,
    error_count          INTEGER NOT NULL DEFAULT 0,
    submitted_at         INTEGER,
    upload_expires_at    INTEGER,
    provider_json        TEXT,    -- last result item reported by the generator
    provider_error_json  TEXT,    -- a failure reported by webhook or poll
    cost                 REAL,
    arrived_at           INTEGER,
    master_size          INTEGER,
    master_sha256        TEXT,
    master_probe         TEXT,
    outputs_json         TEXT,    -- transcode outputs (local paths, plan)
    qc_json              TEXT,
    published_json       TEXT,
    reason_code          TEXT,
    reason               TEXT,
    attempt              INTEGER NOT NULL DEFAULT 0, -- fencing token, +1 per claim
    lease_until          INTEGER NOT NULL DEFAULT 0,
    next_run_at          INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    UNIQUE (asset_id, idx)
);
CREATE INDEX IF NOT EXISTS variations_runnable ON variations (state, next_run_at);

-- Every state change, in order: the asset's timeline.
CREATE TABLE IF NOT EXISTS transitions (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    variation_id TEXT NOT NULL REFERENCES variations (id),
    from_state   TEXT NOT NULL,
    to_state     TEXT NOT NULL,
    at           INTEGER NOT NULL,
    note         TEXT
);
CREATE INDEX IF NOT EXISTS transitions_variation ON transitions (variation_id, seq);
