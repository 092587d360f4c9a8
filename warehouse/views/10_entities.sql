-- entities: the catalog of known states, organisations, people and places (config
-- entities.yaml), with Wikidata ids and how often articles mention them.
CREATE OR REPLACE VIEW entities AS
WITH seen AS (
    SELECT entity, count(*) AS articles, sum(mentions) AS mentions FROM article_entities GROUP BY entity
)
SELECT e.entity, e.entity_type, e.wikidata_id,
       CASE WHEN e.wikidata_id IS NOT NULL THEN 'https://www.wikidata.org/wiki/' || e.wikidata_id END AS wikidata_url,
       e.actor_group, e.affiliation, e.country, e.aliases, e.demonyms, e.metonyms,
       coalesce(s.articles, 0) AS articles, coalesce(s.mentions, 0) AS mentions, e.source
FROM entity_catalog e LEFT JOIN seen s USING (entity)
ORDER BY e.entity_type, e.entity;

COMMENT ON VIEW entities IS 'Known states, organisations, people and places (the entities config), with Wikidata ids, the group each speaks for, and mention counts.';
COMMENT ON COLUMN entities.entity IS 'Canonical name, as in article_entities.entity, positions.actor and aid_pledges.donor.';
COMMENT ON COLUMN entities.entity_type IS 'country, organization, person or place.';
COMMENT ON COLUMN entities.wikidata_id IS 'Wikidata item id (Q...), where the config gives one.';
COMMENT ON COLUMN entities.wikidata_url IS 'Link to the Wikidata item.';
COMMENT ON COLUMN entities.actor_group IS 'The state or organisation whose position the entity states (positions.actor_group).';
COMMENT ON COLUMN entities.affiliation IS 'People and bodies: the state or organisation they belong to.';
COMMENT ON COLUMN entities.country IS 'Places: the state they are in.';
COMMENT ON COLUMN entities.aliases IS 'Other names the miner recognises.';
COMMENT ON COLUMN entities.demonyms IS 'Words naming the state acting (Ukrainian).';
COMMENT ON COLUMN entities.metonyms IS 'A capital or seat acting as speaker (Moscow, the Kremlin).';
COMMENT ON COLUMN entities.articles IS 'Articles mentioning the entity.';
COMMENT ON COLUMN entities.mentions IS 'Mentions across all articles.';
COMMENT ON COLUMN entities.source IS 'The config file that defines the entity.';
