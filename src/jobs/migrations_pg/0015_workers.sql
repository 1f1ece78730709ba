-- The worker processes of a deployment (GET /v1/workers, `reelay workers`),
-- translated from the SQLite migration of the same number: each registers at
-- start, heartbeats with the steps it is running and deletes its row on a
-- clean exit. Times are Unix milliseconds.
CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    last_heartbeat BIGINT NOT NULL,
    running_json TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX workers_last_heartbeat ON workers (last_heartbeat);
