-- 0050: a run's claim on the pages it is about to download, so that two overlapping runs (two
-- `newsmon ingest`, an ingest and a `newsmon backfill`, feed shards listing the same URL) fetch
-- each pending page once (two overlapping ingests downloaded 44 pages for 32).
--
-- The fetch stage reads the pending pages and leases the ones nobody else holds in one write
-- transaction (write transactions are serialised: the DuckDB file's lock, the lake's advisory
-- lock), so no two runs lease the same page. A page's lease is deleted in the transaction
-- that stores its fetch (page and raw bytes, or the failure), and the run's remaining leases
-- (pages left for the next run) when its fetch stage ends. A lease lapses, and the page is
-- pending for anyone again, when `expires_at` has passed (the holder renews it while it
-- works) or when the holder's run is no longer 'running' in `runs` (a killed run is marked
-- 'killed' by the next run on its host): a killed run's pages are fetched by the next run.
-- A lease is never the only record of anything: deleting every row loses nothing.
CREATE TABLE IF NOT EXISTS fetch_leases (
    url        VARCHAR PRIMARY KEY,   -- feed_entries.url of the page
    run_id     VARCHAR NOT NULL,      -- runs.run_id of the run that will fetch it
    leased_at  TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
