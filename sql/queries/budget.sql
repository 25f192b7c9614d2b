-- The per-account DM budget (see migration 0002). Limits come from the account's
-- settings (dm_budget.per_15_minutes / per_24_hours); 0 or unset means X's defaults.

-- name: ensure_budget_row
INSERT INTO account_dm_budget (merchant_id, account_id)
VALUES (%(merchant_id)s, %(account_id)s)
ON CONFLICT (account_id) DO NOTHING;

-- name: spend_dm
-- Spends one DM if both windows allow it; returns no row when the budget is spent.
WITH lim AS (
  SELECT coalesce(nullif((settings -> 'dm_budget' ->> 'per_15_minutes')::int, 0), %(default_15)s) AS l15,
         coalesce(nullif((settings -> 'dm_budget' ->> 'per_24_hours')::int, 0), %(default_24)s) AS l24
    FROM accounts WHERE merchant_id = %(merchant_id)s AND id = %(account_id)s
)
UPDATE account_dm_budget b SET
  w15_start = CASE WHEN now() >= b.w15_start + interval '15 minutes' THEN now() ELSE b.w15_start END,
  w15_count = CASE WHEN now() >= b.w15_start + interval '15 minutes' THEN 1 ELSE b.w15_count + 1 END,
  w24_start = CASE WHEN now() >= b.w24_start + interval '24 hours' THEN now() ELSE b.w24_start END,
  w24_count = CASE WHEN now() >= b.w24_start + interval '24 hours' THEN 1 ELSE b.w24_count + 1 END
  FROM lim
 WHERE b.merchant_id = %(merchant_id)s AND b.account_id = %(account_id)s
   AND (now() >= b.w15_start + interval '15 minutes' OR b.w15_count < lim.l15)
   AND (now() >= b.w24_start + interval '24 hours' OR b.w24_count < lim.l24)
RETURNING b.w15_count, b.w24_count;

-- name: budget_reset_at
-- When the spent budget frees up again: the end of whichever window is full.
WITH lim AS (
  SELECT coalesce(nullif((settings -> 'dm_budget' ->> 'per_15_minutes')::int, 0), %(default_15)s) AS l15,
         coalesce(nullif((settings -> 'dm_budget' ->> 'per_24_hours')::int, 0), %(default_24)s) AS l24
    FROM accounts WHERE merchant_id = %(merchant_id)s AND id = %(account_id)s
)
SELECT greatest(
         CASE WHEN b.w15_count >= lim.l15 THEN b.w15_start + interval '15 minutes' END,
         CASE WHEN b.w24_count >= lim.l24 THEN b.w24_start + interval '24 hours' END,
         now()) AS reset_at
  FROM account_dm_budget b, lim
 WHERE b.merchant_id = %(merchant_id)s AND b.account_id = %(account_id)s;
