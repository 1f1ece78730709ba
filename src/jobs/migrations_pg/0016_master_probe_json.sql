-- master_probe holds the JSON of the master's ffprobe report, written
-- through sqlx::types::Json like the other JSON columns; 0001 translated it
-- as TEXT, which a JSONB parameter cannot be written into (nor read back as
-- JSON). Same number as the SQLite migration, which changes nothing there.
ALTER TABLE variations ALTER COLUMN master_probe TYPE JSONB USING master_probe::jsonb;
