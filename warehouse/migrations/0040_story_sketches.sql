-- 0040: a sample of each article's shingles (hashed word 5-grams), so that extraction finds the
-- stored articles a new one may copy with one query instead of reading every stored text
-- (which grew with the warehouse: memory and time of a backfill grew with its window).
-- hashes: the shingles whose hash is a multiple of 4, or all of them for a short text
-- (tasks.stories.sketch). Articles stored before this table are sketched by the next
-- extraction run (flows.stages.extract_articles).
CREATE TABLE IF NOT EXISTS story_sketches (
    url    VARCHAR PRIMARY KEY,
    hashes BIGINT[] NOT NULL
);
