-- Named queries for the analytics day rollups (sql/migrations/0019_analytics_days.sql,
-- domain/analytics_days.py). Every statement filters on merchant_id.

-- name: day_zone
-- The zone the merchant's day rows are cut in, and its current zone (UTC by default).
SELECT (SELECT time_zone FROM analytics_day_zone WHERE merchant_id = %(merchant_id)s)
         AS rollup_zone,
       coalesce((SELECT time_zone FROM merchant_settings WHERE merchant_id = %(merchant_id)s),
                'UTC') AS time_zone;

-- name: set_day_zone
INSERT INTO analytics_day_zone (merchant_id, time_zone)
VALUES (%(merchant_id)s, %(time_zone)s)
ON CONFLICT (merchant_id) DO UPDATE SET time_zone = excluded.time_zone;

-- name: episodes_in_span
-- The episode rows (domain EPISODE_FIELDS, with their keys) with any of their instants
-- in [%(s)s, %(e)s): what the day rows of those days are computed from. One index
-- range scan per instant column.
SELECT x.conversation_id, x.episode, x.account_id, x.assignee_user_id, x.status, x.opened_at,
       x.first_human_reply_at, x.resolved_at, x.first_bot_reply_at, x.first_response_s,
       x.first_response_bh_s, x.resolution_s, x.resolution_bh_s, x.bot_response_s,
       x.bot_handled_s, x.bot_replied, x.escalated, x.bot_only
  FROM analytics_conversation_episodes x
 WHERE x.merchant_id = %(merchant_id)s AND x.opened_at >= %(s)s AND x.opened_at < %(e)s
   AND (%(account_id)s::uuid IS NULL OR x.account_id = %(account_id)s)
UNION
SELECT x.conversation_id, x.episode, x.account_id, x.assignee_user_id, x.status, x.opened_at,
       x.first_human_reply_at, x.resolved_at, x.first_bot_reply_at, x.first_response_s,
       x.first_response_bh_s, x.resolution_s, x.resolution_bh_s, x.bot_response_s,
       x.bot_handled_s, x.bot_replied, x.escalated, x.bot_only
  FROM analytics_conversation_episodes x
 WHERE x.merchant_id = %(merchant_id)s AND x.first_human_reply_at >= %(s)s AND x.first_human_reply_at < %(e)s
   AND (%(account_id)s::uuid IS NULL OR x.account_id = %(account_id)s)
UNION
SELECT x.conversation_id, x.episode, x.account_id, x.assignee_user_id, x.status, x.opened_at,
       x.first_human_reply_at, x.resolved_at, x.first_bot_reply_at, x.first_response_s,
       x.first_response_bh_s, x.resolution_s, x.resolution_bh_s, x.bot_response_s,
       x.bot_handled_s, x.bot_replied, x.escalated, x.bot_only
  FROM analytics_conversation_episodes x
 WHERE x.merchant_id = %(merchant_id)s AND x.resolved_at >= %(s)s AND x.resolved_at < %(e)s
   AND (%(account_id)s::uuid IS NULL OR x.account_id = %(account_id)s)
UNION
SELECT x.conversation_id, x.episode, x.account_id, x.assignee_user_id, x.status, x.opened_at,
       x.first_human_reply_at, x.resolved_at, x.first_bot_reply_at, x.first_response_s,
       x.first_response_bh_s, x.resolution_s, x.resolution_bh_s, x.bot_response_s,
       x.bot_handled_s, x.bot_replied, x.escalated, x.bot_only
  FROM analytics_conversation_episodes x
 WHERE x.merchant_id = %(merchant_id)s AND x.first_bot_reply_at >= %(s)s AND x.first_bot_reply_at < %(e)s
   AND (%(account_id)s::uuid IS NULL OR x.account_id = %(account_id)s);

-- name: all_episodes_for_days
SELECT account_id, assignee_user_id, status, opened_at, first_human_reply_at, resolved_at, first_bot_reply_at,
       first_response_s, first_response_bh_s, resolution_s, resolution_bh_s, bot_response_s,
       bot_handled_s, bot_replied, escalated, bot_only
  FROM analytics_conversation_episodes
 WHERE merchant_id = %(merchant_id)s;

-- name: delete_days
DELETE FROM analytics_episode_days
 WHERE merchant_id = %(merchant_id)s AND day = ANY(%(days)s::date[]);

-- name: delete_all_days
DELETE FROM analytics_episode_days WHERE merchant_id = %(merchant_id)s;

-- name: insert_day
INSERT INTO analytics_episode_days
       (merchant_id, account_id, day, opened, open, pending, closed, bot_involved, escalated,
        frt_n, res_n, res_bot_only, bot_n, bot_handled_n, bot_handled_us,
        frt_vals, frt_cum, frt_stat, frt_bh_vals, frt_bh_cum, frt_bh_stat,
        res_vals, res_cum, res_stat, res_bh_vals, res_bh_cum, res_bh_stat,
        bot_vals, bot_cum, bot_stat, assignees, a_opened, a_resolved, a_frt_n, a_frt_us,
        a_res_n, a_res_us, a_n)
VALUES (%(merchant_id)s, %(account_id)s, %(day)s, %(opened)s, %(open)s, %(pending)s,
        %(closed)s, %(bot_involved)s, %(escalated)s, %(frt_n)s, %(res_n)s, %(res_bot_only)s,
        %(bot_n)s, %(bot_handled_n)s, %(bot_handled_us)s,
        %(frt_vals)s, %(frt_cum)s, %(frt_stat)s, %(frt_bh_vals)s, %(frt_bh_cum)s,
        %(frt_bh_stat)s, %(res_vals)s, %(res_cum)s, %(res_stat)s, %(res_bh_vals)s,
        %(res_bh_cum)s, %(res_bh_stat)s, %(bot_vals)s, %(bot_cum)s, %(bot_stat)s,
        %(assignees)s, %(a_opened)s, %(a_resolved)s, %(a_frt_n)s, %(a_frt_us)s, %(a_res_n)s,
        %(a_res_us)s, %(a_n)s);

-- name: day_rows
-- The day rows of whole days [first_day, last_day] for one account or every account
-- (ALL_ACCOUNTS), without the values (day_slices reads those where needed).
SELECT day, opened, open, pending, closed, bot_involved, escalated, frt_n, res_n,
       res_bot_only, bot_n, bot_handled_n, bot_handled_us,
       frt_cum, frt_stat, frt_bh_cum, frt_bh_stat, res_cum, res_stat,
       res_bh_cum, res_bh_stat, bot_cum, bot_stat, assignees, a_opened, a_resolved, a_frt_n,
       a_frt_us, a_res_n, a_res_us, a_n
  FROM analytics_episode_days
 WHERE merchant_id = %(merchant_id)s AND account_id = %(account_id)s
   AND day >= %(first_day)s AND day <= %(last_day)s;

-- name: day_rows_overview
-- day_rows for GetOverview: the counts and the first-response values' counts.
SELECT day, opened, open, pending, closed, frt_cum, frt_stat, res_stat
  FROM analytics_episode_days
 WHERE merchant_id = %(merchant_id)s AND account_id = %(account_id)s
   AND day >= %(first_day)s AND day <= %(last_day)s;

-- name: day_slices
-- For the named value buckets of each duration (%(frt)s etc.: bucket numbers,
-- 0-based) over the day rows of [first_day, last_day]: the smallest and largest value
-- in the bucket, and its values (each day's slice of its sorted values) unless those
-- two are equal (then every value there is that one).
WITH d AS (
  SELECT * FROM analytics_episode_days
   WHERE merchant_id = %(merchant_id)s AND account_id = %(account_id)s
     AND day >= %(first_day)s AND day <= %(last_day)s
), s AS (
  SELECT 'frt' AS m, b, d.frt_vals[d.frt_cum[b + 1] + 1 : d.frt_cum[b + 2]] AS v
    FROM d, unnest(%(frt)s::int[]) AS b
   WHERE d.frt_cum[b + 2] > d.frt_cum[b + 1]
  UNION ALL
  SELECT 'frt_bh' AS m, b, d.frt_bh_vals[d.frt_bh_cum[b + 1] + 1 : d.frt_bh_cum[b + 2]] AS v
    FROM d, unnest(%(frt_bh)s::int[]) AS b
   WHERE d.frt_bh_cum[b + 2] > d.frt_bh_cum[b + 1]
  UNION ALL
  SELECT 'res' AS m, b, d.res_vals[d.res_cum[b + 1] + 1 : d.res_cum[b + 2]] AS v
    FROM d, unnest(%(res)s::int[]) AS b
   WHERE d.res_cum[b + 2] > d.res_cum[b + 1]
  UNION ALL
  SELECT 'res_bh' AS m, b, d.res_bh_vals[d.res_bh_cum[b + 1] + 1 : d.res_bh_cum[b + 2]] AS v
    FROM d, unnest(%(res_bh)s::int[]) AS b
   WHERE d.res_bh_cum[b + 2] > d.res_bh_cum[b + 1]
  UNION ALL
  SELECT 'bot' AS m, b, d.bot_vals[d.bot_cum[b + 1] + 1 : d.bot_cum[b + 2]] AS v
    FROM d, unnest(%(bot)s::int[]) AS b
   WHERE d.bot_cum[b + 2] > d.bot_cum[b + 1]
), g AS (
  SELECT m, b, min(v[1]) AS lo, max(v[array_upper(v, 1)]) AS hi FROM s GROUP BY m, b
)
SELECT g.m, g.b, g.lo, g.hi,
       CASE WHEN g.lo < g.hi THEN
         (SELECT array_agg(x) FROM s, unnest(s.v) AS x WHERE s.m = g.m AND s.b = g.b)
       END AS vals
  FROM g;

-- name: overview_rest
-- GetOverview's figures that do not come from day rows (the overview query's
-- contacts, campaigns, automation and posts sections).
WITH c AS (
  -- The contacts there are now less those created at or after the end.
  SELECT (SELECT coalesce(sum(contacts), 0)::bigint FROM analytics_contact_totals
           WHERE merchant_id = %(merchant_id)s
             AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s))
         - (SELECT count(*) FROM analytics_contacts
             WHERE merchant_id = %(merchant_id)s AND created_at >= %(end)s
               AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)) AS total,
         (SELECT count(*) FROM analytics_contacts
           WHERE merchant_id = %(merchant_id)s AND created_at >= %(start)s
             AND created_at < %(end)s
             AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)) AS new
), act AS (
  -- Active in the period: the latest bucket is in it, or it is after the end and an
  -- earlier bucket is in it.
  SELECT (SELECT count(*) FROM analytics_contacts
           WHERE merchant_id = %(merchant_id)s AND last_active >= %(start)s
             AND last_active < %(end)s
             AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s))
         + (SELECT count(*) FROM analytics_contacts k
             WHERE k.merchant_id = %(merchant_id)s AND k.last_active >= %(end)s
               AND (%(account_id)s::uuid IS NULL OR k.account_id = %(account_id)s)
               AND EXISTS (SELECT 1 FROM analytics_contact_activity a
                            WHERE a.merchant_id = %(merchant_id)s
                              AND a.contact_id = k.contact_id
                              AND a.bucket >= %(start)s AND a.bucket < %(end)s)) AS active
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
SELECT c.total AS contacts_total, c.new AS contacts_new, act.active AS contacts_active,
       cp.active AS campaigns_active, cp.completed AS campaigns_completed,
       cs.sent AS campaigns_sent, fl.active_flows, ex.started AS executions_started,
       ex.completed AS executions_completed, pp.published AS posts_published,
       gains.impressions, gains.engagements
  FROM c, act, cp, cs, fl, ex, pp, gains;

-- name: days_for_update
-- The stored day rows of the (account, day) keys, locked (the consumer adds and
-- takes out episodes' parts; the merchant's rollup lock already serialises writers),
-- without the values: each key's %(wants)s bits (1 frt, 2 frt_bh, 4 res, 8 res_bh,
-- 16 bot) name the durations whose values are read (the others stay unread).
SELECT d.account_id, d.day, d.opened, d.open, d.pending, d.closed, d.bot_involved,
       d.escalated, d.frt_n, d.res_n, d.res_bot_only, d.bot_n, d.bot_handled_n,
       d.bot_handled_us, d.assignees, d.a_opened, d.a_resolved, d.a_frt_n, d.a_frt_us,
       d.a_res_n, d.a_res_us, d.a_n,
       CASE WHEN k.wants & 1 <> 0 THEN d.frt_vals END AS frt_vals,
       CASE WHEN k.wants & 2 <> 0 THEN d.frt_bh_vals END AS frt_bh_vals,
       CASE WHEN k.wants & 4 <> 0 THEN d.res_vals END AS res_vals,
       CASE WHEN k.wants & 8 <> 0 THEN d.res_bh_vals END AS res_bh_vals,
       CASE WHEN k.wants & 16 <> 0 THEN d.bot_vals END AS bot_vals
  FROM analytics_episode_days d
  JOIN unnest(%(account_ids)s::uuid[], %(days)s::date[], %(wants)s::int[])
         AS k(account_id, day, wants)
    ON d.account_id = k.account_id AND d.day = k.day
 WHERE d.merchant_id = %(merchant_id)s
   FOR UPDATE OF d;

-- name: update_day
-- One day row's new figures; a duration's values, cumulative counts and stat are
-- given only when its values changed (NULL keeps the stored ones, unrewritten).
UPDATE analytics_episode_days
   SET opened = %(opened)s, open = %(open)s, pending = %(pending)s, closed = %(closed)s,
       bot_involved = %(bot_involved)s, escalated = %(escalated)s, frt_n = %(frt_n)s,
       res_n = %(res_n)s, res_bot_only = %(res_bot_only)s, bot_n = %(bot_n)s,
       bot_handled_n = %(bot_handled_n)s, bot_handled_us = %(bot_handled_us)s,
       frt_vals = coalesce(%(frt_vals)s, frt_vals), frt_cum = coalesce(%(frt_cum)s, frt_cum),
       frt_stat = coalesce(%(frt_stat)s, frt_stat),
       frt_bh_vals = coalesce(%(frt_bh_vals)s, frt_bh_vals),
       frt_bh_cum = coalesce(%(frt_bh_cum)s, frt_bh_cum),
       frt_bh_stat = coalesce(%(frt_bh_stat)s, frt_bh_stat),
       res_vals = coalesce(%(res_vals)s, res_vals), res_cum = coalesce(%(res_cum)s, res_cum),
       res_stat = coalesce(%(res_stat)s, res_stat),
       res_bh_vals = coalesce(%(res_bh_vals)s, res_bh_vals),
       res_bh_cum = coalesce(%(res_bh_cum)s, res_bh_cum),
       res_bh_stat = coalesce(%(res_bh_stat)s, res_bh_stat),
       bot_vals = coalesce(%(bot_vals)s, bot_vals), bot_cum = coalesce(%(bot_cum)s, bot_cum),
       bot_stat = coalesce(%(bot_stat)s, bot_stat),
       assignees = %(assignees)s, a_opened = %(a_opened)s, a_resolved = %(a_resolved)s,
       a_frt_n = %(a_frt_n)s, a_frt_us = %(a_frt_us)s, a_res_n = %(a_res_n)s,
       a_res_us = %(a_res_us)s, a_n = %(a_n)s
 WHERE merchant_id = %(merchant_id)s AND account_id = %(account_id)s AND day = %(day)s;

-- name: delete_day_keys
DELETE FROM analytics_episode_days d
 USING unnest(%(account_ids)s::uuid[], %(days)s::date[]) AS k(account_id, day)
 WHERE d.merchant_id = %(merchant_id)s AND d.account_id = k.account_id AND d.day = k.day;
