-- article_entities: canonical entities found in each article, with their mention counts.
CREATE OR REPLACE VIEW article_entities AS
SELECT url, entity, any_value(entity_type) AS entity_type, any_value(wikidata_id) AS wikidata_id,
       any_value(actor_group) AS actor_group, count(*) AS mentions,
       min(start_char) AS first_offset, any_value(extractor_version) AS extractor_version
FROM mentions
GROUP BY url, entity;
