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
       m.participants, m.people, m.location, NULL, NULL, NULL, NULL, m.evidence, m.claim_id
FROM meeting_claims m JOIN article_texts a USING (url);
