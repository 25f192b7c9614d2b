-- Named queries for analytics (issue 12): the rollup writers (recomputing one batch
-- of contacts or conversations from raw data) and the report readers. Every
-- statement filters on merchant_id. Report readers take %(account_id)s (NULL: every
-- account), the period [%(start)s, %(end)s), the merchant's zone %(tz)s and the
-- bucket unit %(unit)s ('day', 'week' or 'month': date_trunc's names; a week starts
-- on Monday); a bucket's key is its first local date.

-- ---------------------------------------------------------------- rollup writers

-- name: lock_merchant_rollups
-- Serialises the consumer and a rebuild writing the same merchant's rollups (both
-- delete and re-insert rows; concurrently, the later insert would collide).
SELECT pg_advisory_xact_lock(hashtextextended('analytics-rollups:' || %(merchant_id)s::text, 0));

-- name: conversations_for_rollup
SELECT c.id, c.account_id, c.contact_id, c.status, c.assignee_user_id, c.created_at,
       c.closed_at, c.created_closed, a.settings -> 'business_hours' AS business_hours
  FROM conversations c
  JOIN accounts a ON a.id = c.account_id
 WHERE c.merchant_id = %(merchant_id)s AND c.id = ANY(%(ids)s::uuid[]);

-- name: messages_for_rollup
SELECT conversation_id, created_at, direction, origin, is_from_bot
  FROM messages
 WHERE merchant_id = %(merchant_id)s AND conversation_id = ANY(%(ids)s::uuid[])
 ORDER BY conversation_id, created_at, id;

-- name: history_for_rollup
-- The status history of the conversations, in event order.
SELECT aggregate_id AS conversation_id, type, created_at,
       coalesce(payload ->> 'assignee_user_id', '') AS assignee_user_id
  FROM domain_events
 WHERE merchant_id = %(merchant_id)s AND aggregate_id = ANY(%(ids)s::uuid[])
   AND type = ANY(%(types)s::text[])
 ORDER BY id;

-- name: delete_episodes
DELETE FROM analytics_conversation_episodes
 WHERE merchant_id = %(merchant_id)s AND conversation_id = ANY(%(ids)s::uuid[]);

-- name: episodes_for_rollup
-- The stored episode rows of the conversations (columns in insert_episode's order
-- after merchant_id), to write only the rows a recomputation changed.
SELECT conversation_id, episode, account_id, contact_id, status, assignee_user_id,
       opened_at, first_inbound_at, first_bot_reply_at, handoff_at, first_human_reply_at,
       resolved_at, first_response_s, first_response_bh_s, bot_response_s, bot_handled_s,
       resolution_s, resolution_bh_s, bot_replied, human_replied, escalated, bot_only,
       last_bot_reply_at, contact_after_bot_at, last_message_at
  FROM analytics_conversation_episodes
 WHERE merchant_id = %(merchant_id)s AND conversation_id = ANY(%(ids)s::uuid[]);

-- name: delete_episode_keys
DELETE FROM analytics_conversation_episodes e
 USING unnest(%(conversation_ids)s::uuid[], %(episodes)s::int[]) AS k(conversation_id, episode)
 WHERE e.merchant_id = %(merchant_id)s AND e.conversation_id = k.conversation_id
   AND e.episode = k.episode;

-- name: delete_episodes_of_contacts
DELETE FROM analytics_conversation_episodes
 WHERE merchant_id = %(merchant_id)s AND contact_id = ANY(%(ids)s::uuid[]);

-- name: insert_episodes
-- Episode rows, one per element of the arrays (store.analytics.EPISODE_COLUMNS, in
-- that order), in one statement.
INSERT INTO analytics_conversation_episodes
       (merchant_id, conversation_id, episode, account_id, contact_id, status,
        assignee_user_id, opened_at, first_inbound_at, first_bot_reply_at, handoff_at,
        first_human_reply_at, resolved_at, first_response_s, first_response_bh_s,
        bot_response_s, bot_handled_s, resolution_s, resolution_bh_s, bot_replied,
        human_replied, escalated, bot_only, last_bot_reply_at, contact_after_bot_at,
        last_message_at)
SELECT %(merchant_id)s, u.*
  FROM unnest(%(conversation_id)s::uuid[], %(episode)s::int[], %(account_id)s::uuid[],
              %(contact_id)s::uuid[], %(status)s::text[], %(assignee_user_id)s::text[],
              %(opened_at)s::timestamptz[], %(first_inbound_at)s::timestamptz[],
              %(first_bot_reply_at)s::timestamptz[], %(handoff_at)s::timestamptz[],
              %(first_human_reply_at)s::timestamptz[], %(resolved_at)s::timestamptz[],
              %(first_response_s)s::float8[], %(first_response_bh_s)s::float8[],
              %(bot_response_s)s::float8[], %(bot_handled_s)s::float8[],
              %(resolution_s)s::float8[], %(resolution_bh_s)s::float8[],
              %(bot_replied)s::bool[], %(human_replied)s::bool[], %(escalated)s::bool[],
              %(bot_only)s::bool[], %(last_bot_reply_at)s::timestamptz[],
              %(contact_after_bot_at)s::timestamptz[], %(last_message_at)s::timestamptz[]) AS u;

-- name: live_episodes
-- For extending episodes with new messages: each conversation's current status,
-- assignee, account, contact and business hours, with its last episode row (NULL
-- columns when it has none), in extend_episode's terms. never_live: a conversation a
-- campaign created, closed as it was created (never reopened: a reopening clears
-- closed_at), which has no episode (domain.analytics.episodes).
SELECT c.id AS conversation_id, c.status AS conv_status,
       (c.created_closed AND c.status = 'CLOSED' AND c.closed_at = c.created_at) AS never_live,
       c.assignee_user_id AS conv_assignee, c.account_id AS conv_account_id,
       c.contact_id AS conv_contact_id, a.settings -> 'business_hours' AS business_hours,
       e.episode, e.account_id, e.contact_id, e.status, e.assignee_user_id, e.opened_at,
       e.first_inbound_at, e.first_bot_reply_at, e.handoff_at, e.first_human_reply_at,
       e.resolved_at, e.first_response_s, e.first_response_bh_s, e.bot_response_s,
       e.bot_handled_s, e.resolution_s, e.resolution_bh_s, e.bot_replied, e.human_replied,
       e.escalated, e.bot_only, e.last_bot_reply_at, e.contact_after_bot_at, e.last_message_at
  FROM conversations c
  JOIN accounts a ON a.id = c.account_id
  LEFT JOIN LATERAL (
    SELECT * FROM analytics_conversation_episodes x
     WHERE x.merchant_id = c.merchant_id AND x.conversation_id = c.id
     ORDER BY x.episode DESC LIMIT 1
  ) e ON true
 WHERE c.merchant_id = %(merchant_id)s AND c.id = ANY(%(ids)s::uuid[]);

-- name: messages_by_id
-- The messages the events name, to extend their conversations' live episodes.
SELECT id, conversation_id, created_at, direction, origin, is_from_bot
  FROM messages
 WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s::uuid[]);

-- name: update_live_episodes
-- The extended live episodes: every column a new message can change (status and
-- assignee cannot: an episode whose row disagrees with its conversation's is
-- recomputed instead).
UPDATE analytics_conversation_episodes e
   SET first_bot_reply_at = u.first_bot_reply_at,
       first_human_reply_at = u.first_human_reply_at,
       first_response_s = u.first_response_s, first_response_bh_s = u.first_response_bh_s,
       bot_response_s = u.bot_response_s, bot_replied = u.bot_replied,
       human_replied = u.human_replied, last_bot_reply_at = u.last_bot_reply_at,
       contact_after_bot_at = u.contact_after_bot_at, last_message_at = u.last_message_at
  FROM unnest(%(conversation_id)s::uuid[], %(episode)s::int[],
              %(first_bot_reply_at)s::timestamptz[],
              %(first_human_reply_at)s::timestamptz[], %(first_response_s)s::float8[],
              %(first_response_bh_s)s::float8[], %(bot_response_s)s::float8[],
              %(bot_replied)s::bool[], %(human_replied)s::bool[],
              %(last_bot_reply_at)s::timestamptz[], %(contact_after_bot_at)s::timestamptz[],
              %(last_message_at)s::timestamptz[])
       AS u(conversation_id, episode, first_bot_reply_at, first_human_reply_at,
            first_response_s, first_response_bh_s, bot_response_s, bot_replied,
            human_replied, last_bot_reply_at, contact_after_bot_at, last_message_at)
 WHERE e.merchant_id = %(merchant_id)s AND e.conversation_id = u.conversation_id
   AND e.episode = u.episode;

-- name: delete_contacts
DELETE FROM analytics_contacts
 WHERE merchant_id = %(merchant_id)s AND contact_id = ANY(%(ids)s::uuid[]);

-- name: insert_contacts
-- The contacts' rows from raw data (erased contacts have none to insert).
INSERT INTO analytics_contacts (merchant_id, contact_id, account_id, source, created_at,
                                opted_out_at, tags)
SELECT merchant_id, id, account_id, source, created_at,
       CASE WHEN opted_out THEN coalesce(opted_out_at, updated_at) END, tags
  FROM contacts
 WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s::uuid[]);

-- name: delete_contact_activity
DELETE FROM analytics_contact_activity
 WHERE merchant_id = %(merchant_id)s AND contact_id = ANY(%(ids)s::uuid[]);

-- name: insert_contact_activity
-- Interactions the contact started (wrote, followed, mentioned), per 15 minutes.
INSERT INTO analytics_contact_activity (merchant_id, bucket, contact_id, account_id)
SELECT DISTINCT i.merchant_id,
       date_bin('15 minutes', i.occurred_at, timestamptz '2000-01-01 00:00+00'),
       i.contact_id, c.account_id
  FROM contact_interactions i
  JOIN contacts c ON c.id = i.contact_id AND c.merchant_id = i.merchant_id
 WHERE i.merchant_id = %(merchant_id)s AND i.contact_id = ANY(%(ids)s::uuid[])
   AND i.kind IN ('MESSAGE_IN', 'FOLLOW', 'MENTION');

-- name: add_contact_activity
-- insert_contact_activity for contacts that only gained interactions (a message):
-- the buckets they already have stay, the new ones are added.
INSERT INTO analytics_contact_activity (merchant_id, bucket, contact_id, account_id)
SELECT DISTINCT i.merchant_id,
       date_bin('15 minutes', i.occurred_at, timestamptz '2000-01-01 00:00+00'),
       i.contact_id, c.account_id
  FROM contact_interactions i
  JOIN contacts c ON c.id = i.contact_id AND c.merchant_id = i.merchant_id
 WHERE i.merchant_id = %(merchant_id)s AND i.contact_id = ANY(%(ids)s::uuid[])
   AND i.kind IN ('MESSAGE_IN', 'FOLLOW', 'MENTION')
ON CONFLICT (merchant_id, bucket, contact_id) DO NOTHING;

-- name: rebuild_merchants
SELECT merchant_id FROM contacts
UNION SELECT merchant_id FROM analytics_contacts
UNION SELECT merchant_id FROM analytics_conversation_episodes;

-- name: rebuild_contact_ids
SELECT id FROM contacts
 WHERE merchant_id = %(merchant_id)s
   AND (%(since)s::timestamptz IS NULL OR updated_at >= %(since)s OR created_at >= %(since)s
        OR last_interaction_at >= %(since)s)
UNION
SELECT contact_id FROM analytics_contacts a
 WHERE a.merchant_id = %(merchant_id)s
   AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.id = a.contact_id)
UNION
SELECT DISTINCT contact_id FROM analytics_contact_activity a
 WHERE a.merchant_id = %(merchant_id)s
   AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.id = a.contact_id);

-- name: rebuild_conversation_ids
SELECT id FROM conversations
 WHERE merchant_id = %(merchant_id)s
   AND (%(since)s::timestamptz IS NULL OR updated_at >= %(since)s OR created_at >= %(since)s
        OR last_message_at >= %(since)s OR closed_at >= %(since)s)
UNION
SELECT DISTINCT conversation_id FROM analytics_conversation_episodes e
 WHERE e.merchant_id = %(merchant_id)s
   AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.id = e.conversation_id);

-- name: dump_episodes
SELECT * FROM analytics_conversation_episodes
 WHERE merchant_id = %(merchant_id)s ORDER BY conversation_id, episode;

-- name: dump_contacts
SELECT * FROM analytics_contacts WHERE merchant_id = %(merchant_id)s ORDER BY contact_id;

-- name: dump_activity
SELECT * FROM analytics_contact_activity
 WHERE merchant_id = %(merchant_id)s ORDER BY bucket, contact_id;

-- ---------------------------------------------------------------- lookups

-- name: time_zone
SELECT time_zone FROM merchant_settings WHERE merchant_id = %(merchant_id)s;

-- name: account_exists
SELECT 1 AS ok FROM accounts WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: campaign_exists
SELECT 1 AS ok FROM campaigns WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- ---------------------------------------------------------------- contacts

-- name: contact_totals
-- Three index-only counts (0022): contacts at the end of the period, new in it, and
-- opted out in it.
SELECT (SELECT count(*) FROM analytics_contacts
         WHERE merchant_id = %(merchant_id)s AND created_at < %(end)s
           AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)) AS total,
       (SELECT count(*) FROM analytics_contacts
         WHERE merchant_id = %(merchant_id)s AND created_at >= %(start)s
           AND created_at < %(end)s
           AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)) AS new,
       (SELECT count(*) FROM analytics_contacts
         WHERE merchant_id = %(merchant_id)s AND opted_out_at >= %(start)s
           AND opted_out_at < %(end)s
           AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)) AS opted_out;

-- name: active_contacts
-- count(*) over DISTINCT rather than count(DISTINCT): the planner may hash it
-- instead of sorting every activity row of the period (about half the time).
SELECT count(*) AS active
  FROM (SELECT DISTINCT contact_id
          FROM analytics_contact_activity
         WHERE merchant_id = %(merchant_id)s AND bucket >= %(start)s AND bucket < %(end)s
           AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)) d;

-- name: new_contacts_series
SELECT date_trunc(%(unit)s, created_at AT TIME ZONE %(tz)s)::date AS key, source,
       count(*) AS n
  FROM analytics_contacts
 WHERE merchant_id = %(merchant_id)s AND created_at >= %(start)s AND created_at < %(end)s
   AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)
 GROUP BY 1, 2;

-- name: active_contacts_buckets
-- Distinct contacts active in each bucket, one bucket at a time (the bounds as for
-- episodes_opened_buckets): each bucket's distinct set is hashed on its own.
SELECT b.i, x.n
  FROM unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) WITH ORDINALITY AS b(s, e, i)
 CROSS JOIN LATERAL (
   SELECT count(*) AS n
     FROM (SELECT DISTINCT contact_id
             FROM analytics_contact_activity
            WHERE merchant_id = %(merchant_id)s AND bucket >= b.s AND bucket < b.e
              AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)) d) x
 WHERE x.n > 0;

-- name: opt_outs_series
SELECT date_trunc(%(unit)s, opted_out_at AT TIME ZONE %(tz)s)::date AS key, count(*) AS n
  FROM analytics_contacts
 WHERE merchant_id = %(merchant_id)s AND opted_out_at >= %(start)s AND opted_out_at < %(end)s
   AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)
 GROUP BY 1;

-- name: top_tags
-- Tags of the contacts that existed at the end of the period, most used first.
SELECT tag, count(*) AS n
  FROM analytics_contacts, unnest(tags) AS tag
 WHERE merchant_id = %(merchant_id)s AND created_at < %(end)s
   AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)
 GROUP BY tag
 ORDER BY n DESC, tag
 LIMIT %(limit)s;

-- ---------------------------------------------------------------- conversations

-- The series of GetConversationAnalytics are read one bucket at a time: the caller
-- passes its buckets' bounds (local midnights in the merchant's zone, computed by
-- domain.analytics.buckets, clipped to the period) as %(starts)s / %(ends)s, and
-- each bucket is one range scan of its period index. No per-row time-zone
-- conversion, no sort of the period's episodes to group them, and the quantiles
-- sort one bucket's values at a time. A bucket is named by its position (i, from
-- 1); buckets with nothing in them return no row.

-- name: episodes_opened_buckets
SELECT b.i, x.n, x.bot_involved, x.escalated
  FROM unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) WITH ORDINALITY AS b(s, e, i)
 CROSS JOIN LATERAL (
   SELECT count(*) AS n,
          count(*) FILTER (WHERE bot_replied) AS bot_involved,
          count(*) FILTER (WHERE bot_replied AND escalated) AS escalated
     FROM analytics_conversation_episodes
    WHERE merchant_id = %(merchant_id)s AND opened_at >= b.s AND opened_at < b.e
      AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)) x
 WHERE x.n > 0;

-- name: first_response_buckets
SELECT b.i, x.*
  FROM unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) WITH ORDINALITY AS b(s, e, i)
 CROSS JOIN LATERAL (
   SELECT count(*) AS n,
          avg(first_response_s) AS mean,
          percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_s) AS median,
          percentile_cont(0.9) WITHIN GROUP (ORDER BY first_response_s) AS p90,
          avg(first_response_bh_s) AS bh_mean,
          percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_bh_s) AS bh_median,
          percentile_cont(0.9) WITHIN GROUP (ORDER BY first_response_bh_s) AS bh_p90
     FROM analytics_conversation_episodes
    WHERE merchant_id = %(merchant_id)s AND first_human_reply_at >= b.s
      AND first_human_reply_at < b.e
      AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)) x
 WHERE x.n > 0;

-- name: resolution_buckets
SELECT b.i, x.*
  FROM unnest(%(starts)s::timestamptz[], %(ends)s::timestamptz[]) WITH ORDINALITY AS b(s, e, i)
 CROSS JOIN LATERAL (
   SELECT count(*) AS n,
          avg(resolution_s) AS mean,
          percentile_cont(0.5) WITHIN GROUP (ORDER BY resolution_s) AS median,
          percentile_cont(0.9) WITHIN GROUP (ORDER BY resolution_s) AS p90,
          avg(resolution_bh_s) AS bh_mean,
          percentile_cont(0.5) WITHIN GROUP (ORDER BY resolution_bh_s) AS bh_median,
          percentile_cont(0.9) WITHIN GROUP (ORDER BY resolution_bh_s) AS bh_p90
     FROM analytics_conversation_episodes
    WHERE merchant_id = %(merchant_id)s AND resolved_at >= b.s AND resolved_at < b.e
      AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)) x
 WHERE x.n > 0;

-- name: per_assignee
SELECT assignee_user_id,
       count(*) FILTER (WHERE opened_at >= %(start)s AND opened_at < %(end)s) AS opened,
       count(*) FILTER (WHERE resolved_at >= %(start)s AND resolved_at < %(end)s) AS resolved,
       count(first_response_s) FILTER (WHERE first_human_reply_at >= %(start)s
                                         AND first_human_reply_at < %(end)s) AS responded,
       coalesce(avg(first_response_s) FILTER (WHERE first_human_reply_at >= %(start)s
                                               AND first_human_reply_at < %(end)s), 0)
         AS first_response_mean,
       coalesce(avg(resolution_s) FILTER (WHERE resolved_at >= %(start)s
                                           AND resolved_at < %(end)s), 0) AS resolution_mean
  FROM analytics_conversation_episodes
 WHERE merchant_id = %(merchant_id)s
   AND ((opened_at >= %(start)s AND opened_at < %(end)s)
        OR (resolved_at >= %(start)s AND resolved_at < %(end)s)
        OR (first_human_reply_at >= %(start)s AND first_human_reply_at < %(end)s))
   AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)
 GROUP BY assignee_user_id
 ORDER BY assignee_user_id;

-- ---------------------------------------------------------------- campaigns

-- name: campaign_series
-- The hourly campaign counters GetCampaignMetrics reads (campaign_metrics_hourly),
-- rolled up to local buckets: an hour counts when it starts inside the period.
SELECT date_trunc(%(unit)s, h.hour AT TIME ZONE %(tz)s)::date AS key,
       sum(h.sent) AS sent, sum(h.delivered) AS delivered, sum(h.read) AS read,
       sum(h.replied) AS replied, sum(h.failed) AS failed
  FROM campaign_metrics_hourly h
  JOIN campaigns c ON c.merchant_id = h.merchant_id AND c.id = h.campaign_id
 WHERE h.merchant_id = %(merchant_id)s AND h.hour >= %(start)s AND h.hour < %(end)s
   AND (%(campaign_id)s::uuid IS NULL OR h.campaign_id = %(campaign_id)s)
   AND (%(account_id)s::uuid IS NULL OR c.account_id = %(account_id)s)
 GROUP BY 1;

-- name: campaign_counts
SELECT count(*) FILTER (WHERE status IN ('SCHEDULED', 'RUNNING', 'PAUSED')) AS active,
       count(*) FILTER (WHERE status = 'COMPLETED' AND completed_at >= %(start)s
                          AND completed_at < %(end)s) AS completed
  FROM campaigns
 WHERE merchant_id = %(merchant_id)s
   AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s);

-- ---------------------------------------------------------------- automation

-- name: automation_counts
SELECT (SELECT count(*) FROM flows f
         WHERE f.merchant_id = %(merchant_id)s AND f.status = 'ACTIVE'
           AND (%(account_id)s::uuid IS NULL OR f.account_id = %(account_id)s)) AS active_flows,
       count(*) FILTER (WHERE e.started_at >= %(start)s AND e.started_at < %(end)s) AS started,
       count(*) FILTER (WHERE e.status = 'COMPLETED' AND e.completed_at >= %(start)s
                          AND e.completed_at < %(end)s) AS completed,
       count(*) FILTER (WHERE e.status = 'FAILED' AND coalesce(e.completed_at, e.updated_at)
                          >= %(start)s AND coalesce(e.completed_at, e.updated_at) < %(end)s)
         AS failed
  FROM flow_executions e
  JOIN flows f ON f.id = e.flow_id
 WHERE e.merchant_id = %(merchant_id)s
   AND (%(account_id)s::uuid IS NULL OR f.account_id = %(account_id)s)
   AND (e.started_at < %(end)s);

-- name: automation_series
SELECT e.flow_id, f.name,
       date_trunc(%(unit)s, e.started_at AT TIME ZONE %(tz)s)::date AS key,
       count(*) AS started,
       count(*) FILTER (WHERE e.status = 'COMPLETED') AS completed,
       count(*) FILTER (WHERE e.status = 'FAILED') AS failed
  FROM flow_executions e
  JOIN flows f ON f.id = e.flow_id
 WHERE e.merchant_id = %(merchant_id)s AND e.started_at >= %(start)s
   AND e.started_at < %(end)s
   AND (%(account_id)s::uuid IS NULL OR f.account_id = %(account_id)s)
 GROUP BY 1, 2, 3;

-- name: automation_funnel
SELECT e.flow_id, s.node_id,
       count(DISTINCT s.execution_id) AS entered,
       count(DISTINCT s.execution_id) FILTER (WHERE s.status = 'COMPLETED') AS completed,
       count(DISTINCT s.execution_id) FILTER (WHERE s.status = 'FAILED') AS failed
  FROM flow_execution_steps s
  JOIN flow_executions e ON e.id = s.execution_id
  JOIN flows f ON f.id = e.flow_id
 WHERE s.merchant_id = %(merchant_id)s AND e.started_at >= %(start)s
   AND e.started_at < %(end)s
   AND (%(account_id)s::uuid IS NULL OR f.account_id = %(account_id)s)
 GROUP BY 1, 2
 ORDER BY 1, 3 DESC, 2;

-- ---------------------------------------------------------------- posts

-- name: post_readings
-- Gains per bucket from the metric history: each reading (summed over parts) minus
-- the post's previous reading, placed in the reading's bucket.
WITH r AS (
  SELECT m.post_id, m.observed_at, sum(m.impressions) AS impressions,
         sum(m.likes + m.reposts + m.replies + m.quotes + m.bookmarks) AS engagements
    FROM post_metrics m
    JOIN posts p ON p.id = m.post_id AND p.merchant_id = m.merchant_id
   WHERE m.merchant_id = %(merchant_id)s AND m.observed_at < %(end)s
     AND (%(account_id)s::uuid IS NULL OR p.account_id = %(account_id)s)
   GROUP BY 1, 2
), d AS (
  SELECT observed_at,
         impressions - coalesce(lag(impressions) OVER w, 0) AS impressions,
         engagements - coalesce(lag(engagements) OVER w, 0) AS engagements
    FROM r
  WINDOW w AS (PARTITION BY post_id ORDER BY observed_at)
)
SELECT date_trunc(%(unit)s, observed_at AT TIME ZONE %(tz)s)::date AS key,
       sum(impressions)::bigint AS impressions, sum(engagements)::bigint AS engagements
  FROM d
 WHERE observed_at >= %(start)s
 GROUP BY 1;

-- name: posts_published
-- Posts published in the period with their latest reading before its end.
SELECT p.id, p.published_at,
       coalesce(l.impressions, 0) AS impressions, coalesce(l.engagements, 0) AS engagements
  FROM posts p
  LEFT JOIN LATERAL (
    SELECT sum(m.impressions)::bigint AS impressions,
           sum(m.likes + m.reposts + m.replies + m.quotes + m.bookmarks)::bigint AS engagements
      FROM post_metrics m
     WHERE m.merchant_id = p.merchant_id AND m.post_id = p.id
       AND m.observed_at = (SELECT max(observed_at) FROM post_metrics x
                             WHERE x.merchant_id = p.merchant_id AND x.post_id = p.id
                               AND x.observed_at < %(end)s)
  ) l ON true
 WHERE p.merchant_id = %(merchant_id)s
   AND p.status IN ('PUBLISHED', 'PARTIALLY_PUBLISHED', 'DELETED')
   AND p.published_at >= %(start)s AND p.published_at < %(end)s
   AND (%(account_id)s::uuid IS NULL OR p.account_id = %(account_id)s)
 ORDER BY impressions DESC, p.published_at DESC, p.id
 LIMIT %(limit)s;

-- name: posts_published_count
SELECT count(*) AS n
  FROM posts
 WHERE merchant_id = %(merchant_id)s
   AND status IN ('PUBLISHED', 'PARTIALLY_PUBLISHED', 'DELETED')
   AND published_at >= %(start)s AND published_at < %(end)s
   AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s);

-- ---------------------------------------------------------------- overview

-- name: overview
-- GetOverview's figures but the contacts' (contact_totals and active_contacts, read
-- beside it in the same snapshot): the same figures as conversation_report,
-- campaign_counts, campaign_series, automation_counts, posts_published_count and
-- post_readings give for the period.
WITH o AS (
  SELECT count(*) AS opened,
         count(*) FILTER (WHERE status = 'OPEN') AS open,
         count(*) FILTER (WHERE status IN ('PENDING', 'SNOOZED')) AS pending,
         count(*) FILTER (WHERE status = 'CLOSED') AS closed
    FROM analytics_conversation_episodes
   WHERE merchant_id = %(merchant_id)s AND opened_at >= %(start)s AND opened_at < %(end)s
     AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)
), f AS (
  SELECT coalesce(avg(first_response_s), 0) AS mean,
         coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_s), 0) AS median
    FROM analytics_conversation_episodes
   WHERE merchant_id = %(merchant_id)s AND first_human_reply_at >= %(start)s
     AND first_human_reply_at < %(end)s
     AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)
), r AS (
  SELECT coalesce(avg(resolution_s), 0) AS mean
    FROM analytics_conversation_episodes
   WHERE merchant_id = %(merchant_id)s AND resolved_at >= %(start)s AND resolved_at < %(end)s
     AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)
), cp AS (
  SELECT count(*) FILTER (WHERE status IN ('SCHEDULED', 'RUNNING', 'PAUSED')) AS active,
         count(*) FILTER (WHERE status = 'COMPLETED' AND completed_at >= %(start)s
                            AND completed_at < %(end)s) AS completed
    FROM campaigns
   WHERE merchant_id = %(merchant_id)s
     AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)
), cs AS (
  SELECT coalesce(sum(h.sent), 0) AS sent
    FROM campaign_metrics_hourly h
    JOIN campaigns x ON x.merchant_id = h.merchant_id AND x.id = h.campaign_id
   WHERE h.merchant_id = %(merchant_id)s AND h.hour >= %(start)s AND h.hour < %(end)s
     AND (%(account_id)s::uuid IS NULL OR x.account_id = %(account_id)s)
), fl AS (
  SELECT count(*) AS active_flows FROM flows
   WHERE merchant_id = %(merchant_id)s AND status = 'ACTIVE'
     AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)
), ex AS (
  SELECT count(*) FILTER (WHERE e.started_at >= %(start)s) AS started,
         count(*) FILTER (WHERE e.status = 'COMPLETED' AND e.completed_at >= %(start)s
                            AND e.completed_at < %(end)s) AS completed
    FROM flow_executions e
    JOIN flows x ON x.id = e.flow_id
   WHERE e.merchant_id = %(merchant_id)s AND e.started_at < %(end)s
     AND (%(account_id)s::uuid IS NULL OR x.account_id = %(account_id)s)
), pp AS (
  SELECT count(*) AS published FROM posts
   WHERE merchant_id = %(merchant_id)s
     AND status IN ('PUBLISHED', 'PARTIALLY_PUBLISHED', 'DELETED')
     AND published_at >= %(start)s AND published_at < %(end)s
     AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)
), rd AS (
  SELECT m.post_id, m.observed_at, sum(m.impressions) AS impressions,
         sum(m.likes + m.reposts + m.replies + m.quotes + m.bookmarks) AS engagements
    FROM post_metrics m
    JOIN posts x ON x.id = m.post_id AND x.merchant_id = m.merchant_id
   WHERE m.merchant_id = %(merchant_id)s AND m.observed_at < %(end)s
     AND (%(account_id)s::uuid IS NULL OR x.account_id = %(account_id)s)
   GROUP BY 1, 2
), gains AS (
  SELECT coalesce(sum(impressions), 0)::bigint AS impressions,
         coalesce(sum(engagements), 0)::bigint AS engagements
    FROM (SELECT observed_at,
                 impressions - coalesce(lag(impressions) OVER w, 0) AS impressions,
                 engagements - coalesce(lag(engagements) OVER w, 0) AS engagements
            FROM rd WINDOW w AS (PARTITION BY post_id ORDER BY observed_at)) d
   WHERE observed_at >= %(start)s
)
-- Each part is one row, read by a scalar subquery: a FROM list of them made the
-- planner search join orders, 6 to 11 ms of planning on every call (now under 1 ms;
-- the statement with the contacts' parts, then in it, 45.8 -> 36.3 ms p50 at issue
-- 12's scale).
SELECT (SELECT opened FROM o) AS opened,
       (SELECT open FROM o) AS open,
       (SELECT pending FROM o) AS pending,
       (SELECT closed FROM o) AS closed,
       (SELECT mean FROM f) AS frt_mean,
       (SELECT median FROM f) AS frt_median,
       (SELECT mean FROM r) AS resolution_mean,
       (SELECT active FROM cp) AS campaigns_active,
       (SELECT completed FROM cp) AS campaigns_completed,
       (SELECT sent FROM cs) AS campaigns_sent,
       (SELECT active_flows FROM fl) AS active_flows,
       (SELECT started FROM ex) AS executions_started,
       (SELECT completed FROM ex) AS executions_completed,
       (SELECT published FROM pp) AS posts_published,
       (SELECT impressions FROM gains) AS impressions,
       (SELECT engagements FROM gains) AS engagements;

-- name: conversation_totals
-- GetConversationAnalytics' period figures that are not sums of its buckets (the
-- quantiles, the bot's figures, the bot-only closes), in one statement: one
-- index-only scan of each period index (0021), so no episode's heap row is read.
-- The episodes opened (and of those, answered by the bot and escalated) are the sum
-- of episodes_opened_buckets.
WITH f AS (
  SELECT count(*) AS n,
         coalesce(avg(first_response_s), 0) AS mean,
         coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_s), 0) AS median,
         coalesce(percentile_cont(0.9) WITHIN GROUP (ORDER BY first_response_s), 0) AS p90,
         coalesce(avg(first_response_bh_s), 0) AS bh_mean,
         coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_bh_s), 0) AS bh_median,
         coalesce(percentile_cont(0.9) WITHIN GROUP (ORDER BY first_response_bh_s), 0) AS bh_p90
    FROM analytics_conversation_episodes
   WHERE merchant_id = %(merchant_id)s AND first_human_reply_at >= %(start)s
     AND first_human_reply_at < %(end)s
     AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)
), r AS (
  SELECT count(*) AS n,
         count(*) FILTER (WHERE bot_only) AS bot_only,
         coalesce(avg(resolution_s), 0) AS mean,
         coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY resolution_s), 0) AS median,
         coalesce(percentile_cont(0.9) WITHIN GROUP (ORDER BY resolution_s), 0) AS p90,
         coalesce(avg(resolution_bh_s), 0) AS bh_mean,
         coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY resolution_bh_s), 0) AS bh_median,
         coalesce(percentile_cont(0.9) WITHIN GROUP (ORDER BY resolution_bh_s), 0) AS bh_p90
    FROM analytics_conversation_episodes
   WHERE merchant_id = %(merchant_id)s AND resolved_at >= %(start)s AND resolved_at < %(end)s
     AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)
), b AS (
  SELECT count(*) AS n,
         coalesce(avg(bot_response_s), 0) AS mean,
         coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY bot_response_s), 0) AS median,
         coalesce(percentile_cont(0.9) WITHIN GROUP (ORDER BY bot_response_s), 0) AS p90,
         coalesce(avg(bot_handled_s), 0) AS handled_mean
    FROM analytics_conversation_episodes
   WHERE merchant_id = %(merchant_id)s AND first_bot_reply_at >= %(start)s
     AND first_bot_reply_at < %(end)s
     AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)
)
SELECT f.n AS frt_n, f.mean AS frt_mean, f.median AS frt_median, f.p90 AS frt_p90,
       f.bh_mean AS frt_bh_mean, f.bh_median AS frt_bh_median, f.bh_p90 AS frt_bh_p90,
       r.n AS res_n, r.bot_only AS res_bot_only, r.mean AS res_mean, r.median AS res_median,
       r.p90 AS res_p90, r.bh_mean AS res_bh_mean, r.bh_median AS res_bh_median,
       r.bh_p90 AS res_bh_p90,
       b.n AS bot_n, b.mean AS bot_mean, b.median AS bot_median, b.p90 AS bot_p90,
       b.handled_mean AS bot_handled_mean
  FROM f, r, b;
