-- The campaign engine's send ledger (worker/dispatch.py through store/dispatch.py):
-- discovery, claims, outcomes, recovery, schedules and the effects of inbox events on
-- ledger rows. Every statement that touches tenant data filters on merchant_id,
-- except the dispatcher's cross-merchant discovery queries (marked), which return
-- merchant_id for the per-tenant ones. The statements are tuned (see
-- bench/results/dispatch.md); change them with the benchmark at hand.
--
-- Lock order: a transaction that changes ledger rows and counters locks the ledger
-- rows first and the campaign row last. Cancel and end-of-campaign lock the campaign
-- first and take only unlocked QUEUED rows (SKIP LOCKED); leftovers are swept later.
-- Claims (claim_candidates, stale_sending, due_*) never wait: SKIP LOCKED. A
-- recording transaction (finish_sent and the rest) first takes its rows' locks in one
-- order, ids ascending: its ledger rows (lock_recipients), then the contacts it will
-- touch (lock_contacts). finish_sent's multi-row UPDATEs lock in join order, which
-- differs between transactions; two workers recording sends to the same contacts
-- (two campaigns, one segment) would otherwise deadlock on contacts/conversations.

-- ---------------------------------------------------------------- dispatcher

-- name: campaigns_to_dispatch
-- Cross-merchant: RUNNING campaigns not waiting, with claimable rows, and the
-- account's DM budget left (NULL when the account has no budget row yet).
SELECT c.id, c.merchant_id, c.account_id, c.max_sends_per_hour,
       coalesce((SELECT h.sent FROM campaign_metrics_hourly h
                  WHERE h.merchant_id = c.merchant_id AND h.campaign_id = c.id
                    AND h.hour = date_trunc('hour', now())), 0) AS sent_this_hour,
       (SELECT count(*) FROM campaign_recipients s
         WHERE s.merchant_id = c.merchant_id AND s.campaign_id = c.id
           AND s.state = 'SENDING') AS in_flight
  FROM campaigns c
 WHERE c.status = 'RUNNING' AND (c.wait_until IS NULL OR c.wait_until <= now())
   AND EXISTS (SELECT 1 FROM campaign_recipients r
                WHERE r.merchant_id = c.merchant_id AND r.campaign_id = c.id
                  AND r.state = 'QUEUED' AND r.ready_at <= now())
 ORDER BY c.wait_until NULLS FIRST, c.started_at
 LIMIT %(limit)s;

-- name: set_waiting
-- A RUNNING campaign waits (window, budget, cap, account) until %(until)s.
UPDATE campaigns SET wait_until = %(until)s, status_reason = %(reason)s
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND status = 'RUNNING'
   AND (status_reason IS DISTINCT FROM %(reason)s OR wait_until IS DISTINCT FROM %(until)s);

-- name: clear_waiting
UPDATE campaigns SET status_reason = ''
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND status = 'RUNNING'
   AND status_reason <> '';

-- name: claim_candidates
-- One campaign's claimable rows, locked; other dispatchers skip them.
SELECT r.id, r.contact_id, r.step, r.due_at, r.attempts,
       c.x_user_id, c.username, c.display_name, c.attributes, c.time_zone,
       c.opted_out
  FROM campaign_recipients r
  JOIN contacts c ON c.merchant_id = r.merchant_id AND c.id = r.contact_id
 WHERE r.merchant_id = %(merchant_id)s AND r.campaign_id = %(campaign_id)s
   AND r.state = 'QUEUED' AND r.ready_at <= now()
 ORDER BY r.ready_at
 LIMIT %(limit)s
 FOR UPDATE OF r SKIP LOCKED;

-- name: contact_facts
-- Exclusion facts at due time: a DM from the account within the period (other than
-- this campaign's), and a conversation that is not CLOSED.
SELECT x.contact_id,
       (%(within)s::interval > interval '0' AND EXISTS (
          SELECT 1 FROM conversations v JOIN messages m
            ON m.merchant_id = v.merchant_id AND m.conversation_id = v.id
          WHERE v.merchant_id = %(merchant_id)s AND v.account_id = %(account_id)s
            AND v.contact_id = x.contact_id AND m.direction = 'OUTBOUND'
            AND m.sent_at > now() - %(within)s::interval
            AND m.campaign_id IS DISTINCT FROM %(campaign_id)s::uuid)) AS recently_messaged,
       EXISTS (SELECT 1 FROM conversations v
                WHERE v.merchant_id = %(merchant_id)s AND v.account_id = %(account_id)s
                  AND v.contact_id = x.contact_id AND v.status <> 'CLOSED') AS open_conversation
  FROM unnest(%(contact_ids)s::uuid[]) AS x(contact_id);

-- name: mark_sending
UPDATE campaign_recipients r
   SET state = 'SENDING', text = x.text, attempts = r.attempts + 1, sending_at = now(),
       lease_until = now() + %(lease)s::interval, reason = '', updated_at = now()
  FROM unnest(%(ids)s::bigint[], %(texts)s::text[]) AS x(id, text)
 WHERE r.merchant_id = %(merchant_id)s AND r.id = x.id;

-- name: defer_rows
UPDATE campaign_recipients r
   SET ready_at = x.at, updated_at = now()
  FROM unnest(%(ids)s::bigint[], %(ats)s::timestamptz[]) AS x(id, at)
 WHERE r.merchant_id = %(merchant_id)s AND r.id = x.id AND r.state = 'QUEUED';

-- name: settle_rows
-- QUEUED or SENDING rows become FAILED or SKIPPED with their reasons.
UPDATE campaign_recipients r
   SET state = %(state)s, reason = left(x.reason, 1000), settled_at = now(),
       lease_until = NULL, updated_at = now()
  FROM unnest(%(ids)s::bigint[], %(reasons)s::text[]) AS x(id, reason)
 WHERE r.merchant_id = %(merchant_id)s AND r.id = x.id AND r.state IN ('QUEUED', 'SENDING')
RETURNING r.id;

-- name: requeue_rows
-- SENDING rows known not to have reached X go back to QUEUED; the reason says what
-- they wait for ("X rate limit until …", "breaker open until …"; empty: nothing).
-- Rows refused before they left (%(refund)s) get their attempt back: X never saw them.
UPDATE campaign_recipients r
   SET state = 'QUEUED', ready_at = %(ready_at)s, lease_until = NULL,
       reason = left(%(reason)s, 1000), updated_at = now(),
       attempts = CASE WHEN %(refund)s THEN greatest(0, r.attempts - 1) ELSE r.attempts END
 WHERE r.merchant_id = %(merchant_id)s AND r.id = ANY(%(ids)s::bigint[])
   AND r.state = 'SENDING';

-- name: extend_lease
-- SENDING rows stay their holder's until %(until)s; the reason says what is pending
-- ("resolving an ambiguous send at X", ...).
UPDATE campaign_recipients
   SET lease_until = %(until)s, reason = left(%(reason)s, 1000), updated_at = now()
 WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s::bigint[]) AND state = 'SENDING';

-- name: lock_recipients
-- A recording transaction's ledger rows, locked in id order (see the lock order above).
SELECT id FROM campaign_recipients
 WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s::bigint[])
 ORDER BY id
   FOR UPDATE;

-- name: lock_contacts
-- The contacts a recording transaction touches, locked in id order, after its rows.
SELECT id FROM contacts
 WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s::uuid[])
 ORDER BY id
   FOR UPDATE;

-- name: finish_sent
-- Rows X accepted: each DM becomes an outbound message in the contact's conversation
-- (the live one, else the latest; a new CLOSED one when the contact has none, so a
-- campaign never opens support work) and the row becomes SENT with its ids. The
-- conversation's preview is %(previews)s, made by domain.conversations.preview.
-- Returns each row with its message (``inserted``: stored by this statement, not a
-- webhook echo of the DM taken over), for the message events.
WITH x AS (
  SELECT * FROM unnest(%(ids)s::bigint[], %(contact_ids)s::uuid[], %(x_event_ids)s::text[],
                       %(x_conversation_ids)s::text[], %(sent_ats)s::timestamptz[],
                       %(previews)s::text[])
           AS x(id, contact_id, x_event_id, x_conversation_id, sent_at, preview)
), rows AS (
  SELECT r.id, r.contact_id, r.text, x.x_event_id, x.x_conversation_id, x.sent_at, x.preview
    FROM campaign_recipients r JOIN x ON x.id = r.id
   WHERE r.merchant_id = %(merchant_id)s AND r.state = 'SENDING'
), existing AS (
  SELECT DISTINCT ON (v.contact_id) v.contact_id, v.id
    FROM conversations v
   WHERE v.merchant_id = %(merchant_id)s AND v.account_id = %(account_id)s
     AND v.contact_id IN (SELECT contact_id FROM rows)
   ORDER BY v.contact_id, (v.status <> 'CLOSED') DESC, coalesce(v.last_message_at, v.created_at) DESC
), opened AS (
  -- The statement's other parts do not see these rows (one snapshot), so a new
  -- conversation gets its preview and counter here and conv_note updates existing ones.
  INSERT INTO conversations (merchant_id, account_id, contact_id, x_conversation_id, status,
                             close_reason, closed_at, created_closed, last_message_preview,
                             last_message_at, message_count)
  SELECT DISTINCT ON (rows.contact_id) %(merchant_id)s, %(account_id)s, rows.contact_id,
         rows.x_conversation_id, 'CLOSED', 'campaign', now(), true, rows.preview,
         rows.sent_at, 1
    FROM rows WHERE rows.contact_id NOT IN (SELECT contact_id FROM existing)
   ORDER BY rows.contact_id, rows.sent_at DESC
  RETURNING contact_id, id
), conv AS (
  SELECT contact_id, id FROM existing UNION ALL SELECT contact_id, id FROM opened
), msg AS (
  INSERT INTO messages AS m (merchant_id, conversation_id, direction, type, text,
                             sender_user_id, x_event_id, delivery_state, origin,
                             campaign_id, sent_at, created_at)
  SELECT %(merchant_id)s, conv.id, 'OUTBOUND', 'TEXT', rows.text, '',
         rows.x_event_id, 'SENT', 'CAMPAIGN', %(campaign_id)s, rows.sent_at, rows.sent_at
    FROM rows JOIN conv ON conv.contact_id = rows.contact_id
  ON CONFLICT (merchant_id, x_event_id) WHERE x_event_id IS NOT NULL
  DO UPDATE SET campaign_id = EXCLUDED.campaign_id
  -- xmax is 0 for a row this statement inserted (not an echo it took over).
  RETURNING m.id, m.x_event_id, m.conversation_id, (m.xmax = 0) AS inserted
), conv_note AS (
  UPDATE conversations v
     SET last_message_preview = n.preview, last_message_at = n.sent_at,
         message_count = v.message_count + 1, updated_at = now()
    FROM (SELECT DISTINCT ON (msg.conversation_id) msg.conversation_id, rows.preview, rows.sent_at
            FROM msg JOIN rows ON rows.x_event_id = msg.x_event_id) n
   WHERE v.merchant_id = %(merchant_id)s AND v.id = n.conversation_id
), interactions AS (
  INSERT INTO contact_interactions (merchant_id, contact_id, kind, occurred_at, ref)
  SELECT %(merchant_id)s, rows.contact_id, 'MESSAGE_OUT', rows.sent_at, rows.x_event_id FROM rows
), touched AS (
  UPDATE contacts c
     SET last_interaction_at = greatest(c.last_interaction_at, rows.sent_at),
         first_interaction_at = coalesce(c.first_interaction_at, rows.sent_at)
    FROM rows
   WHERE c.merchant_id = %(merchant_id)s AND c.id = rows.contact_id
)
UPDATE campaign_recipients r
   SET state = 'SENT', x_event_id = rows.x_event_id, message_id = msg.id,
       sent_at = rows.sent_at, settled_at = now(), lease_until = NULL, reason = '',
       updated_at = now()
  FROM rows JOIN msg ON msg.x_event_id = rows.x_event_id
 WHERE r.merchant_id = %(merchant_id)s AND r.id = rows.id
RETURNING r.id, r.contact_id, r.step, msg.id AS message_id,
          msg.conversation_id, msg.inserted, rows.x_event_id;

-- name: insert_steps
-- The next step of a sequence for contacts whose previous step was sent.
INSERT INTO campaign_recipients (merchant_id, campaign_id, contact_id, step, due_at, ready_at)
SELECT %(merchant_id)s, %(campaign_id)s, x.contact_id, x.step, x.due_at, x.due_at
  FROM unnest(%(contact_ids)s::uuid[], %(steps)s::int[], %(due_ats)s::timestamptz[])
       AS x(contact_id, step, due_at)
ON CONFLICT (campaign_id, contact_id, step) DO NOTHING
RETURNING id;

-- ---------------------------------------------------------------- recovery

-- name: stale_sending
-- Cross-merchant: SENDING rows whose lease ran out (their dispatcher died or X's
-- answer was unclear), locked for this recovery pass.
SELECT r.id, r.merchant_id, r.campaign_id, r.contact_id, r.step, r.text, r.attempts,
       r.sending_at, c.x_user_id, k.account_id, k.status AS campaign_status
  FROM campaign_recipients r
  JOIN contacts c ON c.merchant_id = r.merchant_id AND c.id = r.contact_id
  JOIN campaigns k ON k.merchant_id = r.merchant_id AND k.id = r.campaign_id
 WHERE r.state = 'SENDING' AND r.lease_until < now()
 ORDER BY r.lease_until
 LIMIT %(limit)s
 FOR UPDATE OF r SKIP LOCKED;

-- name: contact_sent_event_ids
-- X event ids already recorded for a contact in any campaign: crash recovery must not
-- claim one of them as the DM a stale SENDING row sent.
SELECT x_event_id FROM campaign_recipients
 WHERE merchant_id = %(merchant_id)s AND contact_id = %(contact_id)s AND x_event_id IS NOT NULL;

-- name: sweep_leftovers
-- Cross-merchant: QUEUED rows of campaigns that ended while a dispatcher held them.
UPDATE campaign_recipients r
   SET state = 'SKIPPED', settled_at = now(), updated_at = now(),
       reason = CASE WHEN k.status = 'CANCELLED' THEN 'campaign_cancelled'
                     ELSE 'end_time_passed' END
  FROM campaigns k
 WHERE k.status IN ('CANCELLED', 'COMPLETED') AND k.completed_at > now() - interval '1 day'
   AND r.merchant_id = k.merchant_id AND r.campaign_id = k.id AND r.state = 'QUEUED'
RETURNING r.merchant_id, r.campaign_id;

-- ---------------------------------------------------------------- scheduler

-- name: due_scheduled
-- Cross-merchant: SCHEDULED campaigns whose start time came.
SELECT id, merchant_id FROM campaigns
 WHERE status = 'SCHEDULED' AND start_at <= now()
 ORDER BY start_at
 LIMIT %(limit)s
 FOR UPDATE SKIP LOCKED;

-- name: due_to_end
-- Cross-merchant: live campaigns past end_time, or RUNNING ones (not WELCOME) with
-- nothing left to send.
SELECT c.id, c.merchant_id,
       (c.end_at IS NOT NULL AND c.end_at <= now()) AS ended
  FROM campaigns c
 WHERE c.status IN ('RUNNING', 'PAUSED')
   AND ((c.end_at IS NOT NULL AND c.end_at <= now())
        OR (c.status = 'RUNNING' AND c.type <> 'WELCOME'
            AND NOT EXISTS (SELECT 1 FROM campaign_recipients r
                             WHERE r.merchant_id = c.merchant_id AND r.campaign_id = c.id
                               AND r.state IN ('QUEUED', 'SENDING'))))
 LIMIT %(limit)s
 FOR UPDATE OF c SKIP LOCKED;

-- ---------------------------------------------------------------- inbox events (the campaign outbox consumer)

-- name: mark_delivered
-- A delivery echo of a campaign message: SENT rows become DELIVERED.
UPDATE campaign_recipients
   SET state = 'DELIVERED', delivered_at = coalesce(delivered_at, %(at)s), updated_at = now()
 WHERE merchant_id = %(merchant_id)s AND message_id = %(message_id)s AND state = 'SENT'
RETURNING campaign_id;

-- name: mark_read
-- A read receipt: SENT/DELIVERED rows become READ (delivered too, if not yet).
UPDATE campaign_recipients r
   SET state = 'READ', read_at = %(at)s, delivered_at = coalesce(r.delivered_at, %(at)s),
       updated_at = now()
  FROM campaign_recipients old
 WHERE r.merchant_id = %(merchant_id)s AND r.message_id = %(message_id)s
   AND r.state IN ('SENT', 'DELIVERED') AND old.id = r.id
RETURNING r.campaign_id, (old.delivered_at IS NULL) AS newly_delivered;

-- name: mark_replied
-- An inbound DM from a contact: per campaign, the contact's latest row sent within
-- the attribution window becomes REPLIED (once per row).
UPDATE campaign_recipients r
   SET state = 'REPLIED', replied_at = %(at)s, updated_at = now()
  FROM (SELECT DISTINCT ON (r2.campaign_id) r2.id
          FROM campaign_recipients r2
          JOIN campaigns k ON k.merchant_id = r2.merchant_id AND k.id = r2.campaign_id
         WHERE r2.merchant_id = %(merchant_id)s AND r2.contact_id = %(contact_id)s
           AND r2.sent_at IS NOT NULL AND r2.sent_at <= %(at)s
           AND r2.sent_at > %(at)s - k.attribution_window
         ORDER BY r2.campaign_id, r2.sent_at DESC) pick
 WHERE r.id = pick.id AND r.merchant_id = %(merchant_id)s
   AND r.state IN ('SENT', 'DELIVERED', 'READ') AND r.replied_at IS NULL
RETURNING r.campaign_id;

-- name: stop_on_reply
-- The contact replied: later steps of sequences that stop on reply are SKIPPED.
UPDATE campaign_recipients r
   SET state = 'SKIPPED', reason = 'replied', settled_at = now(), updated_at = now()
  FROM campaigns k
 WHERE r.merchant_id = %(merchant_id)s AND r.contact_id = %(contact_id)s
   AND r.state = 'QUEUED'
   AND k.merchant_id = r.merchant_id AND k.id = r.campaign_id
   AND k.type IN ('FOLLOW_UP', 'DRIP') AND k.stop_on_reply
   AND EXISTS (SELECT 1 FROM campaign_recipients s
                WHERE s.merchant_id = r.merchant_id AND s.campaign_id = r.campaign_id
                  AND s.contact_id = r.contact_id AND s.sent_at IS NOT NULL
                  AND s.sent_at <= %(at)s)
RETURNING r.campaign_id;

-- name: welcome_campaigns
-- RUNNING welcome campaigns of the account a follow arrived on.
SELECT id FROM campaigns
 WHERE merchant_id = %(merchant_id)s AND account_id = %(account_id)s
   AND type = 'WELCOME' AND status = 'RUNNING'
   AND (end_at IS NULL OR end_at > now());
