-- positions: an actor's stance on a topic (see config/topics.yaml), with evidence.
CREATE OR REPLACE VIEW positions AS
SELECT c.url, a.published_at, c.actor, c.actor_group, c.topic, c.stance, c.evidence,
       c.cue, c.start_char, c.end_char, c.sentence_index, c.claim_id, a.story_id,
       c.extractor_version
FROM position_claims c JOIN article_texts a USING (url);
