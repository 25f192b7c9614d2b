-- The webhook inbox: raw X Account Activity events, committed before the sidecar
-- answers 200 and processed (then retried) from here. Rows are keyed by
-- event_key (see mktx_grpc.webhooks.events.event_key) so redelivery and replay
-- insert nothing. This table is routed by X user id, not merchant: the merchant is
-- only known once for_user_id is resolved to an account.

-- name: insert_events
-- One statement per delivery: parallel arrays unnested into rows. New rows become
-- due for the retry loop only after %(claim_delay)s seconds, leaving them to the
-- sidecar's own processor first.
INSERT INTO webhook_inbox (event_key, for_user_id, event_type, payload, next_attempt_at)
SELECT k, u, t, p::jsonb, now() + make_interval(secs => %(claim_delay)s)
  FROM unnest(%(keys)s::text[], %(for_user_ids)s::text[], %(types)s::text[],
              %(payloads)s::text[]) AS e(k, u, t, p)
ON CONFLICT (event_key) DO NOTHING
RETURNING id, event_key, received_at;

-- name: insert_dead_delivery
-- A signed delivery whose content cannot be stored as jsonb: kept as received
-- (raw_body), finished at once as DEAD with its reason. Redelivery of the same
-- bytes inserts nothing (the key is a hash of the body).
INSERT INTO webhook_inbox (event_key, for_user_id, event_type, payload, raw_body,
                           outcome, processed_at, last_error)
VALUES (%(key)s, %(for_user_id)s, %(event_type)s, NULL, %(raw_body)s,
        'DEAD', now(), %(reason)s)
ON CONFLICT (event_key) DO NOTHING
RETURNING id;

-- name: claim_by_ids
-- Lock the given pending rows for this transaction; rows another process holds or
-- that are already finished are skipped.
SELECT id, attempts, received_at
  FROM webhook_inbox
 WHERE id = ANY(%(ids)s::bigint[]) AND processed_at IS NULL
 ORDER BY id
   FOR UPDATE SKIP LOCKED;

-- name: claim_by_ids_with_payload
SELECT id, event_key, for_user_id, event_type, payload, attempts, received_at
  FROM webhook_inbox
 WHERE id = ANY(%(ids)s::bigint[]) AND processed_at IS NULL
 ORDER BY id
   FOR UPDATE SKIP LOCKED;

-- name: claim_due
-- The retry loop's claim: due pending rows, oldest first, skipping rows another
-- process holds.
SELECT id, event_key, for_user_id, event_type, payload, attempts, received_at
  FROM webhook_inbox
 WHERE processed_at IS NULL AND next_attempt_at <= now()
 ORDER BY next_attempt_at
 LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED;

-- name: mark_finished
UPDATE webhook_inbox AS w
   SET processed_at = now(), outcome = f.outcome, attempts = w.attempts + 1,
       last_error = f.error
  FROM unnest(%(ids)s::bigint[], %(outcomes)s::text[], %(errors)s::text[]) AS f(id, outcome, error)
 WHERE w.id = f.id
RETURNING w.id, extract(epoch FROM w.processed_at - w.received_at)::float8 AS lag_seconds;

-- name: mark_failed
UPDATE webhook_inbox AS w
   SET attempts = w.attempts + 1, last_error = f.error,
       next_attempt_at = now() + make_interval(secs => f.delay)
  FROM unnest(%(ids)s::bigint[], %(errors)s::text[], %(delays)s::float8[]) AS f(id, error, delay)
 WHERE w.id = f.id;

-- name: pending_stats
SELECT count(*) AS pending,
       coalesce(extract(epoch FROM now() - min(received_at)), 0)::float8 AS oldest_age_seconds
  FROM webhook_inbox
 WHERE processed_at IS NULL;

-- name: accounts_by_x_user
-- Routing: for_user_id names at most one account that is not DISCONNECTED
-- (accounts_live_x_user), across all merchants.
/* cross-tenant: webhook routing by X user id, before the merchant is known */
SELECT id, merchant_id, x_user_id, status
  FROM accounts
 WHERE x_user_id = ANY(%(x_user_ids)s::text[]) AND status <> 'DISCONNECTED';
