-- 0010: corrections of alerts already sent for changes that were later retracted.
--
-- A change is retracted when late-arriving evidence reorders what was said (see
-- tasks/changes.py). Every recipient whose outbox row says the change was sent (or
-- handed over: 'sending') is owed exactly one correction naming that announcement.
-- The row is written in the same transaction as the retraction, and its key makes a
-- second one impossible: one correction per (change, recipient, announcing message).
--
-- status: due | sending | sent | failed | cancelled (the change was restored before
-- the correction went out, or the announcement turned out never to have been sent).
-- message_id is the correction's own Message-ID, committed before the send (a crash
-- re-sends the same message, like the outbox).
CREATE TABLE IF NOT EXISTS alert_corrections (
    change_id            VARCHAR NOT NULL,   -- the retracted change
    recipient            VARCHAR NOT NULL,
    announced_message_id VARCHAR NOT NULL,   -- the message that announced the change
    announced_at         TIMESTAMPTZ,        -- when that message was sent
    status               VARCHAR NOT NULL,
    attempts             INTEGER NOT NULL DEFAULT 0,
    last_error           VARCHAR,
    last_attempt_at      TIMESTAMPTZ,
    message_id           VARCHAR,
    sent_at              TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (change_id, recipient, announced_message_id)
);
