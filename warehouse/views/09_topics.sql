-- topics: the propositions newsmon tracks (config topics.yaml), with how often they were stated.
CREATE OR REPLACE VIEW topics AS
SELECT t.topic, t.description, t.implied_by_kinds,
       count(p.claim_id) AS positions, count(DISTINCT p.actor_group) AS actor_groups,
       max(p.published_at) AS last_stated_at, t.source
FROM topic_catalog t LEFT JOIN positions p USING (topic)
GROUP BY ALL
ORDER BY t.topic;

COMMENT ON VIEW topics IS 'The topics (propositions) whose stated positions newsmon tracks, from the topics config, with their descriptions.';
COMMENT ON COLUMN topics.topic IS 'Topic id, as in positions.topic and changes.subject.';
COMMENT ON COLUMN topics.description IS 'The proposition an actor supports or opposes, in words.';
COMMENT ON COLUMN topics.implied_by_kinds IS 'Aid kinds whose pledge also states support for the topic.';
COMMENT ON COLUMN topics.positions IS 'Positions stated on the topic so far.';
COMMENT ON COLUMN topics.actor_groups IS 'Distinct actor groups that stated one.';
COMMENT ON COLUMN topics.last_stated_at IS 'Publication time of the latest position on it.';
COMMENT ON COLUMN topics.source IS 'The config file that defines the topic.';
