-- The request's caption tracks (publish::captions: language, label,
-- WebVTT text), as JSON; NULL: none.
ALTER TABLE assets ADD COLUMN captions_json JSONB;
