-- Named queries for segments. Every statement filters on merchant_id, except the
-- background claim of stale counts, which serves every merchant.
--
-- count_matching and sample_matching are templates: {account_filter} and {where}
-- are filled with psycopg.sql fragments (the compiled conditions, see
-- mktx_grpc.domain.segments.compile_conditions), whose values are bound as %(s_N)s.

-- name: insert_segment
INSERT INTO segments (merchant_id, account_id, name, description, conditions,
                      contact_count, count_refreshed_at)
VALUES (%(merchant_id)s, %(account_id)s, %(name)s, %(description)s, %(conditions)s,
        %(contact_count)s, now())
RETURNING *;

-- name: get_segment
SELECT * FROM segments WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: get_segment_for_update
SELECT * FROM segments WHERE merchant_id = %(merchant_id)s AND id = %(id)s FOR UPDATE;

-- name: update_segment
-- contact_count is NULL when neither conditions nor account changed: keep the old one.
UPDATE segments
   SET name = %(name)s, description = %(description)s, account_id = %(account_id)s,
       conditions = %(conditions)s,
       contact_count = coalesce(%(contact_count)s, contact_count),
       count_refreshed_at = CASE WHEN %(contact_count)s::bigint IS NULL
                                 THEN count_refreshed_at ELSE now() END,
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s
RETURNING *;

-- name: set_segment_count
-- A refreshed count is derived data: it does not change the segment's version (etag).
UPDATE segments SET contact_count = %(contact_count)s, count_refreshed_at = now()
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s
RETURNING *;

-- name: delete_segment
DELETE FROM segments WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: live_campaigns_using_segment
-- Campaigns that may still resolve this segment, as an audience or an exclusion.
SELECT c.id, c.name, c.status, cs.excluded
  FROM campaign_segments cs
  JOIN campaigns c ON c.id = cs.campaign_id AND c.merchant_id = cs.merchant_id
 WHERE cs.merchant_id = %(merchant_id)s AND cs.segment_id = %(id)s
   AND c.status IN ('SCHEDULED', 'RUNNING', 'PAUSED')
 ORDER BY c.created_at
 LIMIT 5;

-- name: existing_campaign_ids
SELECT id FROM campaigns WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s::uuid[]);

-- name: list_segments
-- Newest first, keyset on (created_at, id). Optional filters are NULL when unused.
SELECT * FROM segments
 WHERE merchant_id = %(merchant_id)s
   AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)
   AND (%(name_pattern)s::text IS NULL OR name ILIKE %(name_pattern)s)
   AND (%(after_created)s::timestamptz IS NULL
        OR (created_at, id) < (%(after_created)s, %(after_id)s::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: count_matching
SELECT count(*) AS total
  FROM contacts c
 WHERE c.merchant_id = %(merchant_id)s {account_filter}
   AND {where};

-- name: sample_matching
-- Most recent interaction first (contacts_merchant_last_interaction).
SELECT c.*
  FROM contacts c
 WHERE c.merchant_id = %(merchant_id)s {account_filter}
   AND {where}
 ORDER BY c.last_interaction_at DESC NULLS LAST, c.id DESC
 LIMIT %(limit)s;

-- name: claim_stale_segment
-- One segment whose count is older than max_age seconds, for every merchant; locked
-- so concurrent workers each refresh a different one.
SELECT id, merchant_id, account_id, conditions
  FROM segments
 WHERE count_refreshed_at IS NULL
    OR count_refreshed_at < now() - make_interval(secs => %(max_age)s::float8)
 ORDER BY count_refreshed_at NULLS FIRST
 LIMIT 1
   FOR UPDATE SKIP LOCKED;

-- name: touch_segment_count
-- Marks a count as refreshed without changing it (its conditions no longer compile).
UPDATE segments SET count_refreshed_at = now()
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;
