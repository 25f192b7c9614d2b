-- The domain event outbox. Every event is written in the transaction of the change
-- it describes; pg_notify is transactional too, so listeners hear of it only after
-- the commit.

-- name: append_event
WITH ev AS (
  INSERT INTO domain_events (merchant_id, type, aggregate_id, payload)
  VALUES (%(merchant_id)s, %(type)s, %(aggregate_id)s, %(payload)s)
  RETURNING id, merchant_id
)
SELECT ev.id, pg_notify('mktx_events', ev.merchant_id::text || ':' || ev.id::text) FROM ev;

-- name: events_after
SELECT id, merchant_id, type, aggregate_id, payload, created_at
  FROM domain_events
 WHERE merchant_id = %(merchant_id)s AND id > %(after_id)s
 ORDER BY id
 LIMIT %(limit)s;
