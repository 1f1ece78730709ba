-- Publishing pointers, the notification outbox, S3 event dedupe and
-- masters uploaded by hand.

-- Where an asset came from: 'generated' (one Runware task per variation) or
-- 'upload' (a master put by hand under masters/{campaign}/...: never
-- submitted; its variation starts at the arrival checks).
ALTER TABLE assets ADD COLUMN source TEXT NOT NULL DEFAULT 'generated';

-- The ETag (without quotes) of the master object that arrival verified, so an
-- S3 event about that same object is recognised as nothing new.
ALTER TABLE variations ADD COLUMN master_etag TEXT;

-- HTTP notifications to deliver at least once: callbacks to the requester
-- and CDN purges. Each row is written in the same transaction as the change
-- it announces and drained by a background task; its id is the event id the
-- receiver dedupes by, the same on every retry.
CREATE TABLE IF NOT EXISTS outbox (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,      -- 'callback' | 'purge'
    event_type      TEXT NOT NULL,      -- asset.published, asset.rejected, ..., cdn.purge
    asset_id        TEXT,
    variation_id    TEXT,
    url             TEXT NOT NULL,
    body            TEXT NOT NULL,      -- the exact bytes sent (and signed)
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    delivered_at    BIGINT,
    failed_at       BIGINT,            -- the retry window ended first
    last_error      TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_variation ON outbox (variation_id, created_at);

-- Every distinct S3 object event handled: (bucket, key, version) where the
-- version is 'v:' versionId, else 'e:' ETag, else 's:' sequencer.
CREATE TABLE IF NOT EXISTS s3_events (
    bucket      TEXT NOT NULL,
    key         TEXT NOT NULL,
    version     TEXT NOT NULL,
    sequencer   TEXT,
    outcome     TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (bucket, key, version)
);
CREATE INDEX IF NOT EXISTS s3_events_received ON s3_events (received_at);

-- Per key, the newest sequencer handled: an older event does nothing.
CREATE TABLE IF NOT EXISTS s3_keys (
    bucket     TEXT NOT NULL,
    key        TEXT NOT NULL,
    sequencer  TEXT NOT NULL,   -- upper-case hex as sent
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (bucket, key)
);

-- Published sets that a newer set replaced. The sweeper deletes each once
-- cdn.grace_secs (as configured when it runs) has passed since `retired_at`,
-- unless it has become the live set again.
CREATE TABLE IF NOT EXISTS cdn_retired (
    variation_id TEXT NOT NULL REFERENCES variations (id),
    content_hash TEXT NOT NULL,
    prefix       TEXT NOT NULL,  -- key prefix of the set in the CDN bucket, ending in '/'
    retired_at   BIGINT NOT NULL,
    PRIMARY KEY (variation_id, content_hash)
);
CREATE INDEX IF NOT EXISTS cdn_retired_at ON cdn_retired (retired_at);
