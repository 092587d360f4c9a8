-- 0003: what an alert digest needs, kept in the change log and the outbox, so that a
-- digest can be composed again, identically, from stored rows alone (a crash between
-- the send and its record re-sends the same message).

-- The old amount's currency (a pledge may move from USD to EUR), the relative change
-- as detected (in EUR across currencies; recipients filter on it), and the titles of
-- the two articles for the links.
ALTER TABLE change_log ADD COLUMN IF NOT EXISTS old_currency VARCHAR;
ALTER TABLE change_log ADD COLUMN IF NOT EXISTS relative_change DOUBLE;
ALTER TABLE change_log ADD COLUMN IF NOT EXISTS old_title VARCHAR;
ALTER TABLE change_log ADD COLUMN IF NOT EXISTS new_title VARCHAR;

-- status: due | sending | sent | failed | retracted.
-- resends: how often `newsmon alerts resend` re-queued the row (part of the Message-ID,
-- so that a deliberate resend is not discarded as a duplicate by the receiving side).
-- announced_as: the change id whose alert already announced this change (a late article
-- moved its evidence earlier: same group, subject, old and new value).
ALTER TABLE alert_outbox ADD COLUMN IF NOT EXISTS resends INTEGER DEFAULT 0;
ALTER TABLE alert_outbox ADD COLUMN IF NOT EXISTS announced_as VARCHAR;
