-- alerts: the email outbox, one row per (change, recipient).
-- status: due | sending | sent | failed | retracted.
CREATE OR REPLACE VIEW alerts AS
SELECT o.change_id, o.recipient, o.status, o.attempts, o.last_error, o.last_attempt_at,
       o.message_id, o.sent_at, o.created_at, c.kind, c.actor_group, c.subject,
       c.old_value, c.new_value, c.retracted_at, o.resends, o.announced_as
FROM alert_outbox o JOIN change_log c USING (change_id);
