-- 0001: the ingest stages: feeds -> feed entries -> fetches / raw pages -> article texts.
-- Every stage keeps its input: raw page bytes are stored (zlib, content-addressed)
-- before anything parses them, so extraction and mining can be re-run offline.

CREATE TABLE IF NOT EXISTS runs (
    run_id      VARCHAR PRIMARY KEY,
    flow        VARCHAR NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    counts      JSON
);

-- One row per configured feed: validators and poll health. Updated in the same
-- transaction as the entries of the poll it describes.
CREATE TABLE IF NOT EXISTS feeds (
    name                 VARCHAR PRIMARY KEY,
    url                  VARCHAR NOT NULL,
    etag                 VARCHAR,
    last_modified        VARCHAR,
    body_sha256          VARCHAR,
    last_polled_at       TIMESTAMPTZ,
    last_success_at      TIMESTAMPTZ,
    last_status          INTEGER,
    last_error           VARCHAR,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    next_poll_at         TIMESTAMPTZ
);

-- Every poll, for the run report and for debugging a feed.
CREATE TABLE IF NOT EXISTS feed_polls (
    feed         VARCHAR NOT NULL,
    polled_at    TIMESTAMPTZ NOT NULL,
    run_id       VARCHAR,
    status       INTEGER,
    outcome      VARCHAR NOT NULL,   -- ok | not_modified | unchanged_body | failed | skipped_backoff
    entries      INTEGER,
    new_entries  INTEGER,
    bozo         VARCHAR,            -- feedparser's complaint when it recovered a broken feed
    error        VARCHAR
);

-- Items as their feeds list them. `url` is the entry link resolved against the feed URL.
CREATE TABLE IF NOT EXISTS feed_entries (
    feed          VARCHAR NOT NULL,
    url           VARCHAR NOT NULL,
    entry_id      VARCHAR,
    title         VARCHAR,
    author        VARCHAR,
    published_at  TIMESTAMPTZ,
    summary       VARCHAR,
    content       VARCHAR,
    first_seen_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (feed, url)
);

-- Content-addressed raw bytes (zlib-compressed).
CREATE TABLE IF NOT EXISTS raw_blobs (
    sha256      VARCHAR PRIMARY KEY,
    size        BIGINT NOT NULL,
    compression VARCHAR NOT NULL,
    data        BLOB NOT NULL
);

-- Every fetch attempt (success or not).
CREATE TABLE IF NOT EXISTS fetches (
    url          VARCHAR NOT NULL,
    attempted_at TIMESTAMPTZ NOT NULL,
    run_id       VARCHAR,
    outcome      VARCHAR NOT NULL,   -- ok | transient | refused
    reason       VARCHAR,
    status       INTEGER,
    final_url    VARCHAR,
    content_type VARCHAR,
    headers      JSON,
    sha256       VARCHAR,
    error        VARCHAR
);

-- The stored page of each article URL (its latest successful fetch).
CREATE TABLE IF NOT EXISTS pages (
    url          VARCHAR PRIMARY KEY,
    final_url    VARCHAR,
    status       INTEGER,
    content_type VARCHAR,
    headers      JSON,
    sha256       VARCHAR NOT NULL,
    fetched_at   TIMESTAMPTZ NOT NULL
);

-- Recorded rejections: input that was refused for good, with why.
CREATE TABLE IF NOT EXISTS rejections (
    stage       VARCHAR NOT NULL,    -- feed | fetch | extract | mine | alert
    key         VARCHAR NOT NULL,    -- feed name or URL
    reason      VARCHAR NOT NULL,
    detail      VARCHAR,
    rejected_at TIMESTAMPTZ NOT NULL,
    run_id      VARCHAR,
    PRIMARY KEY (stage, key)
);

-- Extracted articles, one per feed URL.
CREATE TABLE IF NOT EXISTS article_texts (
    url               VARCHAR PRIMARY KEY,
    feed              VARCHAR,
    canonical_url     VARCHAR,
    title             VARCHAR,
    author            VARCHAR,
    published_at      TIMESTAMPTZ,
    date_source       VARCHAR,           -- feed | page | htmldate | fetch
    language          VARCHAR,
    text              VARCHAR NOT NULL,
    text_sha256       VARCHAR NOT NULL,
    story_id          VARCHAR,           -- url of the first copy of a syndicated story
    page_sha256       VARCHAR,
    extractor_version VARCHAR NOT NULL,
    extracted_at      TIMESTAMPTZ NOT NULL
);
