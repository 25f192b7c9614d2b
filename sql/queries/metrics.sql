-- Named queries behind the operator metrics (/metrics). Each reads every merchant's
-- rows: the operator watches the whole service.

-- name: queue_depths
/* cross-tenant: operator metrics over every merchant's queues */
SELECT
  (SELECT count(*) FROM campaign_recipients r
     JOIN campaigns c ON c.merchant_id = r.merchant_id AND c.id = r.campaign_id
    WHERE c.status = 'RUNNING' AND r.state = 'QUEUED' AND r.ready_at <= now())
    AS campaign_recipients_due,
  (SELECT count(*) FROM campaign_recipients WHERE state = 'SENDING')
    AS campaign_recipients_sending,
  (SELECT count(*) FROM outbound_dms WHERE state = 'QUEUED') AS outbound_dms_queued,
  (SELECT count(*) FROM outbound_dms WHERE state = 'QUEUED' AND ready_at <= now())
    AS outbound_dms_due,
  (SELECT count(*) FROM webhook_inbox WHERE processed_at IS NULL) AS inbox_pending,
  (SELECT coalesce(extract(epoch FROM now() - min(received_at)), 0)::float8
     FROM webhook_inbox WHERE processed_at IS NULL) AS inbox_oldest_pending_age_seconds,
  (SELECT count(*) FROM webhook_inbox WHERE outcome = 'DEAD') AS inbox_dead,
  (SELECT coalesce(max(id), 0) FROM domain_events) AS newest_event_id,
  (SELECT count(*) FROM flow_executions WHERE due_at <= now()) AS flow_timers_due,
  (SELECT count(*) FROM flow_executions WHERE status = 'WAITING') AS flow_executions_waiting;

-- name: consumer_positions
/* cross-tenant: outbox consumers read every merchant's events */
SELECT k.consumer,
       k.last_event_id,
       coalesce((SELECT extract(epoch FROM now() - e.created_at)::float8
                   FROM domain_events e WHERE e.id > k.last_event_id
                  ORDER BY e.id LIMIT 1), 0) AS lag_seconds,
       (SELECT count(*) FROM event_consumer_failures f
         WHERE f.consumer = k.consumer AND f.parked_at IS NOT NULL) AS parked,
       (SELECT count(*) FROM event_consumer_failures f
         WHERE f.consumer = k.consumer AND f.parked_at IS NULL) AS retrying
  FROM event_consumer_cursors k
 ORDER BY k.consumer;

-- name: dm_budget_totals
/* cross-tenant: DM budget totals over every active account (one series, not one per account) */
WITH lim AS (
  SELECT a.merchant_id, a.id,
         coalesce(nullif((a.settings -> 'dm_budget' ->> 'per_15_minutes')::int, 0), %(default_15)s) AS l15,
         coalesce(nullif((a.settings -> 'dm_budget' ->> 'per_24_hours')::int, 0), %(default_24)s) AS l24
    FROM accounts a WHERE a.status = 'ACTIVE'
), left_now AS (
  SELECT greatest(0, least(
           CASE WHEN b.w15_start IS NULL OR now() >= b.w15_start + interval '15 minutes'
                THEN lim.l15 ELSE lim.l15 - b.w15_count END,
           CASE WHEN b.w24_start IS NULL OR now() >= b.w24_start + interval '24 hours'
                THEN lim.l24 ELSE lim.l24 - b.w24_count END)) AS n
    FROM lim LEFT JOIN account_dm_budget b
      ON b.merchant_id = lim.merchant_id AND b.account_id = lim.id
)
SELECT count(*) AS accounts,
       coalesce(sum(n), 0)::bigint AS remaining,
       count(*) FILTER (WHERE n = 0) AS exhausted
  FROM left_now;
