-- The Postgres migration of this number makes variations.master_probe JSONB
-- (0001 translated it as TEXT). SQLite keeps JSON as TEXT, so nothing
-- changes here; the migration exists so both backends count the same
-- schema versions.
SELECT 1;
