-- Named queries for publishing: posts, their per-part ledger, and metrics. Every
-- statement filters on merchant_id, except the publisher's and the metrics reader's
-- claims, which look across merchants by design (posts_due, posts_metrics_due).
-- A publisher's writes name the lease token it claimed the post with: a publisher
-- that lost its lease changes nothing.

-- ---------------------------------------------------------------- posts

-- name: insert_post
INSERT INTO posts (id, merchant_id, account_id, status, reply_settings, quote_post_id,
                   reply_to_post_id, publish_at, due_at, ready_at, lease_until, lease_token,
                   attempts)
VALUES (%(id)s, %(merchant_id)s, %(account_id)s, %(status)s, %(reply_settings)s,
        %(quote_post_id)s, %(reply_to_post_id)s, %(publish_at)s, %(due_at)s, %(ready_at)s,
        %(lease_until)s, %(lease_token)s, %(attempts)s)
RETURNING *;

-- name: insert_part
INSERT INTO post_parts (merchant_id, post_id, idx, text, media, poll)
VALUES (%(merchant_id)s, %(post_id)s, %(idx)s, %(text)s, %(media)s, %(poll)s);

-- name: delete_parts
DELETE FROM post_parts WHERE merchant_id = %(merchant_id)s AND post_id = %(post_id)s;

-- name: get_post
SELECT * FROM posts WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: get_post_for_update
SELECT * FROM posts WHERE merchant_id = %(merchant_id)s AND id = %(id)s FOR UPDATE;

-- name: get_parts
SELECT * FROM post_parts
 WHERE merchant_id = %(merchant_id)s AND post_id = %(post_id)s
 ORDER BY idx;

-- name: parts_of_posts
SELECT * FROM post_parts
 WHERE merchant_id = %(merchant_id)s AND post_id = ANY(%(post_ids)s::uuid[])
 ORDER BY post_id, idx;

-- name: list_posts
SELECT * FROM posts
 WHERE merchant_id = %(merchant_id)s
   AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)
   AND (%(status)s::text IS NULL OR status = %(status)s)
   AND (%(status)s::text IS NOT NULL OR %(show_deleted)s OR status <> 'DELETED')
   AND (%(start_at)s::timestamptz IS NULL OR publish_at >= %(start_at)s)
   AND (%(end_at)s::timestamptz IS NULL OR publish_at < %(end_at)s)
   AND (%(after_at)s::timestamptz IS NULL
        OR (publish_at, id) < (%(after_at)s, %(after_id)s::uuid))
 ORDER BY publish_at DESC, id DESC
 LIMIT %(limit)s;

-- name: update_post
UPDATE posts
   SET reply_settings = %(reply_settings)s, quote_post_id = %(quote_post_id)s,
       reply_to_post_id = %(reply_to_post_id)s, publish_at = %(publish_at)s,
       due_at = %(publish_at)s, ready_at = %(publish_at)s, status_reason = '',
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s
RETURNING *;

-- name: set_status
-- A client's lifecycle change (cancel, delete); the caller holds the row lock.
UPDATE posts
   SET status = %(status)s, status_reason = %(status_reason)s, ready_at = NULL,
       lease_until = NULL, lease_token = NULL,
       metrics_next_at = CASE WHEN %(status)s = 'DELETED' THEN NULL ELSE metrics_next_at END,
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s
RETURNING *;

-- ---------------------------------------------------------------- the publisher

-- name: claim_due_posts
-- Posts whose time came (SCHEDULED), or whose publisher died or backed off
-- (PUBLISHING past its lease): each gets a lease and a fresh token.
WITH due AS (
    SELECT id FROM posts
     WHERE status IN ('SCHEDULED', 'PUBLISHING')
       AND ready_at <= now()
       AND (lease_until IS NULL OR lease_until < now())
     ORDER BY ready_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
UPDATE posts p
   SET lease_until = now() + %(lease)s, lease_token = gen_random_uuid(),
       attempts = p.attempts + 1
  FROM due
 WHERE p.id = due.id
RETURNING p.id, p.merchant_id, p.status, p.lease_token, p.due_at;

-- name: take_lease
-- An RPC publishing a post itself (RetryPost): the caller holds the row lock.
UPDATE posts
   SET status = 'PUBLISHING', status_reason = '', lease_until = now() + %(lease)s,
       lease_token = gen_random_uuid(), attempts = attempts + 1, ready_at = now(),
       due_at = now(), updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s
RETURNING *;

-- name: extend_lease
UPDATE posts SET lease_until = now() + %(lease)s
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND lease_token = %(token)s
RETURNING id;

-- name: start_publishing
UPDATE posts
   SET status = 'PUBLISHING', status_reason = '', updated_at = now(),
       version = version + CASE WHEN status = 'PUBLISHING' THEN 0 ELSE 1 END
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND lease_token = %(token)s
RETURNING *;

-- name: arm_part
-- The part is about to be sent: committed before the POST, with the post's lease
-- extended in the same statement's transaction (see extend_lease).
UPDATE post_parts pp
   SET state = 'PUBLISHING', armed_at = now(), attempts = pp.attempts + 1,
       in_reply_to = %(in_reply_to)s, error = '', updated_at = now()
  FROM posts p
 WHERE pp.merchant_id = %(merchant_id)s AND pp.post_id = %(post_id)s AND pp.idx = %(idx)s
   AND p.merchant_id = pp.merchant_id AND p.id = pp.post_id AND p.lease_token = %(token)s
   AND pp.state IN ('PENDING', 'PUBLISHING')
RETURNING pp.*;

-- name: disarm_part
-- Certainly not sent (X's rate limit): back to PENDING.
UPDATE post_parts SET state = 'PENDING', updated_at = now()
 WHERE merchant_id = %(merchant_id)s AND post_id = %(post_id)s AND idx = %(idx)s
   AND state = 'PUBLISHING';

-- name: record_part_published
UPDATE post_parts
   SET state = 'PUBLISHED', x_post_id = %(x_post_id)s, url = %(url)s,
       published_at = %(published_at)s, error = '', updated_at = now()
 WHERE merchant_id = %(merchant_id)s AND post_id = %(post_id)s AND idx = %(idx)s
   AND state IN ('PENDING', 'PUBLISHING')
RETURNING *;

-- name: record_part_failed
UPDATE post_parts SET state = 'FAILED', error = %(error)s, updated_at = now()
 WHERE merchant_id = %(merchant_id)s AND post_id = %(post_id)s AND idx = %(idx)s
   AND state IN ('PENDING', 'PUBLISHING')
RETURNING *;

-- name: set_part_media
UPDATE post_parts SET media = %(media)s, updated_at = now()
 WHERE merchant_id = %(merchant_id)s AND post_id = %(post_id)s AND idx = %(idx)s;

-- name: touch_post
-- A part changed (published, failed): the post's etag moves with it.
UPDATE posts SET updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND lease_token = %(token)s
RETURNING id;

-- name: finish_post
-- The publisher is done with the post (PUBLISHED, FAILED, PARTIALLY_PUBLISHED).
UPDATE posts
   SET status = %(status)s, status_reason = %(status_reason)s,
       published_at = COALESCE(%(published_at)s::timestamptz, published_at),
       metrics_next_at = COALESCE(%(metrics_next_at)s::timestamptz, metrics_next_at),
       ready_at = NULL, lease_until = NULL, lease_token = NULL,
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND lease_token = %(token)s
RETURNING *;

-- name: release_post
-- The publisher stops for now: X's rate limit (due_at moves to the reset) or an
-- unknown outcome to look up again later (only ready_at moves).
UPDATE posts
   SET status = %(status)s, status_reason = %(status_reason)s,
       due_at = COALESCE(%(due_at)s::timestamptz, due_at), ready_at = %(ready_at)s,
       lease_until = NULL, lease_token = NULL, updated_at = now(),
       version = version + CASE WHEN status = %(status)s
                                 AND status_reason = %(status_reason)s THEN 0 ELSE 1 END
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND lease_token = %(token)s
RETURNING *;

-- name: reset_failed_parts
-- RetryPost: failed parts are sent again; published ones stay as they are.
UPDATE post_parts SET state = 'PENDING', error = '', updated_at = now()
 WHERE merchant_id = %(merchant_id)s AND post_id = %(post_id)s AND state = 'FAILED';

-- name: known_x_post_ids
-- X posts already recorded for the account's parts since a time: a lookup at X must
-- not take one of them for the part it resolves.
SELECT pp.x_post_id
  FROM post_parts pp JOIN posts p ON p.merchant_id = pp.merchant_id AND p.id = pp.post_id
 WHERE pp.merchant_id = %(merchant_id)s AND p.account_id = %(account_id)s
   AND pp.x_post_id IS NOT NULL AND pp.published_at >= %(since)s;

-- name: mark_part_deleted
UPDATE post_parts SET state = 'DELETED', updated_at = now()
 WHERE merchant_id = %(merchant_id)s AND post_id = %(post_id)s AND idx = %(idx)s
   AND state = 'PUBLISHED';

-- ---------------------------------------------------------------- metrics

-- name: claim_metrics_due
-- Posts whose metrics are due, across merchants; held for a while (metrics_next_at
-- moves on) so that another reader does not take them meanwhile.
WITH due AS (
    SELECT id FROM posts
     WHERE metrics_next_at <= now()
       AND status IN ('PUBLISHED', 'PARTIALLY_PUBLISHED')
     ORDER BY metrics_next_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
UPDATE posts p SET metrics_next_at = now() + %(hold)s
  FROM due
 WHERE p.id = due.id
RETURNING p.id, p.merchant_id, p.account_id, p.published_at;

-- name: published_parts_of_posts
SELECT post_id, idx, x_post_id, published_at FROM post_parts
 WHERE merchant_id = %(merchant_id)s AND post_id = ANY(%(post_ids)s::uuid[])
   AND state = 'PUBLISHED'
 ORDER BY post_id, idx;

-- name: insert_metrics
INSERT INTO post_metrics (merchant_id, post_id, observed_at, idx, impressions, likes, reposts,
                          replies, quotes, bookmarks, url_clicks, profile_clicks)
VALUES (%(merchant_id)s, %(post_id)s, %(observed_at)s, %(idx)s, %(impressions)s, %(likes)s,
        %(reposts)s, %(replies)s, %(quotes)s, %(bookmarks)s, %(url_clicks)s,
        %(profile_clicks)s)
ON CONFLICT DO NOTHING;

-- name: set_post_metrics
UPDATE posts
   SET metrics = %(metrics)s, metrics_at = %(metrics_at)s,
       metrics_next_at = CASE WHEN status = 'DELETED' THEN NULL
                              ELSE %(metrics_next_at)s::timestamptz END
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s
RETURNING *;

-- name: defer_metrics
-- A NULL `until` stops the readings.
UPDATE posts SET metrics_next_at = %(until)s::timestamptz
 WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s::uuid[])
   AND metrics_next_at IS NOT NULL;

-- name: metrics_history
-- One point per reading, summed over the parts read then; a non-public counter is
-- given only when every part had it.
SELECT observed_at,
       sum(impressions)::bigint AS impressions, sum(likes)::bigint AS likes,
       sum(reposts)::bigint AS reposts, sum(replies)::bigint AS replies,
       sum(quotes)::bigint AS quotes, sum(bookmarks)::bigint AS bookmarks,
       CASE WHEN bool_and(url_clicks IS NOT NULL) THEN sum(url_clicks)::bigint END
           AS url_clicks,
       CASE WHEN bool_and(profile_clicks IS NOT NULL) THEN sum(profile_clicks)::bigint END
           AS profile_clicks
  FROM post_metrics
 WHERE merchant_id = %(merchant_id)s AND post_id = %(post_id)s
   AND (%(start_at)s::timestamptz IS NULL OR observed_at >= %(start_at)s)
   AND (%(end_at)s::timestamptz IS NULL OR observed_at < %(end_at)s)
 GROUP BY observed_at
 ORDER BY observed_at
 LIMIT %(limit)s;

-- name: latest_part_metrics
SELECT DISTINCT ON (m.idx) m.*, pp.x_post_id
  FROM post_metrics m
  JOIN post_parts pp ON pp.merchant_id = m.merchant_id AND pp.post_id = m.post_id
                    AND pp.idx = m.idx
 WHERE m.merchant_id = %(merchant_id)s AND m.post_id = %(post_id)s
 ORDER BY m.idx, m.observed_at DESC;

-- ---------------------------------------------------------------- holds

-- name: hold_post
-- DeletePost holds the post (no status change) while it deletes at X, so that no
-- other RPC starts on it meanwhile; the caller holds the row lock.
UPDATE posts SET lease_until = now() + %(lease)s, lease_token = gen_random_uuid()
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s
RETURNING lease_token;

-- name: drop_hold
UPDATE posts SET lease_until = NULL, lease_token = NULL
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND lease_token = %(token)s;
