-- Named queries for connected X accounts. Every statement filters on merchant_id,
-- except the webhook routing lookup by X user id (see accounts_live_x_user).

-- name: insert_account
INSERT INTO accounts (id, merchant_id, x_user_id, username, display_name, profile_image_url,
                      followers_count, status, auth_method, scopes, access_token_enc,
                      token_secret_enc, refresh_token_enc, token_expires_at, settings)
VALUES (%(id)s, %(merchant_id)s, %(x_user_id)s, %(username)s, %(display_name)s, %(profile_image_url)s,
        %(followers_count)s, %(status)s, %(auth_method)s, %(scopes)s, %(access_token_enc)s,
        %(token_secret_enc)s, %(refresh_token_enc)s, %(token_expires_at)s, %(settings)s)
RETURNING *;

-- name: get_account
SELECT * FROM accounts WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: get_account_for_update
SELECT * FROM accounts WHERE merchant_id = %(merchant_id)s AND id = %(id)s FOR UPDATE;

-- name: list_accounts
SELECT * FROM accounts
 WHERE merchant_id = %(merchant_id)s
   AND (%(status)s::text IS NULL OR status = %(status)s)
   AND (%(after_created)s::timestamptz IS NULL
        OR (created_at, id) < (%(after_created)s, %(after_id)s::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: update_account_settings
UPDATE accounts SET settings = %(settings)s, updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s
RETURNING *;

-- name: disconnect_account
-- Tokens are erased, not just flagged: a disconnected account holds no credentials.
UPDATE accounts
   SET status = 'DISCONNECTED', status_reason = '', access_token_enc = NULL,
       token_secret_enc = NULL, refresh_token_enc = NULL, token_expires_at = NULL,
       webhook_subscribed = false, updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s
RETURNING *;

-- name: account_statistics
SELECT
  (SELECT count(*) FROM contacts c
    WHERE c.merchant_id = %(merchant_id)s AND c.account_id = %(id)s) AS contacts,
  (SELECT count(*) FROM conversations v
    WHERE v.merchant_id = %(merchant_id)s AND v.account_id = %(id)s) AS conversations,
  (SELECT count(*) FROM conversations v
    WHERE v.merchant_id = %(merchant_id)s AND v.account_id = %(id)s
      AND v.status IN ('OPEN', 'PENDING')) AS open_conversations,
  (SELECT count(*) FILTER (WHERE m.direction = 'OUTBOUND')
     FROM messages m JOIN conversations v ON v.id = m.conversation_id
    WHERE m.merchant_id = %(merchant_id)s AND v.merchant_id = %(merchant_id)s
      AND v.account_id = %(id)s AND m.created_at >= %(month_start)s) AS sent,
  (SELECT count(*) FILTER (WHERE m.direction = 'INBOUND')
     FROM messages m JOIN conversations v ON v.id = m.conversation_id
    WHERE m.merchant_id = %(merchant_id)s AND v.merchant_id = %(merchant_id)s
      AND v.account_id = %(id)s AND m.created_at >= %(month_start)s) AS received;

-- name: find_live_by_x_user
/* cross-tenant: one live account per X user across merchants (accounts_live_x_user) */
SELECT * FROM accounts WHERE x_user_id = %(x_user_id)s AND status <> 'DISCONNECTED' FOR UPDATE;

-- name: reconnect_account
UPDATE accounts
   SET username = %(username)s, display_name = %(display_name)s,
       profile_image_url = %(profile_image_url)s, followers_count = %(followers_count)s,
       status = 'ACTIVE', status_reason = '', auth_method = %(auth_method)s, scopes = %(scopes)s,
       access_token_enc = %(access_token_enc)s, token_secret_enc = %(token_secret_enc)s,
       refresh_token_enc = %(refresh_token_enc)s, token_expires_at = %(token_expires_at)s,
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s
RETURNING *;

-- name: store_refreshed_tokens
-- Rotating refresh tokens: the new pair replaces the old one in one statement.
UPDATE accounts
   SET access_token_enc = %(access_token_enc)s, refresh_token_enc = %(refresh_token_enc)s,
       token_expires_at = %(token_expires_at)s, scopes = %(scopes)s,
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s
RETURNING *;

-- name: mark_account_error
-- X refused the account's tokens: no events arrive for it any more either (X drops
-- the subscriptions of a user who revoked the app), so it no longer claims to be
-- subscribed; reconnecting and RegisterWebhook subscribe it again.
UPDATE accounts SET status = 'ERROR', status_reason = %(reason)s, webhook_subscribed = false,
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND status IN ('ACTIVE', 'INACTIVE', 'PENDING')
RETURNING *;

-- name: set_account_webhook
UPDATE accounts SET webhook_id = %(webhook_id)s, webhook_url = %(webhook_url)s,
       webhook_subscribed = %(subscribed)s, webhook_validated_at = %(validated_at)s,
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s
RETURNING *;

-- name: accounts_due_for_refresh
/* cross-tenant: the worker refreshes every merchant's expiring OAuth 2.0 tokens */
SELECT merchant_id, id FROM accounts
 WHERE status = 'ACTIVE' AND auth_method = 'OAUTH2'
   AND token_expires_at < now() + make_interval(secs => %(within_seconds)s)
 ORDER BY token_expires_at
 LIMIT %(limit)s;

-- name: insert_pending_connection
INSERT INTO oauth_connections (state, merchant_id, auth_method, callback_uri, scopes,
                               request_token, request_secret_enc, code_verifier_enc, expires_at)
VALUES (%(state)s, %(merchant_id)s, %(auth_method)s, %(callback_uri)s, %(scopes)s,
        %(request_token)s, %(request_secret_enc)s, %(code_verifier_enc)s, %(expires_at)s);

-- name: claim_pending_connection
-- Single use: the row is taken by exactly one CompleteConnection.
DELETE FROM oauth_connections
 WHERE state = %(state)s AND merchant_id = %(merchant_id)s
RETURNING *;

-- name: restore_pending_connection
INSERT INTO oauth_connections (state, merchant_id, auth_method, callback_uri, scopes,
                               request_token, request_secret_enc, code_verifier_enc, expires_at,
                               created_at)
VALUES (%(state)s, %(merchant_id)s, %(auth_method)s, %(callback_uri)s, %(scopes)s,
        %(request_token)s, %(request_secret_enc)s, %(code_verifier_enc)s, %(expires_at)s,
        %(created_at)s)
ON CONFLICT (state) DO NOTHING;

-- name: purge_expired_connections
/* cross-tenant: housekeeping of abandoned connection attempts for every merchant */
DELETE FROM oauth_connections WHERE expires_at < now() - interval '1 hour';

-- name: subscribed_accounts_page
/* cross-tenant: the worker verifies every merchant's webhook subscriptions at X */
SELECT * FROM accounts
 WHERE status = 'ACTIVE' AND webhook_subscribed AND id > %(after_id)s
 ORDER BY id
 LIMIT %(limit)s;

-- name: mark_webhook_unsubscribed
-- X no longer has the account's webhook or subscription; events do not arrive.
UPDATE accounts SET webhook_subscribed = false, updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND webhook_subscribed
RETURNING *;
