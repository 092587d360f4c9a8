-- events: every pledge, position and meeting/negotiation round as one event stream.
CREATE OR REPLACE VIEW events AS
SELECT 'pledge' AS event_type, p.url, p.published_at, CAST(p.published_at AS DATE) AS event_date,
       [p.donor, p.recipient] AS participants, NULL::VARCHAR[] AS people, NULL::VARCHAR AS location,
       NULL::VARCHAR AS topic, NULL::VARCHAR AS stance, p.amount, p.currency, p.evidence, p.claim_id
FROM aid_pledges p
UNION ALL
SELECT 'position', s.url, s.published_at, CAST(s.published_at AS DATE),
       [s.actor_group], [s.actor], NULL, s.topic, s.stance, NULL, NULL, s.evidence, s.claim_id
FROM positions s
UNION ALL
SELECT m.event_type, m.url, a.published_at, coalesce(m.event_date, CAST(a.published_at AS DATE)),
       m.participants, m.people, m.location, NULL, NULL, NULL, NULL, trim(m.evidence, E' \t\r\n'), m.claim_id
FROM meeting_claims m JOIN article_texts a USING (url);

COMMENT ON VIEW events IS 'Pledges, positions, meetings and rounds of talks as one stream of dated events.';
COMMENT ON COLUMN events.event_type IS 'pledge, position, meeting or talks.';
COMMENT ON COLUMN events.url IS 'The article (articles.url).';
COMMENT ON COLUMN events.published_at IS 'Publication time of the article.';
COMMENT ON COLUMN events.event_date IS 'Day of the event: the date the sentence gives, else the publication day.';
COMMENT ON COLUMN events.participants IS 'Canonical states/organisations taking part (pledge: [donor, recipient]).';
COMMENT ON COLUMN events.people IS 'Canonical names of the people taking part (position: the actor).';
COMMENT ON COLUMN events.location IS 'Where a meeting or round of talks took place.';
COMMENT ON COLUMN events.topic IS 'Topic id of a position.';
COMMENT ON COLUMN events.stance IS 'Stance of a position.';
COMMENT ON COLUMN events.amount IS 'Amount of a pledge, in currency units.';
COMMENT ON COLUMN events.currency IS 'ISO 4217 code of a pledge''s amount.';
COMMENT ON COLUMN events.evidence IS 'The sentence stating the event, trimmed.';
COMMENT ON COLUMN events.claim_id IS 'Stable id of the claim behind the event.';
