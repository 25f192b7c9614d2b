-- The per-account DM budget (see migration 0002). Limits come from the account's
-- settings (dm_budget.per_15_minutes / per_24_hours); 0 or unset means X's defaults.

-- name: ensure_budget_row
INSERT INTO account_dm_budget (merchant_id, account_id)
VALUES (%(merchant_id)s, %(account_id)s)
ON CONFLICT (account_id) DO NOTHING;

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

-- name: reserve_dms
-- Spends up to %(want)s DMs at once, as many as both windows allow (a window that
-- has run out starts afresh at now()). The row is locked first, so concurrent
-- reservations from any number of processes add up exactly. Returns no row when
-- nothing is left (or the budget row does not exist); else how many were granted,
-- the windows they were counted in, and the seconds until the earlier of the two
-- windows ends (units must be used before then: they count in these windows).
WITH lim AS (
  SELECT coalesce(nullif((settings -> 'dm_budget' ->> 'per_15_minutes')::int, 0), %(default_15)s) AS l15,
         coalesce(nullif((settings -> 'dm_budget' ->> 'per_24_hours')::int, 0), %(default_24)s) AS l24
    FROM accounts WHERE merchant_id = %(merchant_id)s AND id = %(account_id)s
), cur AS (
  SELECT b.account_id,
         now() >= b.w15_start + interval '15 minutes' AS new15,
         now() >= b.w24_start + interval '24 hours' AS new24,
         b.w15_start, b.w15_count, b.w24_start, b.w24_count, lim.l15, lim.l24
    FROM account_dm_budget b, lim
   WHERE b.merchant_id = %(merchant_id)s AND b.account_id = %(account_id)s
     FOR UPDATE OF b
), g AS (
  SELECT cur.*,
         least(%(want)s::int,
               cur.l15 - CASE WHEN cur.new15 THEN 0 ELSE cur.w15_count END,
               cur.l24 - CASE WHEN cur.new24 THEN 0 ELSE cur.w24_count END) AS n
    FROM cur
)
UPDATE account_dm_budget b SET
  w15_start = CASE WHEN g.new15 THEN now() ELSE g.w15_start END,
  w15_count = CASE WHEN g.new15 THEN 0 ELSE g.w15_count END + g.n,
  w24_start = CASE WHEN g.new24 THEN now() ELSE g.w24_start END,
  w24_count = CASE WHEN g.new24 THEN 0 ELSE g.w24_count END + g.n
  FROM g
 WHERE b.merchant_id = %(merchant_id)s AND b.account_id = g.account_id AND g.n > 0
RETURNING g.n AS granted, b.w15_start, b.w24_start,
  extract(epoch FROM least(b.w15_start + interval '15 minutes',
                           b.w24_start + interval '24 hours') - now())::float8 AS seconds_left;

-- name: return_dms
-- Gives back %(n)s reserved DMs that were never sent, to each window only while
-- it is still the window they were counted in.
UPDATE account_dm_budget SET
  w15_count = CASE WHEN w15_start = %(w15_start)s THEN greatest(0, w15_count - %(n)s)
                   ELSE w15_count END,
  w24_count = CASE WHEN w24_start = %(w24_start)s THEN greatest(0, w24_count - %(n)s)
                   ELSE w24_count END
 WHERE merchant_id = %(merchant_id)s AND account_id = %(account_id)s;

-- name: budget_left
-- How many DMs the account may still send now, by its DM budget windows.
WITH lim AS (
  SELECT coalesce(nullif((settings -> 'dm_budget' ->> 'per_15_minutes')::int, 0), %(default_15)s) AS l15,
         coalesce(nullif((settings -> 'dm_budget' ->> 'per_24_hours')::int, 0), %(default_24)s) AS l24
    FROM accounts WHERE merchant_id = %(merchant_id)s AND id = %(account_id)s
)
SELECT least(
         CASE WHEN b.w15_start IS NULL OR now() >= b.w15_start + interval '15 minutes'
              THEN lim.l15 ELSE lim.l15 - b.w15_count END,
         CASE WHEN b.w24_start IS NULL OR now() >= b.w24_start + interval '24 hours'
              THEN lim.l24 ELSE lim.l24 - b.w24_count END) AS left_now,
       greatest(
         CASE WHEN b.w15_count >= lim.l15 AND now() < b.w15_start + interval '15 minutes'
              THEN b.w15_start + interval '15 minutes' END,
         CASE WHEN b.w24_count >= lim.l24 AND now() < b.w24_start + interval '24 hours'
              THEN b.w24_start + interval '24 hours' END) AS reset_at
  FROM lim LEFT JOIN account_dm_budget b
    ON b.merchant_id = %(merchant_id)s AND b.account_id = %(account_id)s;
