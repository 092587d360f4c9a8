-- changes: stated-position and aid-amount changes in publication order (retracted ones hidden).
-- Amounts are in their own currencies: old_amount in old_currency, new_amount in currency;
-- old_amount_eur and new_amount_eur put them on one scale, at the rate each claim's own
-- amount_eur used. aid_kind is the kind of the new pledge.
CREATE OR REPLACE VIEW changes AS
SELECT l.change_id, l.kind, l.actor_group, l.subject, l.old_value, l.new_value, l.old_amount, l.new_amount,
       l.currency, l.old_url, l.new_url, l.old_published_at, l.new_published_at,
       trim(l.old_evidence, E' \t\r\n') AS old_evidence, trim(l.new_evidence, E' \t\r\n') AS new_evidence,
       l.detected_at, l.old_currency, l.relative_change,
       n.kind AS aid_kind,
       CASE WHEN l.kind = 'aid' THEN
           CASE WHEN o.amount <> 0 AND o.currency = l.old_currency THEN l.old_amount * o.amount_eur / o.amount
                WHEN l.old_currency = 'EUR' THEN l.old_amount END END AS old_amount_eur,
       CASE WHEN l.kind = 'aid' THEN
           CASE WHEN n.amount <> 0 AND n.currency = l.currency THEN l.new_amount * n.amount_eur / n.amount
                WHEN l.currency = 'EUR' THEN l.new_amount END END AS new_amount_eur,
       round(100 * l.relative_change, 1) AS change_percent
FROM change_log l
LEFT JOIN pledge_claims n ON l.kind = 'aid' AND n.claim_id = l.new_claim_id
LEFT JOIN pledge_claims o ON l.kind = 'aid' AND o.claim_id = l.old_claim_id
WHERE l.retracted_at IS NULL
ORDER BY l.new_published_at, l.new_url, l.kind, l.change_id;

COMMENT ON VIEW changes IS 'Detected changes of a stated position (actor group, topic) or of a pledged amount (donor, recipient), in publication order; retracted ones hidden.';
COMMENT ON COLUMN changes.change_id IS 'Stable id of the change (a hash of what it says and where).';
COMMENT ON COLUMN changes.kind IS 'position or aid.';
COMMENT ON COLUMN changes.actor_group IS 'The state or organisation whose position changed; for aid the donor.';
COMMENT ON COLUMN changes.subject IS 'Topic id (position), or the recipient (aid).';
COMMENT ON COLUMN changes.old_value IS 'Stance before, or the amount before as text (EUR 4bn).';
COMMENT ON COLUMN changes.new_value IS 'Stance after, or the amount after as text.';
COMMENT ON COLUMN changes.old_amount IS 'Aid: amount before, in old_currency.';
COMMENT ON COLUMN changes.new_amount IS 'Aid: amount after, in currency.';
COMMENT ON COLUMN changes.currency IS 'Aid: ISO 4217 code of new_amount.';
COMMENT ON COLUMN changes.old_url IS 'Article stating the value before.';
COMMENT ON COLUMN changes.new_url IS 'Article stating the value after.';
COMMENT ON COLUMN changes.old_published_at IS 'Publication time of old_url.';
COMMENT ON COLUMN changes.new_published_at IS 'Publication time of new_url.';
COMMENT ON COLUMN changes.old_evidence IS 'Sentence stating the value before, trimmed.';
COMMENT ON COLUMN changes.new_evidence IS 'Sentence stating the value after, trimmed.';
COMMENT ON COLUMN changes.detected_at IS 'When newsmon first detected the change.';
COMMENT ON COLUMN changes.old_currency IS 'Aid: ISO 4217 code of old_amount.';
COMMENT ON COLUMN changes.relative_change IS 'Aid: (new - old) / old, in EUR when the currencies differ.';
COMMENT ON COLUMN changes.aid_kind IS 'Aid: kind of the new pledge (military, financial, humanitarian, unspecified).';
COMMENT ON COLUMN changes.old_amount_eur IS 'Aid: old_amount in EUR (reference rates of config fx.yaml; approximate).';
COMMENT ON COLUMN changes.new_amount_eur IS 'Aid: new_amount in EUR (reference rates of config fx.yaml; approximate).';
COMMENT ON COLUMN changes.change_percent IS 'Aid: relative_change in percent, one decimal.';
