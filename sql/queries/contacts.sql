-- Named queries for contacts. Every statement filters on merchant_id.

-- name: insert_contact
INSERT INTO contacts (merchant_id, account_id, x_user_id, username, display_name,
                      profile_image_url, source, tags, attributes, time_zone, language,
                      opted_out, opted_out_at)
VALUES (%(merchant_id)s, %(account_id)s, %(x_user_id)s, %(username)s, %(display_name)s,
        %(profile_image_url)s, %(source)s, %(tags)s, %(attributes)s, %(time_zone)s,
        %(language)s, %(opted_out)s, CASE WHEN %(opted_out)s THEN now() END)
RETURNING *;

-- name: get_contact
SELECT * FROM contacts WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: get_contacts
-- Coalesced GetContact reads (store/coalesce.py): one query for a batch of ids.
SELECT * FROM contacts WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s);

-- name: get_contact_for_update
SELECT * FROM contacts WHERE merchant_id = %(merchant_id)s AND id = %(id)s FOR UPDATE;

-- name: segment_exists
SELECT id FROM segments WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: segment_conditions
SELECT conditions, account_id FROM segments WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: export_contacts_in_segment
-- export_contacts restricted to a segment. {segment} is the segment's compiled
-- condition (domain.segments.compile_conditions): composed with psycopg.sql, every
-- value in it bound as a parameter.
SELECT c.* FROM contacts c
 WHERE c.merchant_id = %(merchant_id)s
   AND (%(account_id)s::uuid IS NULL OR c.account_id = %(account_id)s::uuid)
   AND (%(segment_account_id)s::uuid IS NULL OR c.account_id = %(segment_account_id)s::uuid)
   AND (%(pattern)s::text IS NULL
        OR c.username ILIKE %(pattern)s::text OR c.display_name ILIKE %(pattern)s::text)
   AND (%(prefix)s::text IS NULL
        OR lower(c.username) LIKE %(prefix)s::text OR lower(c.display_name) LIKE %(prefix)s::text)
   AND (%(tags_any)s::text[] IS NULL OR c.tags && %(tags_any)s::text[])
   AND (%(tags_all)s::text[] IS NULL OR c.tags @> %(tags_all)s::text[])
   AND (%(attributes)s::jsonb IS NULL OR c.attributes @> %(attributes)s::jsonb)
   AND (%(source)s::text IS NULL OR c.source = %(source)s::text)
   AND (%(after_id)s::uuid IS NULL OR c.id > %(after_id)s::uuid)
   AND ({segment})
 ORDER BY c.id
 LIMIT %(limit)s;

-- name: update_contact
-- Writes every editable field; the servicer computed them under the row lock.
UPDATE contacts
   SET tags = %(tags)s, attributes = %(attributes)s, time_zone = %(time_zone)s,
       language = %(language)s,
       opted_out_at = CASE WHEN NOT %(opted_out)s THEN NULL
                           WHEN opted_out THEN opted_out_at
                           ELSE now() END,
       opted_out = %(opted_out)s,
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s
RETURNING *;

-- name: list_contacts
-- Latest interaction first, contacts without interactions last, then id; keyset on
-- (coalesce(last_interaction_at, -infinity), id). Unused filters are NULL. Run
-- unprepared, so each call is planned with its actual filters (the trigram indexes
-- serve the search only in a plan that knows the pattern is set).
SELECT * FROM contacts
 WHERE merchant_id = %(merchant_id)s
   AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s::uuid)
   AND (%(pattern)s::text IS NULL
        OR username ILIKE %(pattern)s::text OR display_name ILIKE %(pattern)s::text)
   AND (%(prefix)s::text IS NULL
        OR lower(username) LIKE %(prefix)s::text OR lower(display_name) LIKE %(prefix)s::text)
   AND (%(tags_any)s::text[] IS NULL OR tags && %(tags_any)s::text[])
   AND (%(tags_all)s::text[] IS NULL OR tags @> %(tags_all)s::text[])
   AND (%(attributes)s::jsonb IS NULL OR attributes @> %(attributes)s::jsonb)
   AND (%(source)s::text IS NULL OR source = %(source)s::text)
   AND (%(after_id)s::uuid IS NULL
        OR (coalesce(last_interaction_at, '-infinity'::timestamptz), id)
           < (coalesce(%(after_time)s::timestamptz, '-infinity'::timestamptz), %(after_id)s::uuid))
 ORDER BY coalesce(last_interaction_at, '-infinity'::timestamptz) DESC, id DESC
 LIMIT %(limit)s;

-- name: export_contacts
-- Same filters as list_contacts, walked by id inside one REPEATABLE READ snapshot.
SELECT * FROM contacts
 WHERE merchant_id = %(merchant_id)s
   AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s::uuid)
   AND (%(pattern)s::text IS NULL
        OR username ILIKE %(pattern)s::text OR display_name ILIKE %(pattern)s::text)
   AND (%(prefix)s::text IS NULL
        OR lower(username) LIKE %(prefix)s::text OR lower(display_name) LIKE %(prefix)s::text)
   AND (%(tags_any)s::text[] IS NULL OR tags && %(tags_any)s::text[])
   AND (%(tags_all)s::text[] IS NULL OR tags @> %(tags_all)s::text[])
   AND (%(attributes)s::jsonb IS NULL OR attributes @> %(attributes)s::jsonb)
   AND (%(source)s::text IS NULL OR source = %(source)s::text)
   AND (%(after_id)s::uuid IS NULL OR id > %(after_id)s::uuid)
 ORDER BY id
 LIMIT %(limit)s;

-- name: contact_engagement
-- Counts and the mean response time: messages are grouped into runs that start after
-- each outbound message; a run's first inbound message is answered by the outbound
-- message that opens the next run. Failed and unsent outbound messages do not count.
WITH conv AS (
  SELECT id FROM conversations WHERE merchant_id = %(merchant_id)s AND contact_id = %(id)s
), msg AS (
  SELECT m.id, m.conversation_id, m.direction, coalesce(m.sent_at, m.created_at) AS t
    FROM messages m
   WHERE m.merchant_id = %(merchant_id)s
     AND m.conversation_id IN (SELECT id FROM conv)
     AND (m.direction = 'INBOUND' OR m.delivery_state IN ('SENT', 'DELIVERED', 'READ'))
), g AS (
  SELECT msg.*,
         count(*) FILTER (WHERE direction = 'OUTBOUND')
           OVER (PARTITION BY conversation_id ORDER BY t, id) AS run
    FROM msg
), runs AS (
  SELECT conversation_id, run, min(t) FILTER (WHERE direction = 'INBOUND') AS first_in
    FROM g GROUP BY conversation_id, run
)
SELECT (SELECT count(*) FROM conv) AS conversation_count,
       (SELECT count(*) FROM msg WHERE direction = 'OUTBOUND') AS messages_sent,
       (SELECT count(*) FROM msg WHERE direction = 'INBOUND') AS messages_received,
       (SELECT avg(r.t - u.first_in)
          FROM runs u JOIN g r
            ON r.conversation_id = u.conversation_id AND r.run = u.run + 1
               AND r.direction = 'OUTBOUND'
         WHERE u.first_in IS NOT NULL) AS average_response_time,
       (SELECT min(occurred_at) FROM contact_interactions
         WHERE merchant_id = %(merchant_id)s AND contact_id = %(id)s) AS first_interaction_at,
       (SELECT max(occurred_at) FROM contact_interactions
         WHERE merchant_id = %(merchant_id)s AND contact_id = %(id)s) AS last_interaction_at;

-- name: contact_conversation_ids
SELECT id, account_id FROM conversations
 WHERE merchant_id = %(merchant_id)s AND contact_id = %(id)s;

-- name: purge_contact_events
-- Outbox rows that name the contact or one of its conversations (GDPR erase).
DELETE FROM domain_events
 WHERE merchant_id = %(merchant_id)s
   AND (aggregate_id = %(id)s OR aggregate_id = ANY(%(conversation_ids)s::uuid[])
        OR payload->>'contact_id' = %(id)s::text
        OR payload->>'conversation_id' = ANY(%(conversation_ids)s::text[]));

-- name: purge_contact_request_ids
DELETE FROM idempotency_keys
 WHERE merchant_id = %(merchant_id)s AND resource_id = %(id)s;

-- name: erase_contact
-- Deletes the contact; foreign keys cascade to its conversations, messages, AI
-- sessions, interactions, campaign ledger rows, one-off DM ledger rows
-- (outbound_dms) and automation executions. The audit row keeps only ids and who
-- did it.
WITH gone AS (
  DELETE FROM contacts WHERE merchant_id = %(merchant_id)s AND id = %(id)s
  RETURNING merchant_id, account_id, x_user_id
)
INSERT INTO erasure_audit (merchant_id, account_id, x_user_id, erased_by)
SELECT merchant_id, account_id, x_user_id, %(erased_by)s FROM gone
RETURNING id;

-- name: existing_for_import
SELECT id, x_user_id, username, display_name, profile_image_url, tags, attributes,
       time_zone, language
  FROM contacts
 WHERE merchant_id = %(merchant_id)s AND account_id = %(account_id)s
   AND x_user_id = ANY(%(x_user_ids)s::text[])
 FOR UPDATE;

-- name: existing_for_import_check
SELECT id, x_user_id FROM contacts
 WHERE merchant_id = %(merchant_id)s AND account_id = %(account_id)s
   AND x_user_id = ANY(%(x_user_ids)s::text[]);

-- name: import_insert_contact
INSERT INTO contacts (merchant_id, account_id, x_user_id, username, display_name,
                      profile_image_url, source, tags, attributes, time_zone, language)
VALUES (%(merchant_id)s, %(account_id)s, %(x_user_id)s, %(username)s, %(display_name)s,
        %(profile_image_url)s, 'IMPORT', %(tags)s, %(attributes)s, %(time_zone)s,
        %(language)s)
ON CONFLICT (merchant_id, account_id, x_user_id) DO NOTHING;

-- name: import_update_contact
UPDATE contacts
   SET username = %(username)s, display_name = %(display_name)s,
       profile_image_url = %(profile_image_url)s, tags = %(tags)s,
       attributes = %(attributes)s, time_zone = %(time_zone)s, language = %(language)s,
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: get_import
SELECT summary FROM contact_imports
 WHERE merchant_id = %(merchant_id)s AND request_id = %(request_id)s;

-- name: record_import
INSERT INTO contact_imports (merchant_id, request_id, account_id, summary)
VALUES (%(merchant_id)s, %(request_id)s, %(account_id)s, %(summary)s)
ON CONFLICT (merchant_id, request_id) DO NOTHING;
