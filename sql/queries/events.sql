-- The domain event outbox. Every event is written in the transaction of the change
-- it describes; pg_notify is transactional too, so listeners hear of it only after
-- the commit.

-- name: append_event
-- The transaction id is taken before the event id (the MATERIALIZED CTE runs first),
-- so every event id is handed out by a transaction that already has its id: the
-- outbox consumers' settling rule (consumer_horizon below) relies on it.
WITH me AS MATERIALIZED (
  SELECT pg_current_xact_id() AS tx
), ev AS (
  INSERT INTO domain_events (merchant_id, type, aggregate_id, payload, tx)
  SELECT %(merchant_id)s::uuid, %(type)s::text, %(aggregate_id)s::uuid, %(payload)s::jsonb,
         me.tx
    FROM me
  RETURNING id, merchant_id, type
)
SELECT ev.id, pg_notify('mktx_events', ev.merchant_id::text || ':' || ev.id::text || ':' || ev.type)
  FROM ev;

-- name: append_events
-- append_event for many events (%(rows)s: a JSON array of {merchant_id, type,
-- aggregate_id, payload}) in one statement: the same rows and the same NOTIFY per
-- event, in the given order. Like append_event, the transaction id is taken
-- (MATERIALIZED CTE) before any event id, which the consumers' settling rule relies on.
WITH me AS MATERIALIZED (
  SELECT pg_current_xact_id() AS tx
), ev AS (
  INSERT INTO domain_events (merchant_id, type, aggregate_id, payload, tx)
  SELECT d.merchant_id, d.type, d.aggregate_id, d.payload, me.tx
    FROM me, ROWS FROM (jsonb_to_recordset(%(rows)s::jsonb)
                        AS (merchant_id uuid, type text, aggregate_id uuid, payload jsonb))
         WITH ORDINALITY AS d(merchant_id, type, aggregate_id, payload, n)
   ORDER BY d.n
  RETURNING id, merchant_id, type
)
SELECT count(pg_notify('mktx_events', ev.merchant_id::text || ':' || ev.id::text || ':' || ev.type))
  FROM ev;

-- name: events_after
SELECT id, merchant_id, type, aggregate_id, payload, created_at
  FROM domain_events
 WHERE merchant_id = %(merchant_id)s AND id > %(after_id)s
 ORDER BY id
 LIMIT %(limit)s;

-- ---------------------------------------------------------------- consumers
-- Named consumers of the outbox (worker/consumer.py), each with a durable cursor in
-- event_consumer_cursors. These read across merchants by design.

-- name: ensure_cursor
INSERT INTO event_consumer_cursors (consumer) VALUES (%(consumer)s)
ON CONFLICT (consumer) DO NOTHING;

-- name: consumer_horizon
-- The first statement of a consumer's pass, while its transaction has no id yet: the
-- highest event id handed out so far, committed or not, and the oldest transaction
-- still running anywhere on the server. Every id up to `allocated` was handed out
-- by a transaction whose id is lower than the one this pass is about to take (see
-- claim_cursor); once `xmin` has passed that id in a later pass, all of them have
-- committed or rolled back, so none can still appear below an event consumed.
SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS allocated,
       pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin
  FROM domain_events_id_seq;

-- name: commit_without_flush
-- This transaction's commit does not wait for its WAL flush (store.events).
SET LOCAL synchronous_commit TO off;

-- name: claim_cursor
-- One pass of a consumer at a time across processes: a cursor another pass holds is
-- skipped. The row lock gives the pass its transaction id, returned as `xid`.
SELECT last_event_id, pg_current_xact_id()::text::bigint AS xid
  FROM event_consumer_cursors
 WHERE consumer = %(consumer)s
   FOR UPDATE SKIP LOCKED;

-- name: advance_cursor
UPDATE event_consumer_cursors SET last_event_id = %(last_event_id)s, updated_at = now()
 WHERE consumer = %(consumer)s;

-- name: get_cursor
SELECT consumer, last_event_id, updated_at FROM event_consumer_cursors
 WHERE consumer = %(consumer)s;

-- name: events_for_consumer
-- Cross-merchant, in id order, optionally of some types only. `settled` is false
-- past the id through which every event is known to be final (see consumer_horizon):
-- a lower id may still commit there, so the consumer stops before it and looks
-- again shortly. Only the first such event is returned (the consumer stops there
-- anyway), so a busy outbox's unsettled events are not read and decoded on every
-- pass. `age_s` is how long ago the event's transaction started.
SELECT id, merchant_id, type, aggregate_id, payload, created_at,
       id <= %(settled_through)s AS settled,
       extract(epoch FROM clock_timestamp() - created_at)::float8 AS age_s
  FROM ((SELECT * FROM domain_events
          WHERE id > %(after_id)s AND id <= %(settled_through)s
            AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
          ORDER BY id
          LIMIT %(limit)s)
        UNION ALL
        (SELECT * FROM domain_events
          WHERE id > greatest(%(after_id)s, %(settled_through)s)
            AND (%(types)s::text[] IS NULL OR type = ANY(%(types)s::text[]))
          ORDER BY id
          LIMIT 1)) e
 ORDER BY id
 LIMIT %(limit)s;

-- name: retrying_failure
-- The event a consumer is retrying (held in order; at most one at a time).
SELECT event_id, attempts, retry_at, retry_at > now() AS waiting,
       extract(epoch FROM retry_at - now())::float8 AS wait_s
  FROM event_consumer_failures
 WHERE consumer = %(consumer)s AND parked_at IS NULL AND event_id > %(after_id)s
 ORDER BY event_id
 LIMIT 1;

-- name: record_failure
-- A handler failed on an event: count the attempt, then either schedule the next one
-- (after %(backoff)s) or park the event (a dead letter) so the consumer moves on.
INSERT INTO event_consumer_failures AS f
       (consumer, event_id, merchant_id, event_type, attempts, reason, retry_at, parked_at)
VALUES (%(consumer)s, %(event_id)s, %(merchant_id)s, %(event_type)s, %(attempts)s,
        left(%(reason)s, 2000),
        CASE WHEN %(park)s THEN NULL ELSE now() + %(backoff)s::interval END,
        CASE WHEN %(park)s THEN now() END)
ON CONFLICT (consumer, event_id) DO UPDATE
   SET attempts = EXCLUDED.attempts, reason = EXCLUDED.reason, last_failed_at = now(),
       retry_at = EXCLUDED.retry_at, parked_at = EXCLUDED.parked_at;

-- name: clear_failure
-- A retried event went through.
DELETE FROM event_consumer_failures
 WHERE consumer = %(consumer)s AND event_id = %(event_id)s AND parked_at IS NULL;

-- name: parked_events
-- The dead letters of a consumer, oldest event first.
SELECT f.consumer, f.event_id, f.merchant_id, f.event_type, f.attempts, f.reason,
       f.first_failed_at, f.last_failed_at, f.parked_at
  FROM event_consumer_failures f
 WHERE f.consumer = %(consumer)s AND f.parked_at IS NOT NULL AND f.event_id > %(after_id)s
 ORDER BY f.event_id
 LIMIT %(limit)s;
