-- aid_pledges: who pledged how much to whom, with the sentence that says so.
CREATE OR REPLACE VIEW aid_pledges AS
SELECT c.url, a.published_at, c.donor, c.recipient, c.amount, c.currency, c.amount_eur,
       c.kind, c.previous_amount, c.low_amount, c.qualifier, c.evidence,
       c.start_char, c.end_char, c.sentence_index, c.money_text, c.claim_id, a.story_id,
       c.extractor_version
FROM pledge_claims c JOIN article_texts a USING (url);
