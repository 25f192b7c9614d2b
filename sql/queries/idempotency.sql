-- Idempotent creates: a Create RPC with a request_id claims the key in its own
-- transaction. A concurrent retry blocks on the key until the first commits, then
-- finds the resource the first call made.

-- name: claim_request_id
INSERT INTO idempotency_keys (merchant_id, scope, request_id)
VALUES (%(merchant_id)s, %(scope)s, %(request_id)s)
ON CONFLICT DO NOTHING
RETURNING request_id;

-- name: get_request_id
SELECT resource_id FROM idempotency_keys
 WHERE merchant_id = %(merchant_id)s AND scope = %(scope)s AND request_id = %(request_id)s;

-- name: record_request_id
UPDATE idempotency_keys SET resource_id = %(resource_id)s
 WHERE merchant_id = %(merchant_id)s AND scope = %(scope)s AND request_id = %(request_id)s;
