-- articles: one row per article URL as listed in its feed, with the extracted main text.
CREATE OR REPLACE VIEW articles AS
SELECT a.url, a.title, a.published_at, a.language, a.text,
       a.author, a.canonical_url, a.feed, a.story_id, a.date_source,
       a.extractor_version, a.extracted_at, p.fetched_at
FROM article_texts a LEFT JOIN pages p USING (url);

COMMENT ON VIEW articles IS 'One row per article URL (as listed in its feed), with its extracted main text.';
COMMENT ON COLUMN articles.url IS 'The article URL as its feed lists it (the key every other view joins on).';
COMMENT ON COLUMN articles.title IS 'Headline (from the page, else the feed entry).';
COMMENT ON COLUMN articles.published_at IS 'Publication time (see date_source for where it came from).';
COMMENT ON COLUMN articles.language IS 'ISO 639-1 language code of the text.';
COMMENT ON COLUMN articles.text IS 'Extracted main text; evidence offsets (start_char, end_char) index it.';
COMMENT ON COLUMN articles.author IS 'Byline, when the page or feed gives one.';
COMMENT ON COLUMN articles.canonical_url IS 'The page''s own canonical URL, when it declares one.';
COMMENT ON COLUMN articles.feed IS 'Name of the feed that listed the article first.';
COMMENT ON COLUMN articles.story_id IS 'URL of the first copy of a syndicated story (NULL: a story of its own).';
COMMENT ON COLUMN articles.date_source IS 'Where published_at came from: feed, page, htmldate or fetch (time of download).';
COMMENT ON COLUMN articles.extractor_version IS 'Version of the text extractor that produced text.';
COMMENT ON COLUMN articles.extracted_at IS 'When the text was extracted.';
COMMENT ON COLUMN articles.fetched_at IS 'When the page was downloaded.';
