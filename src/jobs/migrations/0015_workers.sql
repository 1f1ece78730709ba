-- The worker processes of a deployment (GET /v1/workers, `reelay workers`):
-- each registers at start, heartbeats with the steps it is running and
-- deletes its row on a clean exit. A row whose heartbeat is older than a few
-- intervals belongs to a process that died; it is not listed as live.
-- Times are Unix milliseconds like every other table; `running_json` is a
-- JSON array of {"variation_id", "stage", "since"} (TEXT here, JSONB in a
-- Postgres translation).
CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    last_heartbeat BIGINT NOT NULL,
    running_json TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX workers_last_heartbeat ON workers (last_heartbeat);
