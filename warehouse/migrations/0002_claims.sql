-- 0002: what mining finds in an article, with provenance (sentence, offsets,
-- extractor version), and the change log and alert outbox built on it.
-- Re-mining an article deletes and re-inserts its rows in one transaction.

CREATE TABLE IF NOT EXISTS mined_articles (
    url               VARCHAR PRIMARY KEY,
    extractor_version VARCHAR NOT NULL,
    sentences         INTEGER NOT NULL,
    mined_at          TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS mentions (
    url               VARCHAR NOT NULL,
    sentence_index    INTEGER NOT NULL,
    start_char        INTEGER NOT NULL,  -- offsets in article_texts.text
    end_char          INTEGER NOT NULL,
    surface           VARCHAR NOT NULL,
    entity            VARCHAR NOT NULL,  -- canonical name
    entity_type       VARCHAR NOT NULL,  -- country | organization | person | place | other spaCy label
    wikidata_id       VARCHAR,
    actor_group       VARCHAR,           -- state or organisation this entity speaks for
    extractor_version VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS pledge_claims (
    claim_id          VARCHAR PRIMARY KEY,
    url               VARCHAR NOT NULL,
    sentence_index    INTEGER NOT NULL,
    start_char        INTEGER NOT NULL,
    end_char          INTEGER NOT NULL,
    evidence          VARCHAR NOT NULL,
    donor             VARCHAR NOT NULL,
    recipient         VARCHAR NOT NULL,
    amount            DOUBLE NOT NULL,
    currency          VARCHAR NOT NULL,
    amount_eur        DOUBLE,
    low_amount        DOUBLE,
    qualifier         VARCHAR,
    kind              VARCHAR NOT NULL,
    previous_amount   DOUBLE,
    money_text        VARCHAR,
    extractor_version VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS position_claims (
    claim_id          VARCHAR PRIMARY KEY,
    url               VARCHAR NOT NULL,
    sentence_index    INTEGER NOT NULL,
    start_char        INTEGER NOT NULL,
    end_char          INTEGER NOT NULL,
    evidence          VARCHAR NOT NULL,
    actor             VARCHAR NOT NULL,
    actor_group       VARCHAR NOT NULL,
    topic             VARCHAR NOT NULL,
    stance            VARCHAR NOT NULL,
    cue               VARCHAR,
    extractor_version VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS meeting_claims (
    claim_id          VARCHAR PRIMARY KEY,
    url               VARCHAR NOT NULL,
    sentence_index    INTEGER NOT NULL,
    start_char        INTEGER NOT NULL,
    end_char          INTEGER NOT NULL,
    evidence          VARCHAR NOT NULL,
    event_type        VARCHAR NOT NULL,   -- meeting | talks
    participants      VARCHAR[] NOT NULL, -- canonical states/organisations
    people            VARCHAR[],
    location          VARCHAR,
    event_date        DATE,
    extractor_version VARCHAR NOT NULL
);

-- Every change ever detected. A change that a late article proves wrong is
-- retracted (retracted_at set), never deleted, so alerts stay explainable.
CREATE TABLE IF NOT EXISTS change_log (
    change_id        VARCHAR PRIMARY KEY,
    kind             VARCHAR NOT NULL,   -- position | aid
    actor_group      VARCHAR NOT NULL,
    subject          VARCHAR NOT NULL,
    old_value        VARCHAR,
    new_value        VARCHAR,
    old_amount       DOUBLE,
    new_amount       DOUBLE,
    currency         VARCHAR,
    old_claim_id     VARCHAR,
    new_claim_id     VARCHAR NOT NULL,
    old_url          VARCHAR,
    new_url          VARCHAR NOT NULL,
    old_published_at TIMESTAMPTZ,
    new_published_at TIMESTAMPTZ,
    old_evidence     VARCHAR,
    new_evidence     VARCHAR,
    detected_at      TIMESTAMPTZ NOT NULL,
    retracted_at     TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS alert_outbox (
    change_id       VARCHAR NOT NULL,
    recipient       VARCHAR NOT NULL,
    status          VARCHAR NOT NULL,    -- due | sending | sent
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      VARCHAR,
    last_attempt_at TIMESTAMPTZ,
    message_id      VARCHAR,             -- set before the send; a retry reuses it
    sent_at         TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (change_id, recipient)
);
