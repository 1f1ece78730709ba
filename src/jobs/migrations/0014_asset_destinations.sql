-- The buyers' specs (`[destinations.NAME]`) a request named, as a JSON
-- array of names; '[]' for assets made before destinations existed.
ALTER TABLE assets ADD COLUMN destinations_json TEXT NOT NULL DEFAULT '[]';
