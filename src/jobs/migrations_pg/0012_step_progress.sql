-- What the running step last reported about its ffmpeg run, for the API:
-- JSON of jobs::store::StepProgress ({stage, percent, fps, speed, eta_secs}).
-- Renewed with the lease heartbeat; cleared on every change of state.
ALTER TABLE variations ADD COLUMN progress_json JSONB;
