-- articles: one row per article URL as listed in its feed, with the extracted main text.
CREATE OR REPLACE VIEW articles AS
SELECT a.url, a.title, a.published_at, a.language, a.text,
       a.author, a.canonical_url, a.feed, a.story_id, a.date_source,
       a.extractor_version, a.extracted_at, p.fetched_at
FROM article_texts a LEFT JOIN pages p USING (url);
