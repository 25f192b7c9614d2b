-- Merchant-wide settings (sql/migrations/0009_merchant_settings.sql).

-- name: get_settings
SELECT * FROM merchant_settings WHERE merchant_id = %(merchant_id)s;

-- name: get_settings_for_update
SELECT * FROM merchant_settings WHERE merchant_id = %(merchant_id)s FOR UPDATE;

-- name: ensure_settings
-- The defaults row, so an update can lock it.
INSERT INTO merchant_settings (merchant_id) VALUES (%(merchant_id)s)
ON CONFLICT (merchant_id) DO NOTHING;

-- name: set_time_zone
UPDATE merchant_settings
   SET time_zone = %(time_zone)s, version = version + 1, updated_at = now()
 WHERE merchant_id = %(merchant_id)s
RETURNING *;

-- name: set_rate_limit
-- The operator's override; NULLs return the merchant to the service default.
INSERT INTO merchant_settings (merchant_id, rate_limit_per_minute, rate_limit_burst, version)
VALUES (%(merchant_id)s, %(per_minute)s, %(burst)s, 1)
ON CONFLICT (merchant_id) DO UPDATE
   SET rate_limit_per_minute = EXCLUDED.rate_limit_per_minute,
       rate_limit_burst = EXCLUDED.rate_limit_burst,
       version = merchant_settings.version + 1, updated_at = now()
RETURNING *;

-- name: rate_limit_overrides
-- Cross-merchant: every operator override, for the rate limiter's cache.
/* cross-tenant: the limiter loads every merchant's override at once */
SELECT merchant_id, rate_limit_per_minute, rate_limit_burst FROM merchant_settings
 WHERE rate_limit_per_minute IS NOT NULL;
