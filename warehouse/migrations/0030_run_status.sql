-- A run's outcome and who ran it, so that a later run can tell a killed run from a live one.
--   status     running | completed | failed | killed | interrupted
--   pid, host  the process that ran it (a run whose process is gone is marked killed)
--   error      why the run failed or was marked killed
ALTER TABLE runs ADD COLUMN status VARCHAR;
ALTER TABLE runs ADD COLUMN pid INTEGER;
ALTER TABLE runs ADD COLUMN host VARCHAR;
ALTER TABLE runs ADD COLUMN pid_started VARCHAR;
ALTER TABLE runs ADD COLUMN error VARCHAR;
UPDATE runs SET status = CASE WHEN finished_at IS NULL THEN 'running' ELSE 'completed' END;
