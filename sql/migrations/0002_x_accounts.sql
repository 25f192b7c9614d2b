-- X connections: the per-account DM budget, shared by every sender.
--
-- Fixed windows like X's own (a window opens with its first send and resets after
-- its length), so one atomic UPDATE both checks and spends the budget, whatever
-- number of processes send for the account.
CREATE TABLE account_dm_budget (
    merchant_id   uuid        NOT NULL,
    account_id    uuid        PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    w15_start     timestamptz NOT NULL DEFAULT '-infinity',
    w15_count     integer     NOT NULL DEFAULT 0,
    w24_start     timestamptz NOT NULL DEFAULT '-infinity',
    w24_count     integer     NOT NULL DEFAULT 0
);
CREATE INDEX account_dm_budget_merchant ON account_dm_budget (merchant_id, account_id);

-- OAuth 2.0 tokens due for refresh, across merchants (the worker's refresh loop).
CREATE INDEX accounts_token_expiry ON accounts (token_expires_at)
    WHERE status = 'ACTIVE' AND auth_method = 'OAUTH2';
