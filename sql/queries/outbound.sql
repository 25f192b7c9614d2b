-- The one-off DM ledger (store/outbound.py; the algorithm is worker/outbound.py).
-- Every statement on tenant data filters on merchant_id, except the sender's and the
-- recovery's cross-merchant claims (marked), which return merchant_id with each row.
--
-- Lock order: a transaction locks ledger rows first (claims skip rows others hold),
-- then writes messages, conversations and contacts. Statements that touch rows they
-- did not claim (pause_account) take only unlocked ones (SKIP LOCKED).

-- ---------------------------------------------------------------- callers

-- name: enqueue_dm
-- One round trip: the row, and NOTIFY mktx_outbound (delivered when the caller
-- commits) when it was queued. A key the merchant has queued already returns nothing.
WITH queued AS (
  INSERT INTO outbound_dms (merchant_id, account_id, contact_id, source, source_ref, origin,
                            is_from_bot, flow_id, conversation_id, text, media_url,
                            quick_replies, bypass_opt_out, not_before, ready_at)
  VALUES (%(merchant_id)s, %(account_id)s, %(contact_id)s, %(source)s, %(source_ref)s,
          %(origin)s, %(is_from_bot)s, %(flow_id)s, %(conversation_id)s, %(text)s,
          %(media_url)s, %(quick_replies)s, %(bypass_opt_out)s,
          coalesce(%(not_before)s::timestamptz, now()),
          coalesce(%(not_before)s::timestamptz, now()))
  ON CONFLICT (merchant_id, source, source_ref) DO NOTHING
  RETURNING id, merchant_id
)
SELECT id, pg_notify('mktx_outbound', merchant_id::text) FROM queued;

-- name: enqueue_dms
-- enqueue_dm for many DMs (%(rows)s: a JSON array of enqueue_dm's parameters, any
-- merchants) in one statement. One row per DM in the given order (n), with the
-- ledger row's id: the new one, or the one the merchant queued under that key
-- already. NOTIFY mktx_outbound once per merchant that got a new row.
WITH x AS (
  SELECT * FROM ROWS FROM (jsonb_to_recordset(%(rows)s::jsonb)
                AS (merchant_id uuid, account_id uuid, contact_id uuid, source text,
                    source_ref text, origin text, is_from_bot boolean, flow_id uuid,
                    conversation_id uuid, text text, media_url text, quick_replies jsonb,
                    bypass_opt_out boolean, not_before timestamptz))
           WITH ORDINALITY AS x(merchant_id, account_id, contact_id, source, source_ref,
                                origin, is_from_bot, flow_id, conversation_id, text,
                                media_url, quick_replies, bypass_opt_out, not_before, n)
), queued AS (
  INSERT INTO outbound_dms (merchant_id, account_id, contact_id, source, source_ref, origin,
                            is_from_bot, flow_id, conversation_id, text, media_url,
                            quick_replies, bypass_opt_out, not_before, ready_at)
  SELECT merchant_id, account_id, contact_id, source, source_ref, origin, is_from_bot,
         flow_id, conversation_id, text, media_url, quick_replies, bypass_opt_out,
         coalesce(not_before, now()), coalesce(not_before, now())
    FROM x ORDER BY n
  ON CONFLICT (merchant_id, source, source_ref) DO NOTHING
  RETURNING id, merchant_id, source, source_ref
), notified AS (
  SELECT count(pg_notify('mktx_outbound', m::text)) AS n
    FROM (SELECT DISTINCT merchant_id AS m FROM queued) q
)
-- The statement's snapshot does not see the rows it inserts: `o` is what was there.
SELECT x.n, coalesce(q.id, o.id) AS id
  FROM x
  CROSS JOIN notified
  LEFT JOIN queued q ON q.merchant_id = x.merchant_id AND q.source = x.source
                    AND q.source_ref = x.source_ref
  LEFT JOIN outbound_dms o ON o.merchant_id = x.merchant_id AND o.source = x.source
                          AND o.source_ref = x.source_ref
 ORDER BY x.n;

-- name: outbound_by_source_ref
SELECT id FROM outbound_dms
 WHERE merchant_id = %(merchant_id)s AND source = %(source)s AND source_ref = %(source_ref)s;

-- name: get_outbound
SELECT * FROM outbound_dms WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: cancel_outbound
-- QUEUED rows of a source whose ref starts with the prefix. A row a sender is arming
-- right now is waited for and then left alone (it is no longer QUEUED).
UPDATE outbound_dms
   SET state = 'SKIPPED', reason = 'cancelled', waiting_for = '', settled_at = now(),
       updated_at = now()
 WHERE merchant_id = %(merchant_id)s AND source = %(source)s AND state = 'QUEUED'
   AND starts_with(source_ref, %(prefix)s)
RETURNING id, account_id, contact_id, source, source_ref, reason;

-- name: adopt_unclear_send
-- An agent send whose outcome X left unknown, handed to the ledger's recovery: armed
-- already (at the time the message was stored, before X was called), never resent.
INSERT INTO outbound_dms (merchant_id, account_id, contact_id, source, source_ref, origin,
                          conversation_id, text, resend, state, reason, attempts,
                          sending_at, lease_until, message_id)
VALUES (%(merchant_id)s, %(account_id)s, %(contact_id)s, 'agent', %(message_id)s::text,
        'AGENT', %(conversation_id)s, %(text)s, false, 'SENDING', %(reason)s, 1,
        %(armed_at)s, now() + %(lease)s::interval, %(message_id)s)
ON CONFLICT (merchant_id, source, source_ref) DO NOTHING
RETURNING id;

-- name: note_pending_message
-- Why an agent's message is still PENDING (its outcome at X is being resolved).
UPDATE messages SET failure_reason = left(%(reason)s, 1000)
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND delivery_state = 'PENDING';

-- ---------------------------------------------------------------- sender

-- name: claim_due
-- Cross-merchant: due QUEUED rows (and rows waiting for an account that has become
-- ACTIVE again since), locked for this transaction, with what the sender decides on. A row waits
-- while an earlier one to the same contact from the same account is being sent or is
-- wanted now, so a contact's DMs go out one at a time and in order. Rows of
-- %(busy)s accounts (sending in this process already) are left for later.
WITH cand AS (
  (SELECT o.id FROM outbound_dms o
    WHERE o.state = 'QUEUED' AND o.ready_at <= now()
      AND o.account_id <> ALL (%(busy)s::uuid[])
    ORDER BY o.ready_at, o.id
    LIMIT %(scan)s)
  UNION
  (SELECT o.id FROM outbound_dms o
     JOIN accounts a ON a.merchant_id = o.merchant_id AND a.id = o.account_id
    WHERE o.state = 'QUEUED' AND o.waiting_for = 'account' AND a.status = 'ACTIVE'
      AND a.updated_at > o.updated_at  -- reconnected since the row began to wait
      AND o.account_id <> ALL (%(busy)s::uuid[])
    LIMIT %(scan)s)
)
SELECT o.id, o.merchant_id, o.account_id, o.contact_id, o.conversation_id, o.source,
       o.source_ref, o.origin, o.is_from_bot, o.flow_id, o.text, o.media_url,
       o.quick_replies, o.bypass_opt_out, o.attempts, o.resend, o.message_id,
       c.x_user_id, coalesce(c.opted_out, false) AS opted_out,
       (c.account_id IS NOT DISTINCT FROM o.account_id) AS contact_on_account,
       a.status AS account_status
  FROM outbound_dms o
  JOIN cand ON cand.id = o.id
  LEFT JOIN contacts c ON c.merchant_id = o.merchant_id AND c.id = o.contact_id
  LEFT JOIN accounts a ON a.merchant_id = o.merchant_id AND a.id = o.account_id
 WHERE o.state = 'QUEUED'
   AND NOT EXISTS (
         SELECT 1 FROM outbound_dms e
          WHERE e.merchant_id = o.merchant_id AND e.account_id = o.account_id
            AND e.contact_id = o.contact_id AND e.state IN ('QUEUED', 'SENDING')
            AND e.id <> o.id
            AND (e.state = 'SENDING' OR (e.id < o.id AND e.not_before <= now())))
 ORDER BY o.ready_at, o.id
 LIMIT %(limit)s
 FOR UPDATE OF o SKIP LOCKED;

-- name: mark_sending
-- Arm rows: SENDING with one more attempt and a lease, before X is called.
UPDATE outbound_dms
   SET state = 'SENDING', attempts = attempts + 1, sending_at = now(),
       lease_until = now() + %(lease)s::interval, reason = '', waiting_for = '',
       updated_at = now()
 WHERE merchant_id = %(merchant_id)s AND id = ANY (%(ids)s::bigint[]) AND state = 'QUEUED';

-- name: requeue_rows
-- QUEUED rows, or SENDING rows known not to have reached X, wait (again) until their
-- ready_at, with the reason and what they wait for. An armed row refused before it
-- left (budget, 429, breaker, account) gets its attempt back: X never saw it.
UPDATE outbound_dms o
   SET state = 'QUEUED', ready_at = x.ready_at, reason = left(x.reason, 1000),
       waiting_for = x.waiting_for, lease_until = NULL, updated_at = now(),
       attempts = CASE WHEN x.refund AND o.state = 'SENDING' THEN greatest(0, o.attempts - 1)
                       ELSE o.attempts END
  FROM unnest(%(ids)s::bigint[], %(ready_ats)s::timestamptz[], %(reasons)s::text[],
              %(waiting_fors)s::text[], %(refunds)s::boolean[])
       AS x(id, ready_at, reason, waiting_for, refund)
 WHERE o.merchant_id = %(merchant_id)s AND o.id = x.id AND o.state IN ('QUEUED', 'SENDING');

-- name: pause_account
-- The account must stop until %(until)s (X's rate limit, its DM budget, its
-- breaker): its other QUEUED rows wait too, rather than each trying X once. Rows
-- other transactions hold are left alone.
UPDATE outbound_dms o
   SET ready_at = greatest(o.ready_at, %(until)s), reason = left(%(reason)s, 1000),
       waiting_for = %(waiting_for)s, updated_at = now()
  FROM (SELECT id FROM outbound_dms
         WHERE merchant_id = %(merchant_id)s AND account_id = %(account_id)s
           AND state = 'QUEUED' AND ready_at < %(until)s
         FOR UPDATE SKIP LOCKED) p
 WHERE o.id = p.id;

-- name: settle_rows
-- QUEUED or SENDING rows become FAILED or SKIPPED with their reasons.
UPDATE outbound_dms o
   SET state = %(state)s, reason = left(x.reason, 1000), waiting_for = '',
       lease_until = NULL, settled_at = now(), updated_at = now()
  FROM unnest(%(ids)s::bigint[], %(reasons)s::text[]) AS x(id, reason)
 WHERE o.merchant_id = %(merchant_id)s AND o.id = x.id AND o.state IN ('QUEUED', 'SENDING')
RETURNING o.id, o.account_id, o.contact_id, o.source, o.source_ref, o.reason, o.message_id;

-- name: finish_sent
-- Armed rows X accepted (one array per column): SENT with their DMs. First in the
-- recording transaction, so the rows are locked before their messages are stored (and
-- nothing is stored for a row settled meanwhile: it is not returned). Per row: the
-- message already stored from X's webhook echo of the DM (echo_id,
-- echo_conversation_id), if any, and the conversation the row asked for when it is
-- still the contact's on that account.
UPDATE outbound_dms o
   SET state = 'SENT', x_event_id = x.x_event_id, sent_at = x.sent_at, reason = '',
       waiting_for = '', lease_until = NULL, settled_at = now(), updated_at = now()
  FROM unnest(%(id)s::bigint[], %(x_event_id)s::text[], %(sent_at)s::timestamptz[])
       AS x(id, x_event_id, sent_at)
  LEFT JOIN messages e ON e.merchant_id = %(merchant_id)s AND e.x_event_id = x.x_event_id
 WHERE o.merchant_id = %(merchant_id)s AND o.id = x.id AND o.state = 'SENDING'
RETURNING o.id, e.id AS echo_id, e.conversation_id AS echo_conversation_id,
          (SELECT v.id FROM conversations v
            WHERE v.merchant_id = o.merchant_id AND v.id = o.conversation_id
              AND v.contact_id = o.contact_id AND v.account_id = o.account_id)
          AS asked_conversation_id;

-- name: store_sent_messages
-- SENT rows' DMs stored as the agent send path stores one (conversations.sql:
-- insert_outbound_message, mark_message_sent, note_outbound_in_conversation,
-- set_x_conversation_id, record_outbound_interaction), many in one statement: each
-- an outbound message SENT in its conversation, the conversation's preview
-- (%(preview)s, made by domain.conversations.preview) and count, its X conversation
-- id when it had none, the contact's interaction, and the row linked to its message.
-- At most one row per conversation. Returns the rows stored; a DM whose X event id a
-- message holds already (the webhook echo outran this statement) is left out.
WITH x AS (
  SELECT * FROM unnest(%(id)s::bigint[], %(conversation_id)s::uuid[],
                       %(contact_id)s::uuid[], %(type)s::text[], %(text)s::text[],
                       %(attachments)s::text[], %(quick_replies)s::text[],
                       %(origin)s::text[], %(is_from_bot)s::boolean[], %(flow_id)s::uuid[],
                       %(x_event_id)s::text[], %(x_conversation_id)s::text[],
                       %(preview)s::text[])
           AS x(id, conversation_id, contact_id, type, text, attachments, quick_replies,
                origin, is_from_bot, flow_id, x_event_id, x_conversation_id, preview)
), msg AS (
  INSERT INTO messages (merchant_id, conversation_id, direction, type, text, attachments,
                        quick_replies, card_buttons, origin, is_from_bot, flow_id,
                        sender_user_id, delivery_state, x_event_id, sent_at)
  SELECT %(merchant_id)s, x.conversation_id, 'OUTBOUND', x.type, x.text,
         x.attachments::jsonb, x.quick_replies::jsonb, '[]'::jsonb, x.origin,
         x.is_from_bot, x.flow_id, '', 'SENT', x.x_event_id, now()
    FROM x
  ON CONFLICT (merchant_id, x_event_id) WHERE x_event_id IS NOT NULL DO NOTHING
  RETURNING id, x_event_id
), stored AS (
  SELECT x.*, msg.id AS message_id FROM x JOIN msg ON msg.x_event_id = x.x_event_id
), noted AS (
  UPDATE conversations v
     SET last_message_preview = s.preview, last_message_at = now(),
         message_count = v.message_count + 1, updated_at = now(), version = v.version + 1,
         x_conversation_id = CASE WHEN v.x_conversation_id = '' THEN s.x_conversation_id
                                  ELSE v.x_conversation_id END
    FROM stored s
   WHERE v.merchant_id = %(merchant_id)s AND v.id = s.conversation_id
), interactions AS (
  INSERT INTO contact_interactions (merchant_id, contact_id, kind, occurred_at, ref)
  SELECT %(merchant_id)s, s.contact_id, 'MESSAGE_OUT', now(), s.x_event_id FROM stored s
), touched AS (
  UPDATE contacts c
     SET last_interaction_at = greatest(c.last_interaction_at, now()),
         first_interaction_at = coalesce(c.first_interaction_at, now())
    FROM stored s
   WHERE c.merchant_id = %(merchant_id)s AND c.id = s.contact_id
), linked AS (
  UPDATE outbound_dms o SET message_id = s.message_id
    FROM stored s
   WHERE o.merchant_id = %(merchant_id)s AND o.id = s.id
)
SELECT id, message_id FROM stored;

-- name: link_message
UPDATE outbound_dms SET message_id = %(message_id)s
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: delete_pending_message
-- An agent's PENDING message whose DM X's echo stored already (adopted instead).
DELETE FROM messages
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND delivery_state = 'PENDING';

-- name: extend_lease
-- SENDING rows stay their holder's until %(until)s; the reason says what is pending.
UPDATE outbound_dms
   SET lease_until = %(until)s, reason = left(%(reason)s, 1000), updated_at = now()
 WHERE merchant_id = %(merchant_id)s AND id = ANY (%(ids)s::bigint[]) AND state = 'SENDING';

-- name: message_by_x_event_id
-- A message already stored for an X event (the webhook echo of our own DM, stored as
-- sent from another client when the ledger recorded it late).
SELECT id, conversation_id, origin FROM messages
 WHERE merchant_id = %(merchant_id)s AND x_event_id = %(x_event_id)s;

-- name: adopt_echo
-- That echo was our DM after all: it says who wrote it.
UPDATE messages
   SET origin = %(origin)s, is_from_bot = %(is_from_bot)s, flow_id = %(flow_id)s,
       quick_replies = %(quick_replies)s
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND origin = 'EXTERNAL';

-- ---------------------------------------------------------------- recovery

-- name: stale_sending
-- Cross-merchant: SENDING rows whose lease ran out (their sender died, or X's answer
-- was unclear), locked for this recovery pass, with the contact's X user id.
SELECT o.id, o.merchant_id, o.account_id, o.contact_id, o.conversation_id, o.source,
       o.source_ref, o.origin, o.is_from_bot, o.flow_id, o.text, o.media_url,
       o.quick_replies, o.attempts, o.resend, o.sending_at, o.message_id, c.x_user_id
  FROM outbound_dms o
  JOIN contacts c ON c.merchant_id = o.merchant_id AND c.id = o.contact_id
 WHERE o.state = 'SENDING' AND o.lease_until <= now()
 ORDER BY o.lease_until
 LIMIT %(limit)s
 FOR UPDATE OF o SKIP LOCKED;

-- name: sent_event_ids
-- X event ids of the DMs already recorded to a contact since %(since)s, whoever sent
-- them (agent, campaign, flow, AI): a lookup must not take one of them for another.
-- Echoes stored as sent from another client are not excluded: such a DM may be the
-- very one being looked for (its webhook echo outran the ledger's record).
SELECT m.x_event_id
  FROM conversations v
  JOIN messages m ON m.merchant_id = v.merchant_id AND m.conversation_id = v.id
 WHERE v.merchant_id = %(merchant_id)s AND v.contact_id = %(contact_id)s
   AND m.direction = 'OUTBOUND' AND m.x_event_id IS NOT NULL AND m.origin <> 'EXTERNAL'
   AND coalesce(m.sent_at, m.created_at) >= %(since)s;
