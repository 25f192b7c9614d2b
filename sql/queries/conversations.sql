-- Named queries for conversations and messages. Every statement filters on
-- merchant_id, except the snooze wake-up claim, which serves every merchant.

-- name: get_conversation
SELECT c.*, ct.x_user_id AS contact_x_user_id, ct.username AS contact_username,
       ct.display_name AS contact_display_name,
       ct.profile_image_url AS contact_profile_image_url
  FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
 WHERE c.merchant_id = %(merchant_id)s AND c.id = %(id)s;

-- name: get_conversations
-- Coalesced GetConversation reads (store/coalesce.py): get_conversation for a batch.
SELECT c.*, ct.x_user_id AS contact_x_user_id, ct.username AS contact_username,
       ct.display_name AS contact_display_name,
       ct.profile_image_url AS contact_profile_image_url
  FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
 WHERE c.merchant_id = %(merchant_id)s AND c.id = ANY(%(ids)s);

-- name: get_conversation_for_update
SELECT * FROM conversations WHERE merchant_id = %(merchant_id)s AND id = %(id)s FOR UPDATE;

-- name: live_conversation_of_contact
SELECT * FROM conversations
 WHERE merchant_id = %(merchant_id)s AND account_id = %(account_id)s
   AND contact_id = %(contact_id)s AND status <> 'CLOSED'
   AND (%(except_id)s::uuid IS NULL OR id <> %(except_id)s::uuid)
 FOR UPDATE;

-- name: open_conversation
-- A new OPEN conversation; the one-live unique index makes a concurrent opener wait
-- and then do nothing, so the caller re-reads.
INSERT INTO conversations (merchant_id, account_id, contact_id, x_conversation_id)
VALUES (%(merchant_id)s, %(account_id)s, %(contact_id)s, %(x_conversation_id)s)
ON CONFLICT (merchant_id, account_id, contact_id) WHERE status <> 'CLOSED' DO NOTHING
RETURNING *;

-- name: list_conversations
-- Newest activity first: keyset on (coalesce(last_message_at, created_at), id).
SELECT c.*, ct.x_user_id AS contact_x_user_id, ct.username AS contact_username,
       ct.display_name AS contact_display_name,
       ct.profile_image_url AS contact_profile_image_url,
       coalesce(c.last_message_at, c.created_at) AS activity_at
  FROM conversations c JOIN contacts ct ON ct.id = c.contact_id
 WHERE c.merchant_id = %(merchant_id)s
   AND (%(account_id)s::uuid IS NULL OR c.account_id = %(account_id)s::uuid)
   AND (%(status)s::text IS NULL OR c.status = %(status)s::text)
   AND (%(assignee)s::text IS NULL OR c.assignee_user_id = %(assignee)s::text)
   AND (%(contact_id)s::uuid IS NULL OR c.contact_id = %(contact_id)s::uuid)
   AND (%(updated_after)s::timestamptz IS NULL OR c.updated_at >= %(updated_after)s::timestamptz)
   AND (%(after_id)s::uuid IS NULL
        OR (coalesce(c.last_message_at, c.created_at), c.id)
           < (%(after_time)s::timestamptz, %(after_id)s::uuid))
 ORDER BY coalesce(c.last_message_at, c.created_at) DESC, c.id DESC
 LIMIT %(limit)s;

-- name: list_messages
-- Newest first: keyset on (created_at, id).
SELECT * FROM messages
 WHERE merchant_id = %(merchant_id)s AND conversation_id = %(conversation_id)s
   AND (%(after_id)s::uuid IS NULL
        OR (created_at, id) < (%(after_time)s::timestamptz, %(after_id)s::uuid))
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: get_message
SELECT * FROM messages WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: messages_by_request
SELECT * FROM messages
 WHERE merchant_id = %(merchant_id)s AND request_id = %(request_id)s
 ORDER BY created_at, id;

-- name: set_status
UPDATE conversations
   SET status = %(status)s,
       snooze_until = %(snooze_until)s,
       close_reason = CASE WHEN %(status)s = 'CLOSED' THEN %(close_reason)s ELSE '' END,
       closed_at = CASE WHEN %(status)s = 'CLOSED' THEN now() END,
       escalated = CASE WHEN %(status)s = 'CLOSED' THEN false ELSE escalated END,
       escalation_reason = CASE WHEN %(status)s = 'CLOSED' THEN '' ELSE escalation_reason END,
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: set_assignee
UPDATE conversations
   SET assignee_user_id = %(assignee)s, updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: mark_messages_read
UPDATE messages SET delivery_state = 'READ', read_at = now()
 WHERE merchant_id = %(merchant_id)s AND conversation_id = %(id)s
   AND direction = 'INBOUND' AND delivery_state <> 'READ';

-- name: reset_unread
UPDATE conversations
   SET unread_count = 0, updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: insert_outbound_message
INSERT INTO messages (merchant_id, conversation_id, direction, type, text, attachments,
                      quick_replies, card_buttons, origin, is_from_bot, flow_id,
                      sender_user_id, delivery_state, request_id)
VALUES (%(merchant_id)s, %(conversation_id)s, 'OUTBOUND', %(type)s, %(text)s,
        %(attachments)s, %(quick_replies)s, %(card_buttons)s, %(origin)s, %(is_from_bot)s,
        %(flow_id)s, %(sender_user_id)s, 'PENDING', %(request_id)s)
RETURNING *;

-- name: note_outbound_in_conversation
UPDATE conversations
   SET last_message_preview = %(preview)s, last_message_at = now(),
       message_count = message_count + %(count)s, updated_at = now(),
       version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: mark_message_sent
UPDATE messages
   SET delivery_state = 'SENT', x_event_id = %(x_event_id)s, sent_at = now(),
       failure_reason = ''
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND delivery_state = 'PENDING'
RETURNING *;

-- name: mark_message_failed
UPDATE messages
   SET delivery_state = 'FAILED', failure_reason = left(%(reason)s, 1000)
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND delivery_state = 'PENDING'
RETURNING *;

-- name: set_x_conversation_id
UPDATE conversations SET x_conversation_id = %(x_conversation_id)s
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND x_conversation_id = '';

-- name: record_outbound_interaction
WITH i AS (
  INSERT INTO contact_interactions (merchant_id, contact_id, kind, occurred_at, ref)
  VALUES (%(merchant_id)s, %(contact_id)s, 'MESSAGE_OUT', now(), %(ref)s)
)
UPDATE contacts
   SET last_interaction_at = greatest(last_interaction_at, now()),
       first_interaction_at = coalesce(first_interaction_at, now())
 WHERE merchant_id = %(merchant_id)s AND id = %(contact_id)s;

-- name: get_contact
SELECT * FROM contacts WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: wake_due_snoozed
-- Claims due snoozes across merchants in batches; concurrent workers skip each
-- other's rows.
UPDATE conversations c
   SET status = 'OPEN', snooze_until = NULL, updated_at = now(), version = version + 1
  FROM (SELECT id FROM conversations
         WHERE status = 'SNOOZED' AND snooze_until <= now()
         ORDER BY snooze_until
         LIMIT %(limit)s
         FOR UPDATE SKIP LOCKED) due
 WHERE c.id = due.id
RETURNING c.id, c.merchant_id, c.account_id, c.contact_id;

-- name: next_snooze_due
/* cross-tenant: the wake-up loop sleeps until the earliest snooze of any merchant */
SELECT min(snooze_until) AS due FROM conversations WHERE status = 'SNOOZED';

-- name: watch_events_after
-- Outbox events for a live stream, in id order. `settled` is false for an event whose
-- transaction is not older than every running one: a lower id may still commit, so
-- the stream stops before it and looks again shortly.
SELECT id, type, aggregate_id, payload, created_at,
       tx < pg_snapshot_xmin(pg_current_snapshot()) AS settled
  FROM domain_events
 WHERE merchant_id = %(merchant_id)s AND id > %(after_id)s
 ORDER BY id
 LIMIT %(limit)s;

-- name: max_event_id
SELECT coalesce(max(id), 0) AS id FROM domain_events WHERE merchant_id = %(merchant_id)s;
