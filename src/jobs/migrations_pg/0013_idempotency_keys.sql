-- Idempotency-Key on POST (api::idempotency): the first answer to one
-- (API key, Idempotency-Key) is kept for 24 h and replayed to a retry with
-- the same request. The API key is stored only as its SHA-256 (hex).
-- `status` is NULL while the first request is still being answered.
CREATE TABLE idempotency_keys (
    scope_sha256 TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    status BIGINT,
    content_type TEXT,
    location TEXT,
    body BYTEA,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope_sha256, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
