-- 0020: what the analyst's interface needs beside the claims.
-- The topic and entity catalogs as config/ defines them (the `topics` and `entities`
-- views read them), and the state of what is derived from other rows or files: each
-- derived thing records the digest of its input, so it is rebuilt only when that changed.

CREATE TABLE IF NOT EXISTS topic_catalog (
    topic           VARCHAR PRIMARY KEY,   -- topic id, as in positions.topic
    description     VARCHAR,
    implied_by_kinds VARCHAR[],            -- aid kinds whose pledge also states support
    source          VARCHAR                -- the config file it came from
);

CREATE TABLE IF NOT EXISTS entity_catalog (
    entity          VARCHAR PRIMARY KEY,   -- canonical name, as in article_entities.entity
    entity_type     VARCHAR NOT NULL,      -- country | organization | person | place
    wikidata_id     VARCHAR,
    actor_group     VARCHAR,               -- the state or organisation it speaks for
    affiliation     VARCHAR,
    country         VARCHAR,               -- places: the state they are in
    aliases         VARCHAR[],
    demonyms        VARCHAR[],
    metonyms        VARCHAR[],
    source          VARCHAR
);

-- name: 'catalog' (the two tables above) | 'search_index' (full-text index of article_texts).
CREATE TABLE IF NOT EXISTS derived_state (
    name         VARCHAR PRIMARY KEY,
    digest       VARCHAR NOT NULL,
    refreshed_at TIMESTAMPTZ NOT NULL
);
