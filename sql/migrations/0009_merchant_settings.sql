-- Settings that apply to a whole merchant (AccountSettings are per X account).
-- A merchant without a row has the defaults. time_zone is the merchant's own
-- (MerchantsService); the rate-limit override is the operator's (mktx-grpc
-- merchant-limits), NULL meaning the service default.
CREATE TABLE merchant_settings (
    merchant_id uuid PRIMARY KEY,
    time_zone text NOT NULL DEFAULT 'UTC',
    rate_limit_per_minute integer CHECK (rate_limit_per_minute > 0),
    rate_limit_burst integer CHECK (rate_limit_burst >= 0),
    -- 0 while the row holds only the defaults (as if there were no row).
    version integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
