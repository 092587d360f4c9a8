-- alerts: the email outbox, one row per (change, recipient).
-- status: due | sending | sent | failed | retracted.
CREATE OR REPLACE VIEW alerts AS
SELECT o.change_id, o.recipient, o.status, o.attempts, o.last_error, o.last_attempt_at,
       o.message_id, o.sent_at, o.created_at, c.kind, c.actor_group, c.subject,
       c.old_value, c.new_value, c.retracted_at, o.resends, o.announced_as
FROM alert_outbox o JOIN change_log c USING (change_id);

COMMENT ON VIEW alerts IS 'The email outbox: one row per (change, recipient), with its delivery state.';
COMMENT ON COLUMN alerts.change_id IS 'The change announced (changes.change_id).';
COMMENT ON COLUMN alerts.recipient IS 'Email address.';
COMMENT ON COLUMN alerts.status IS 'due, sending, sent, failed or retracted.';
COMMENT ON COLUMN alerts.attempts IS 'Send attempts so far.';
COMMENT ON COLUMN alerts.last_error IS 'Error of the last failed attempt.';
COMMENT ON COLUMN alerts.last_attempt_at IS 'Time of the last attempt.';
COMMENT ON COLUMN alerts.message_id IS 'Message-ID of the email (reused by a retry).';
COMMENT ON COLUMN alerts.sent_at IS 'When the server accepted the email.';
COMMENT ON COLUMN alerts.created_at IS 'When the alert was queued.';
COMMENT ON COLUMN alerts.kind IS 'position or aid.';
COMMENT ON COLUMN alerts.actor_group IS 'As in changes.';
COMMENT ON COLUMN alerts.subject IS 'As in changes.';
COMMENT ON COLUMN alerts.old_value IS 'As in changes.';
COMMENT ON COLUMN alerts.new_value IS 'As in changes.';
COMMENT ON COLUMN alerts.retracted_at IS 'When a late article retracted the change (NULL: standing).';
COMMENT ON COLUMN alerts.resends IS 'How often `newsmon alerts resend` re-queued it.';
COMMENT ON COLUMN alerts.announced_as IS 'The change whose email already announced this one (a late article moved its evidence).';
