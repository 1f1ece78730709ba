-- Per-request QC overrides (stricter than the profile only), as JSON.
ALTER TABLE assets ADD COLUMN qc_json JSONB;
