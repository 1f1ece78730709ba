-- The buyers' specs (`[destinations.NAME]`) a request named, as a JSON
-- array of names; '[]' for assets made before destinations existed.
ALTER TABLE assets ADD COLUMN destinations_json JSONB NOT NULL DEFAULT '[]';
-- The request's own VAST fields (publish::vast_fields), as JSON; NULL: none.
ALTER TABLE assets ADD COLUMN vast_json JSONB;
