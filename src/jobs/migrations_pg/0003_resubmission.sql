-- A variation whose upload never arrived may be submitted once more as a new
-- task (runware.resubmit_missing_upload). Runware's taskUUID is unique, so the
-- new task gets a new one; the earlier ones are kept here with their cost.
-- (0002 is left to the migration of the publish/callback work.)
ALTER TABLE variations ADD COLUMN previous_tasks JSONB;     -- JSON [{taskUUID, cost, reasonCode, at}]
-- When the generator first reported success: the upload grace runs from here.
ALTER TABLE variations ADD COLUMN success_seen_at BIGINT;
