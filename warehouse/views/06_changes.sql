-- changes: stated-position and aid-amount changes in publication order (retracted ones hidden).
-- Amounts are in their own currencies: old_amount in old_currency, new_amount in currency.
CREATE OR REPLACE VIEW changes AS
SELECT change_id, kind, actor_group, subject, old_value, new_value, old_amount, new_amount,
       currency, old_url, new_url, old_published_at, new_published_at,
       old_evidence, new_evidence, detected_at, old_currency, relative_change
FROM change_log
WHERE retracted_at IS NULL
ORDER BY new_published_at, new_url, kind, change_id;
