-- The Postgres migration of this number adds the NOTIFY that wakes workers
-- in other processes. A SQLite store is one machine's: its processes wake
-- their own workers, so nothing changes here; the migration exists so both
-- backends count the same schema versions.
SELECT 1;
