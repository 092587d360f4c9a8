-- aid_pledges: who pledged how much to whom, with the sentence that says so.
-- Every statement of a pledge is a row: a pledge raised later, or repeated, has several.
-- For totals use current_pledges. Evidence is trimmed of surrounding whitespace (offsets follow).
CREATE OR REPLACE VIEW aid_pledges AS
SELECT c.url, a.published_at, c.donor, c.recipient, c.amount, c.currency, c.amount_eur,
       c.kind, c.previous_amount, c.low_amount, c.qualifier,
       trim(c.evidence, E' \t\r\n') AS evidence,
       c.start_char + length(c.evidence) - length(ltrim(c.evidence, E' \t\r\n')) AS start_char,
       c.end_char - length(c.evidence) + length(rtrim(c.evidence, E' \t\r\n')) AS end_char,
       c.sentence_index, c.money_text, c.claim_id, a.story_id,
       c.extractor_version
FROM pledge_claims c JOIN article_texts a USING (url);

COMMENT ON VIEW aid_pledges IS 'Every statement of an aid pledge, with its sentence. A revised or repeated pledge has several rows: SUM over current_pledges, not here.';
COMMENT ON COLUMN aid_pledges.url IS 'The article (articles.url).';
COMMENT ON COLUMN aid_pledges.published_at IS 'Publication time of the article.';
COMMENT ON COLUMN aid_pledges.donor IS 'Canonical name of the state or organisation pledging.';
COMMENT ON COLUMN aid_pledges.recipient IS 'Canonical name of the recipient.';
COMMENT ON COLUMN aid_pledges.amount IS 'Amount pledged, in currency units (the upper bound of a range).';
COMMENT ON COLUMN aid_pledges.currency IS 'ISO 4217 code of amount.';
COMMENT ON COLUMN aid_pledges.amount_eur IS 'amount in EUR at the reference rate of the publication date (config fx.yaml; approximate).';
COMMENT ON COLUMN aid_pledges.kind IS 'military, financial, humanitarian or unspecified.';
COMMENT ON COLUMN aid_pledges.previous_amount IS 'The earlier amount the sentence itself names ("raised from 2bn to 3bn"), same currency.';
COMMENT ON COLUMN aid_pledges.low_amount IS 'Lower bound when the sentence gives a range.';
COMMENT ON COLUMN aid_pledges.qualifier IS 'up_to, approx or at_least when the amount is hedged.';
COMMENT ON COLUMN aid_pledges.evidence IS 'The sentence stating the pledge, trimmed.';
COMMENT ON COLUMN aid_pledges.start_char IS 'Offset of evidence in articles.text.';
COMMENT ON COLUMN aid_pledges.end_char IS 'End offset (exclusive) of evidence in articles.text.';
COMMENT ON COLUMN aid_pledges.sentence_index IS 'Index of the sentence in the article.';
COMMENT ON COLUMN aid_pledges.money_text IS 'The money expression as written.';
COMMENT ON COLUMN aid_pledges.claim_id IS 'Stable id of this claim.';
COMMENT ON COLUMN aid_pledges.story_id IS 'URL of the first copy of a syndicated story (NULL: a story of its own).';
COMMENT ON COLUMN aid_pledges.extractor_version IS 'Version of the miner that found the claim.';
