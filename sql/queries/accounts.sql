-- Named queries for connected X accounts. Every statement filters on merchant_id,
-- except the webhook routing lookup by X user id (see accounts_live_x_user).

-- name: insert_account
INSERT INTO accounts (merchant_id, x_user_id, username, display_name, profile_image_url,
                      followers_count, status, auth_method, scopes, access_token_enc,
                      token_secret_enc, refresh_token_enc, token_expires_at, settings)
VALUES (%(merchant_id)s, %(x_user_id)s, %(username)s, %(display_name)s, %(profile_image_url)s,
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
