-- positions: an actor's stance on a topic (see the topics view), with evidence.
CREATE OR REPLACE VIEW positions AS
SELECT c.url, a.published_at, c.actor, c.actor_group, c.topic, c.stance,
       trim(c.evidence, E' \t\r\n') AS evidence, c.cue,
       c.start_char + length(c.evidence) - length(ltrim(c.evidence, E' \t\r\n')) AS start_char,
       c.end_char - length(c.evidence) + length(rtrim(c.evidence, E' \t\r\n')) AS end_char,
       c.sentence_index, c.claim_id, a.story_id,
       c.extractor_version
FROM position_claims c JOIN article_texts a USING (url);

COMMENT ON VIEW positions IS 'Stated positions: an actor''s stance on a topic, with the sentence that states it.';
COMMENT ON COLUMN positions.url IS 'The article (articles.url).';
COMMENT ON COLUMN positions.published_at IS 'Publication time of the article.';
COMMENT ON COLUMN positions.actor IS 'Canonical name of who spoke (a person, state or organisation).';
COMMENT ON COLUMN positions.actor_group IS 'The state or organisation the actor speaks for (the actor itself for states and organisations).';
COMMENT ON COLUMN positions.topic IS 'Topic id (see the topics view for its description).';
COMMENT ON COLUMN positions.stance IS 'support, oppose, conditional or undecided.';
COMMENT ON COLUMN positions.evidence IS 'The sentence stating the position, trimmed.';
COMMENT ON COLUMN positions.cue IS 'The words that named the topic.';
COMMENT ON COLUMN positions.start_char IS 'Offset of evidence in articles.text.';
COMMENT ON COLUMN positions.end_char IS 'End offset (exclusive) of evidence in articles.text.';
COMMENT ON COLUMN positions.sentence_index IS 'Index of the sentence in the article.';
COMMENT ON COLUMN positions.claim_id IS 'Stable id of this claim.';
COMMENT ON COLUMN positions.story_id IS 'URL of the first copy of a syndicated story (NULL: a story of its own).';
COMMENT ON COLUMN positions.extractor_version IS 'Version of the miner that found the claim.';
