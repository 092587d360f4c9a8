-- current_pledges: the standing pledge per (donor, recipient, kind): the amount of the
-- latest statement, the pledge it replaced and the evidence of both. A revision replaces,
-- a repetition confirms: SUM(amount_eur) over this view counts each pledge once.
-- As in change detection, only the first-published copy of a syndicated story counts.
-- pledges_as_of(TIMESTAMP) gives the same as it stood at a time (statements published before it).
CREATE OR REPLACE MACRO pledges_as_of(moment) AS TABLE
WITH counted AS (
    SELECT url FROM (
        SELECT url, row_number() OVER (PARTITION BY coalesce(story_id, url)
                                       ORDER BY published_at NULLS LAST, url) AS copy
        FROM article_texts)
    WHERE copy = 1
), statements AS (
    SELECT p.*, row_number() OVER w AS seq, count(*) OVER (PARTITION BY donor, recipient, kind) AS n
    FROM aid_pledges p SEMI JOIN counted USING (url)
    WHERE moment IS NULL OR p.published_at < CAST(moment AS TIMESTAMPTZ)
    WINDOW w AS (PARTITION BY donor, recipient, kind
                 ORDER BY published_at NULLS LAST, url, sentence_index, claim_id)
), latest AS (
    SELECT * FROM statements WHERE seq = n
), replaced AS (
    -- the last statement of another amount before the current one (a repetition is no replacement)
    SELECT l.claim_id AS current_claim, arg_max(s, s.seq) AS r
    FROM latest l JOIN statements s
      ON s.donor = l.donor AND s.recipient = l.recipient AND s.kind = l.kind AND s.seq < l.seq
     AND (s.amount <> l.amount OR s.currency <> l.currency)
    GROUP BY l.claim_id
), since AS (
    -- the first statement of the current amount after the pledge it replaced
    SELECT l.claim_id AS current_claim, min(s.published_at) AS since, count(*) AS confirmations
    FROM latest l JOIN statements s
      ON s.donor = l.donor AND s.recipient = l.recipient AND s.kind = l.kind
     AND s.amount = l.amount AND s.currency = l.currency
    LEFT JOIN replaced r ON r.current_claim = l.claim_id
    WHERE r.r IS NULL OR s.seq > r.r.seq
    GROUP BY l.claim_id
)
SELECT l.donor, l.recipient, l.kind, l.amount, l.currency, l.amount_eur, l.qualifier,
       l.published_at, l.url, l.evidence, l.claim_id,
       s.since AS standing_since, s.confirmations, l.n AS statements,
       coalesce(r.r.amount, l.previous_amount) AS replaced_amount,
       CASE WHEN r.r IS NOT NULL THEN r.r.currency WHEN l.previous_amount IS NOT NULL THEN l.currency END
           AS replaced_currency,
       CASE WHEN r.r IS NOT NULL THEN r.r.amount_eur
            WHEN l.previous_amount IS NOT NULL AND l.amount <> 0 THEN l.previous_amount * l.amount_eur / l.amount
       END AS replaced_amount_eur,
       CASE WHEN r.r IS NOT NULL THEN r.r.published_at WHEN l.previous_amount IS NOT NULL THEN l.published_at END
           AS replaced_published_at,
       CASE WHEN r.r IS NOT NULL THEN r.r.url WHEN l.previous_amount IS NOT NULL THEN l.url END AS replaced_url,
       CASE WHEN r.r IS NOT NULL THEN r.r.evidence WHEN l.previous_amount IS NOT NULL THEN l.evidence END
           AS replaced_evidence
FROM latest l
LEFT JOIN replaced r ON r.current_claim = l.claim_id
LEFT JOIN since s ON s.current_claim = l.claim_id
ORDER BY l.donor, l.recipient, l.kind;

CREATE OR REPLACE VIEW current_pledges AS SELECT * FROM pledges_as_of(NULL);

COMMENT ON MACRO TABLE pledges_as_of IS 'The current_pledges of a past moment: SELECT * FROM pledges_as_of(TIMESTAMPTZ ''2025-12-01 00:00+00'') counts only statements published before it.';

COMMENT ON VIEW current_pledges IS 'The standing pledge per donor, recipient and kind (the latest statement wins), with the pledge it replaced. SUM(amount_eur) here counts a revised pledge once.';
COMMENT ON COLUMN current_pledges.donor IS 'Canonical name of the state or organisation pledging.';
COMMENT ON COLUMN current_pledges.recipient IS 'Canonical name of the recipient.';
COMMENT ON COLUMN current_pledges.kind IS 'military, financial, humanitarian or unspecified.';
COMMENT ON COLUMN current_pledges.amount IS 'The current amount, in currency units (of the latest statement).';
COMMENT ON COLUMN current_pledges.currency IS 'ISO 4217 code of amount.';
COMMENT ON COLUMN current_pledges.amount_eur IS 'amount in EUR (reference rates of config fx.yaml; approximate).';
COMMENT ON COLUMN current_pledges.qualifier IS 'up_to, approx or at_least when the latest statement hedges the amount.';
COMMENT ON COLUMN current_pledges.published_at IS 'Publication time of the latest statement.';
COMMENT ON COLUMN current_pledges.url IS 'Article of the latest statement.';
COMMENT ON COLUMN current_pledges.evidence IS 'Sentence of the latest statement.';
COMMENT ON COLUMN current_pledges.claim_id IS 'Claim id of the latest statement (aid_pledges.claim_id).';
COMMENT ON COLUMN current_pledges.standing_since IS 'Publication time of the first statement of the current amount.';
COMMENT ON COLUMN current_pledges.confirmations IS 'Statements of the current amount since it replaced the previous one.';
COMMENT ON COLUMN current_pledges.statements IS 'All statements of a pledge by this donor to this recipient of this kind.';
COMMENT ON COLUMN current_pledges.replaced_amount IS 'The amount the current one replaced (the last other amount stated before, else the previous amount the sentence names); NULL for a first pledge.';
COMMENT ON COLUMN current_pledges.replaced_currency IS 'ISO 4217 code of replaced_amount.';
COMMENT ON COLUMN current_pledges.replaced_amount_eur IS 'replaced_amount in EUR.';
COMMENT ON COLUMN current_pledges.replaced_published_at IS 'Publication time of the statement of the replaced amount.';
COMMENT ON COLUMN current_pledges.replaced_url IS 'Article stating the replaced amount.';
COMMENT ON COLUMN current_pledges.replaced_evidence IS 'Sentence stating the replaced amount.';
