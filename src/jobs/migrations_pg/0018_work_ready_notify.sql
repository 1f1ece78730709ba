-- Wakes idle workers in every process at once: a NOTIFY on channel
-- `reelay_work` whenever a variation may have become runnable (a new row,
-- a change of state or of next_run_at, a lease given back). Workers LISTEN
-- (`jobs::wake`); a notification only makes them try a claim.
CREATE OR REPLACE FUNCTION reelay_work_ready() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('reelay_work', '');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER variations_inserted
    AFTER INSERT ON variations
    FOR EACH STATEMENT EXECUTE FUNCTION reelay_work_ready();

CREATE TRIGGER variations_requeued
    AFTER UPDATE OF state, next_run_at, lease_until ON variations
    FOR EACH ROW
    WHEN (NEW.state IS DISTINCT FROM OLD.state
          OR NEW.next_run_at IS DISTINCT FROM OLD.next_run_at
          OR NEW.lease_until < OLD.lease_until)
    EXECUTE FUNCTION reelay_work_ready();
