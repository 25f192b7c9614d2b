-- Webhook ingestion: contacts, conversations, messages and interactions written from
-- X Account Activity events (mktx_grpc.store.ingest). Every statement filters on
-- merchant_id.

-- ---------------------------------------------------------------- contacts

-- name: upsert_contact
-- The first source sticks; profile fields refresh from X's users map when present;
-- first/last interaction widen to include %(at)s. created is true for a new row.
INSERT INTO contacts AS c (merchant_id, account_id, x_user_id, username, display_name,
                           profile_image_url, source, first_interaction_at,
                           last_interaction_at)
VALUES (%(merchant_id)s, %(account_id)s, %(x_user_id)s, %(username)s, %(display_name)s,
        %(profile_image_url)s, %(source)s, %(at)s, %(at)s)
ON CONFLICT (merchant_id, account_id, x_user_id) DO UPDATE
   SET username = coalesce(nullif(EXCLUDED.username, ''), c.username),
       display_name = coalesce(nullif(EXCLUDED.display_name, ''), c.display_name),
       profile_image_url = coalesce(nullif(EXCLUDED.profile_image_url, ''), c.profile_image_url),
       first_interaction_at = least(c.first_interaction_at, EXCLUDED.first_interaction_at),
       last_interaction_at = greatest(c.last_interaction_at, EXCLUDED.last_interaction_at),
       updated_at = now(),
       version = c.version + 1
RETURNING id, (xmax = 0) AS created;

-- name: get_contact_id
SELECT id FROM contacts
 WHERE merchant_id = %(merchant_id)s AND account_id = %(account_id)s
   AND x_user_id = %(x_user_id)s;

-- name: set_follow_state
-- Applies only when the event is not older than the last recorded change, so a late
-- redelivery of an old follow never overrides a newer unfollow.
UPDATE contacts
   SET follows_account = %(follows)s,
       follow_time = CASE WHEN %(follows)s THEN %(at)s ELSE follow_time END,
       unfollowed_at = CASE WHEN %(follows)s THEN unfollowed_at ELSE %(at)s END,
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s
   AND %(at)s >= greatest(coalesce(follow_time, '-infinity'),
                          coalesce(unfollowed_at, '-infinity'))
RETURNING id;

-- name: insert_interaction
INSERT INTO contact_interactions (merchant_id, contact_id, kind, occurred_at, ref)
VALUES (%(merchant_id)s, %(contact_id)s, %(kind)s, %(at)s, %(ref)s);

-- ---------------------------------------------------------------- conversations

-- name: live_conversation_for_update
-- The one conversation that is not CLOSED (conversations_one_live), locked.
SELECT id, status
  FROM conversations
 WHERE merchant_id = %(merchant_id)s AND account_id = %(account_id)s
   AND contact_id = %(contact_id)s AND status <> 'CLOSED'
   FOR UPDATE;

-- name: latest_closed_conversation_for_update
SELECT id, closed_at
  FROM conversations
 WHERE merchant_id = %(merchant_id)s AND account_id = %(account_id)s
   AND contact_id = %(contact_id)s AND status = 'CLOSED'
 ORDER BY closed_at DESC NULLS LAST
 LIMIT 1
   FOR UPDATE;

-- name: latest_conversation
SELECT id, status
  FROM conversations
 WHERE merchant_id = %(merchant_id)s AND account_id = %(account_id)s
   AND contact_id = %(contact_id)s
 ORDER BY (status <> 'CLOSED') DESC, coalesce(last_message_at, created_at) DESC
 LIMIT 1;

-- name: open_conversation
-- Opens a conversation unless another live one appeared meanwhile (then nothing is
-- returned and the caller reads that one).
INSERT INTO conversations (merchant_id, account_id, contact_id, x_conversation_id)
VALUES (%(merchant_id)s, %(account_id)s, %(contact_id)s, %(x_conversation_id)s)
ON CONFLICT (merchant_id, account_id, contact_id) WHERE status <> 'CLOSED' DO NOTHING
RETURNING id;

-- name: reopen_conversation
UPDATE conversations
   SET status = 'OPEN', closed_at = NULL, close_reason = '', snooze_until = NULL,
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND status = 'CLOSED';

-- name: record_inbound_message
-- Counters and preview for an inbound message; a SNOOZED or PENDING conversation
-- wakes (OPEN, snooze cleared). The preview follows the newest message by X time, so
-- a late retry of an older message does not replace it.
UPDATE conversations
   SET status = 'OPEN', snooze_until = NULL,
       x_conversation_id = CASE WHEN x_conversation_id = '' THEN %(x_conversation_id)s
                                ELSE x_conversation_id END,
       last_message_preview = CASE WHEN last_message_at IS NULL OR %(at)s >= last_message_at
                                   THEN %(preview)s ELSE last_message_preview END,
       last_message_at = greatest(last_message_at, %(at)s),
       last_inbound_at = greatest(last_inbound_at, %(at)s),
       unread_count = unread_count + 1,
       message_count = message_count + 1,
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: record_outbound_message
-- Counters and preview for an outbound message seen only as an echo (sent from
-- another client); status is left alone.
UPDATE conversations
   SET x_conversation_id = CASE WHEN x_conversation_id = '' THEN %(x_conversation_id)s
                                ELSE x_conversation_id END,
       last_message_preview = CASE WHEN last_message_at IS NULL OR %(at)s >= last_message_at
                                   THEN %(preview)s ELSE last_message_preview END,
       last_message_at = greatest(last_message_at, %(at)s),
       message_count = message_count + 1,
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: clear_unread
-- The account read the contact's messages (in any X client).
UPDATE conversations
   SET unread_count = 0, updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND account_id = %(account_id)s
   AND contact_id = %(contact_id)s AND status <> 'CLOSED' AND unread_count > 0
RETURNING id;

-- ---------------------------------------------------------------- messages

-- name: insert_message
-- Nothing is returned when a message with this X event id already exists.
INSERT INTO messages (merchant_id, conversation_id, direction, type, text, attachments,
                      sender_user_id, x_event_id, delivery_state, origin,
                      quick_reply_metadata, sent_at, delivered_at, created_at)
VALUES (%(merchant_id)s, %(conversation_id)s, %(direction)s, %(type)s, %(text)s,
        %(attachments)s, %(sender_user_id)s, %(x_event_id)s, 'DELIVERED', %(origin)s,
        %(quick_reply_metadata)s, %(at)s, now(), %(at)s)
ON CONFLICT (merchant_id, x_event_id) WHERE x_event_id IS NOT NULL DO NOTHING
RETURNING id;

-- name: mark_delivered
-- The echo of a message we sent: PENDING/SENT become DELIVERED; READ and FAILED are
-- kept. changed says whether the state moved.
UPDATE messages AS m
   SET delivery_state = CASE WHEN m.delivery_state IN ('PENDING', 'SENT') THEN 'DELIVERED'
                             ELSE m.delivery_state END,
       delivered_at = coalesce(m.delivered_at, now())
  FROM messages AS old
 WHERE m.merchant_id = %(merchant_id)s AND m.x_event_id = %(x_event_id)s
   AND m.direction = 'OUTBOUND'
   AND old.id = m.id
RETURNING m.id, m.conversation_id, m.delivery_state,
          (old.delivery_state IS DISTINCT FROM m.delivery_state) AS changed;

-- name: mark_read_up_to
-- A contact's read receipt: their unread outbound messages with an X event id up to
-- %(last_read_event_id)s (snowflake ids grow with time) become READ.
UPDATE messages AS m
   SET delivery_state = 'READ', read_at = now(),
       delivered_at = coalesce(m.delivered_at, now())
  FROM conversations AS c
 WHERE c.merchant_id = %(merchant_id)s AND c.account_id = %(account_id)s
   AND c.contact_id = %(contact_id)s
   AND m.merchant_id = %(merchant_id)s AND m.conversation_id = c.id
   AND m.direction = 'OUTBOUND' AND m.delivery_state IN ('SENT', 'DELIVERED')
   AND m.x_event_id ~ '^[0-9]{1,19}$'
   AND m.x_event_id::numeric <= %(last_read_event_id)s::numeric
RETURNING m.id, m.conversation_id;

-- ---------------------------------------------------------------- accounts

-- name: revoke_account
UPDATE accounts
   SET status = 'ERROR', status_reason = %(reason)s, webhook_subscribed = false,
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND status <> 'DISCONNECTED'
RETURNING id, status;

-- ---------------------------------------------------------------- batched inbound DMs
-- The set-based path for a run of plain inbound DMs (mktx_grpc.webhooks.ingest
-- _apply_dm_run): a handful of statements per run instead of several per event.
-- Inputs are parallel arrays, one element per contact, conversation or message.

-- name: upsert_contacts_batch
INSERT INTO contacts AS c (merchant_id, account_id, x_user_id, username, display_name,
                           profile_image_url, source, first_interaction_at,
                           last_interaction_at)
SELECT u.m, u.a, u.x, u.username, u.name, u.image, 'INBOUND_MESSAGE', u.first_at, u.last_at
  FROM unnest(%(merchant_ids)s::uuid[], %(account_ids)s::uuid[], %(x_user_ids)s::text[],
              %(usernames)s::text[], %(names)s::text[], %(images)s::text[],
              %(first_ats)s::timestamptz[], %(last_ats)s::timestamptz[])
       AS u(m, a, x, username, name, image, first_at, last_at)
ON CONFLICT (merchant_id, account_id, x_user_id) DO UPDATE
   SET username = coalesce(nullif(EXCLUDED.username, ''), c.username),
       display_name = coalesce(nullif(EXCLUDED.display_name, ''), c.display_name),
       profile_image_url = coalesce(nullif(EXCLUDED.profile_image_url, ''), c.profile_image_url),
       first_interaction_at = least(c.first_interaction_at, EXCLUDED.first_interaction_at),
       last_interaction_at = greatest(c.last_interaction_at, EXCLUDED.last_interaction_at),
       updated_at = now(),
       version = c.version + 1
RETURNING id, account_id, x_user_id, (xmax = 0) AS created;

-- name: live_conversations_for_update_batch
SELECT c.id, c.contact_id, c.status
  FROM conversations AS c
  JOIN unnest(%(merchant_ids)s::uuid[], %(account_ids)s::uuid[], %(contact_ids)s::uuid[])
       AS k(m, a, contact) ON c.merchant_id = k.m AND c.account_id = k.a
                          AND c.contact_id = k.contact
 WHERE c.status <> 'CLOSED'
 ORDER BY c.id
   FOR UPDATE OF c;

-- name: latest_closed_conversations_batch
SELECT DISTINCT ON (c.contact_id) c.id, c.contact_id, c.closed_at
  FROM conversations AS c
  JOIN unnest(%(merchant_ids)s::uuid[], %(account_ids)s::uuid[], %(contact_ids)s::uuid[])
       AS k(m, a, contact) ON c.merchant_id = k.m AND c.account_id = k.a
                          AND c.contact_id = k.contact
 WHERE c.status = 'CLOSED'
 ORDER BY c.contact_id, c.closed_at DESC NULLS LAST;

-- name: reopen_conversations_batch
UPDATE conversations AS c
   SET status = 'OPEN', closed_at = NULL, close_reason = '', snooze_until = NULL,
       updated_at = now(), version = c.version + 1
  FROM unnest(%(merchant_ids)s::uuid[], %(ids)s::uuid[]) AS k(m, id)
 WHERE c.merchant_id = k.m AND c.id = k.id AND c.status = 'CLOSED'
RETURNING c.id;

-- name: open_conversations_batch
INSERT INTO conversations (merchant_id, account_id, contact_id, x_conversation_id)
SELECT * FROM unnest(%(merchant_ids)s::uuid[], %(account_ids)s::uuid[],
                     %(contact_ids)s::uuid[], %(x_conversation_ids)s::text[])
ON CONFLICT (merchant_id, account_id, contact_id) WHERE status <> 'CLOSED' DO NOTHING
RETURNING id, contact_id;

-- name: insert_inbound_messages_batch
INSERT INTO messages (id, merchant_id, conversation_id, direction, type, text, attachments,
                      sender_user_id, x_event_id, delivery_state, origin,
                      quick_reply_metadata, sent_at, delivered_at, created_at)
SELECT u.id, u.m, u.conv, 'INBOUND', u.type, u.text, u.attachments::jsonb, u.sender, u.xid,
       'DELIVERED', 'CONTACT', u.qr, u.at, now(), u.at
  FROM unnest(%(ids)s::uuid[], %(merchant_ids)s::uuid[], %(conversation_ids)s::uuid[],
              %(types)s::text[], %(texts)s::text[], %(attachments)s::text[],
              %(senders)s::text[], %(x_event_ids)s::text[], %(qr_metadata)s::text[],
              %(ats)s::timestamptz[])
       AS u(id, m, conv, type, text, attachments, sender, xid, qr, at)
ON CONFLICT (merchant_id, x_event_id) WHERE x_event_id IS NOT NULL DO NOTHING
RETURNING id;

-- name: record_inbound_messages_batch
-- Per conversation: n new inbound messages, the newest at %(ats)s with its preview.
UPDATE conversations AS c
   SET status = 'OPEN', snooze_until = NULL,
       x_conversation_id = CASE WHEN c.x_conversation_id = '' THEN u.xc
                                ELSE c.x_conversation_id END,
       last_message_preview = CASE WHEN c.last_message_at IS NULL OR u.at >= c.last_message_at
                                   THEN u.preview ELSE c.last_message_preview END,
       last_message_at = greatest(c.last_message_at, u.at),
       last_inbound_at = greatest(c.last_inbound_at, u.at),
       unread_count = c.unread_count + u.n,
       message_count = c.message_count + u.n,
       updated_at = now(), version = c.version + 1
  FROM unnest(%(merchant_ids)s::uuid[], %(ids)s::uuid[], %(ns)s::int[],
              %(ats)s::timestamptz[], %(previews)s::text[], %(x_conversation_ids)s::text[])
       AS u(m, id, n, at, preview, xc)
 WHERE c.merchant_id = u.m AND c.id = u.id;

-- name: insert_interactions_batch
INSERT INTO contact_interactions (merchant_id, contact_id, kind, occurred_at, ref)
SELECT * FROM unnest(%(merchant_ids)s::uuid[], %(contact_ids)s::uuid[], %(kinds)s::text[],
                     %(ats)s::timestamptz[], %(refs)s::text[]);
