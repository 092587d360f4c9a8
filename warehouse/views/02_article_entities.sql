-- article_entities: canonical entities found in each article, with their mention counts.
CREATE OR REPLACE VIEW article_entities AS
SELECT url, entity, any_value(entity_type) AS entity_type, any_value(wikidata_id) AS wikidata_id,
       any_value(actor_group) AS actor_group, count(*) AS mentions,
       min(start_char) AS first_offset, any_value(extractor_version) AS extractor_version
FROM mentions
GROUP BY url, entity;

COMMENT ON VIEW article_entities IS 'Canonical entities (states, organisations, people, places) mentioned in each article, with counts.';
COMMENT ON COLUMN article_entities.url IS 'The article (articles.url).';
COMMENT ON COLUMN article_entities.entity IS 'Canonical name (see the entities view for the catalog).';
COMMENT ON COLUMN article_entities.entity_type IS 'country, organization, person, place, or another spaCy label for entities outside the catalog.';
COMMENT ON COLUMN article_entities.wikidata_id IS 'Wikidata item id (Q...), when the catalog has one.';
COMMENT ON COLUMN article_entities.actor_group IS 'The state or organisation the entity speaks for.';
COMMENT ON COLUMN article_entities.mentions IS 'How many times the article mentions the entity.';
COMMENT ON COLUMN article_entities.first_offset IS 'Character offset of the first mention in articles.text.';
COMMENT ON COLUMN article_entities.extractor_version IS 'Version of the miner that found the mentions.';
