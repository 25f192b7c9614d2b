-- Named queries for automation flows and their executions. Every statement filters
-- on merchant_id, except the timer claim (claim_due_executions) and the next-due
-- probe, which serve every merchant by design.

-- ------------------------------------------------------------------ flows

-- name: insert_flow
INSERT INTO flows (merchant_id, account_id, name, description, definition, trigger_type)
VALUES (%(merchant_id)s, %(account_id)s, %(name)s, %(description)s, %(definition)s,
        %(trigger_type)s)
RETURNING id;

-- name: get_flow
-- The flow with its latest published version (NULLs before the first activation).
SELECT f.*, v.definition AS published_definition, v.published_at
  FROM flows f
  LEFT JOIN flow_versions v
    ON v.merchant_id = f.merchant_id AND v.flow_id = f.id AND v.version = f.published_version
 WHERE f.merchant_id = %(merchant_id)s AND f.id = %(id)s;

-- name: lock_flow
SELECT * FROM flows WHERE merchant_id = %(merchant_id)s AND id = %(id)s FOR UPDATE;

-- name: update_flow
UPDATE flows
   SET name = %(name)s, description = %(description)s, definition = %(definition)s,
       trigger_type = %(trigger_type)s, version = version + 1, updated_at = now()
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: insert_flow_version
INSERT INTO flow_versions (merchant_id, flow_id, version, definition, trigger_type)
VALUES (%(merchant_id)s, %(flow_id)s, %(version)s, %(definition)s, %(trigger_type)s);

-- name: activate_flow
UPDATE flows
   SET status = 'ACTIVE', published_version = %(published_version)s, activated_at = now(),
       version = version + 1, updated_at = now()
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: deactivate_flow
UPDATE flows SET status = 'INACTIVE', version = version + 1, updated_at = now()
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND status = 'ACTIVE';

-- name: delete_flow
DELETE FROM flows WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: list_flows
-- Newest first, keyset on (created_at, id). Optional filters are NULL when unused.
SELECT f.*, v.definition AS published_definition, v.published_at
  FROM flows f
  LEFT JOIN flow_versions v
    ON v.merchant_id = f.merchant_id AND v.flow_id = f.id AND v.version = f.published_version
 WHERE f.merchant_id = %(merchant_id)s
   AND (%(account_id)s::uuid IS NULL OR f.account_id = %(account_id)s)
   AND (%(status)s::text IS NULL OR f.status = %(status)s)
   AND (%(trigger_type)s::text IS NULL OR f.trigger_type = %(trigger_type)s)
   AND (%(after_created)s::timestamptz IS NULL
        OR (f.created_at, f.id) < (%(after_created)s, %(after_id)s::uuid))
 ORDER BY f.created_at DESC, f.id DESC
 LIMIT %(limit)s;

-- name: existing_template_ids
SELECT id FROM templates WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s::uuid[]);

-- name: existing_flow_ids
SELECT id FROM flows WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s::uuid[]);

-- name: live_execution_count
SELECT count(*) AS n FROM flow_executions
 WHERE merchant_id = %(merchant_id)s AND flow_id = %(flow_id)s
   AND status IN ('RUNNING', 'WAITING');

-- name: flow_stats
SELECT count(*) AS started,
       count(*) FILTER (WHERE status IN ('RUNNING', 'WAITING')) AS active,
       count(*) FILTER (WHERE status = 'WAITING') AS waiting,
       count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
       count(*) FILTER (WHERE status = 'FAILED') AS failed,
       count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled,
       max(started_at) AS last_start
  FROM flow_executions
 WHERE merchant_id = %(merchant_id)s AND flow_id = %(flow_id)s;

-- name: flow_node_stats
-- waiting: open WAITING steps of executions that still wait; a step closed by a
-- cancellation (SKIPPED 'cancelled') does not count as completed.
SELECT s.node_id,
       count(*) AS entered,
       count(*) FILTER (WHERE s.status = 'COMPLETED'
                           OR (s.status = 'SKIPPED' AND s.error <> 'cancelled')) AS completed,
       count(*) FILTER (WHERE s.status = 'WAITING' AND s.finished_at IS NULL) AS waiting,
       count(*) FILTER (WHERE s.status = 'FAILED') AS failed
  FROM flow_execution_steps s
 WHERE s.merchant_id = %(merchant_id)s AND s.flow_id = %(flow_id)s
 GROUP BY s.node_id;

-- ------------------------------------------------------------------ executions

-- name: active_flows_for_account
-- The ACTIVE flows of an account whose published trigger is one of the types.
SELECT f.id, f.account_id, f.published_version, v.definition, v.trigger_type
  FROM flows f
  JOIN flow_versions v
    ON v.merchant_id = f.merchant_id AND v.flow_id = f.id AND v.version = f.published_version
 WHERE f.merchant_id = %(merchant_id)s AND f.account_id = %(account_id)s
   AND f.status = 'ACTIVE' AND v.trigger_type = ANY(%(types)s::text[])
 ORDER BY f.created_at, f.id;

-- name: get_flow_version
SELECT definition FROM flow_versions
 WHERE merchant_id = %(merchant_id)s AND flow_id = %(flow_id)s AND version = %(version)s;

-- name: contact_entries
-- The contact's previous entries into the flow, for the re-entry policy.
SELECT count(*) AS n, max(started_at) AS last_start,
       bool_or(status IN ('RUNNING', 'WAITING')) AS live
  FROM flow_executions
 WHERE merchant_id = %(merchant_id)s AND flow_id = %(flow_id)s AND contact_id = %(contact_id)s;

-- name: insert_execution
-- Nothing when the trigger event already started this flow for the contact, or the
-- contact is in a live execution of it (the two unique indexes).
INSERT INTO flow_executions (merchant_id, flow_id, flow_version, account_id, contact_id,
                             conversation_id, trigger_key, trigger_event, status,
                             current_node_id, due_at)
VALUES (%(merchant_id)s, %(flow_id)s, %(flow_version)s, %(account_id)s, %(contact_id)s,
        %(conversation_id)s, %(trigger_key)s, %(trigger_event)s, 'RUNNING',
        %(node_id)s, now())
ON CONFLICT DO NOTHING
RETURNING *;

-- name: get_execution
SELECT * FROM flow_executions WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: lock_execution
SELECT * FROM flow_executions WHERE merchant_id = %(merchant_id)s AND id = %(id)s FOR UPDATE;

-- name: execution_steps
SELECT * FROM flow_execution_steps
 WHERE merchant_id = %(merchant_id)s AND execution_id = %(id)s
 ORDER BY step_no
 LIMIT 500;

-- name: list_executions
SELECT * FROM flow_executions
 WHERE merchant_id = %(merchant_id)s AND flow_id = %(flow_id)s
   AND (%(status)s::text IS NULL OR status = %(status)s)
   AND (%(contact_id)s::uuid IS NULL OR contact_id = %(contact_id)s)
   AND (%(after_created)s::timestamptz IS NULL
        OR (started_at, id) < (%(after_created)s, %(after_id)s::uuid))
 ORDER BY started_at DESC, id DESC
 LIMIT %(limit)s;

-- name: cancel_executions
-- Cancels the given flow's live executions (flow_id) or one execution (id), closing
-- their open steps. Returns the cancelled executions, with the message a parked
-- ai_reply step waited on (NULL for the others).
WITH cancelled AS (
    UPDATE flow_executions
       SET status = 'CANCELLED', due_at = NULL, waiting_for = '', completed_at = now(),
           updated_at = now()
     WHERE merchant_id = %(merchant_id)s
       AND (%(flow_id)s::uuid IS NULL OR flow_id = %(flow_id)s)
       AND (%(id)s::uuid IS NULL OR id = %(id)s)
       AND status IN ('RUNNING', 'WAITING')
    RETURNING id, context
), steps AS (
    UPDATE flow_execution_steps
       SET status = 'SKIPPED', error = 'cancelled', finished_at = now()
     WHERE merchant_id = %(merchant_id)s
       AND execution_id IN (SELECT id FROM cancelled) AND finished_at IS NULL
)
SELECT id, context ->> 'ai_reply_message_id' AS ai_reply_message_id FROM cancelled;

-- name: withdraw_ai_replies
-- The assistant's queue rows that cancelled executions were parked on (an ai_reply
-- step), withdrawn while no assistant has claimed them (QUEUED; a claimed row is
-- being answered and stays). Kept when the row is auto-reply's as well (the account
-- answers its DMs by auto-reply) or another live execution still waits on it.
DELETE FROM ai_reply_queue q
 USING accounts a
 WHERE q.merchant_id = %(merchant_id)s AND q.message_id = ANY(%(message_ids)s::uuid[])
   AND q.state = 'QUEUED'
   AND a.merchant_id = q.merchant_id AND a.id = q.account_id
   AND NOT coalesce((a.settings ->> 'auto_reply_enabled')::boolean, false)
   AND NOT EXISTS (SELECT 1 FROM flow_executions e
                    WHERE e.merchant_id = q.merchant_id AND e.contact_id = q.contact_id
                      AND e.status = 'WAITING' AND e.waiting_for = 'AI_REPLY'
                      AND e.context ->> 'ai_reply_message_id' = q.message_id::text)
RETURNING q.id;

-- name: claim_due_executions
-- Cross-merchant: the due timers, locked for the claiming transaction; rows other
-- workers hold are skipped.
SELECT * FROM flow_executions
 WHERE due_at <= now()
 ORDER BY due_at
 LIMIT %(limit)s
 FOR UPDATE SKIP LOCKED;

-- name: next_due
-- Cross-merchant: seconds until the next timer falls due (NULL: none).
SELECT extract(epoch FROM min(due_at) - now()) AS seconds
  FROM flow_executions WHERE due_at IS NOT NULL;

-- name: save_execution
UPDATE flow_executions
   SET status = %(status)s, current_node_id = %(current_node_id)s, wake_at = %(wake_at)s,
       due_at = %(due_at)s, waiting_for = %(waiting_for)s, resume_branch = '',
       context = %(context)s, step_count = %(step_count)s, error = %(error)s,
       completed_at = CASE WHEN %(status)s IN ('COMPLETED', 'FAILED', 'CANCELLED')
                           THEN now() END,
       conversation_id = coalesce(conversation_id, %(conversation_id)s),
       updated_at = now()
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: insert_step
INSERT INTO flow_execution_steps (merchant_id, execution_id, flow_id, step_no, node_id,
                                  node_type, status, branch, output, error, finished_at)
VALUES (%(merchant_id)s, %(execution_id)s, %(flow_id)s, %(step_no)s, %(node_id)s,
        %(node_type)s, %(status)s, %(branch)s, %(output)s, %(error)s,
        CASE WHEN %(status)s = 'WAITING' THEN NULL ELSE now() END);

-- name: finish_step
UPDATE flow_execution_steps
   SET status = %(status)s, branch = %(branch)s, output = output || %(output)s,
       finished_at = now()
 WHERE merchant_id = %(merchant_id)s AND execution_id = %(execution_id)s
   AND step_no = %(step_no)s;

-- name: reply_waits_for_update
SELECT * FROM flow_executions
 WHERE merchant_id = %(merchant_id)s AND contact_id = %(contact_id)s
   AND waiting_for = 'REPLY' AND status = 'WAITING'
 FOR UPDATE;

-- name: resolve_reply_wait
UPDATE flow_executions
   SET resume_branch = %(branch)s, waiting_for = '', due_at = now(),
       context = context || %(context)s, updated_at = now()
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- ------------------------------------------------------------------ what steps touch

-- name: flow_contact
SELECT id, account_id, x_user_id, username, display_name, attributes, tags, opted_out,
       time_zone, created_at
  FROM contacts WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: merchant_time_zone
SELECT time_zone FROM merchant_settings WHERE merchant_id = %(merchant_id)s;

-- name: add_contact_tags
UPDATE contacts
   SET tags = tags || ARRAY(SELECT t FROM unnest(%(tags)s::text[]) t WHERE NOT (t = ANY(tags))),
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: remove_contact_tags
UPDATE contacts
   SET tags = ARRAY(SELECT t FROM unnest(tags) t WHERE NOT (t = ANY(%(tags)s::text[]))),
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: set_contact_attribute
UPDATE contacts
   SET attributes = CASE WHEN %(remove)s THEN attributes - %(key)s
                         ELSE jsonb_set(attributes, ARRAY[%(key)s::text], %(value)s) END,
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: live_conversation
SELECT * FROM conversations
 WHERE merchant_id = %(merchant_id)s AND account_id = %(account_id)s
   AND contact_id = %(contact_id)s AND status <> 'CLOSED'
 LIMIT 1;

-- name: escalate_conversation
UPDATE conversations
   SET escalated = true, escalation_reason = %(reason)s, updated_at = now(),
       version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: inbound_message
SELECT id, text, quick_reply_metadata, conversation_id, x_event_id FROM messages
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: inbound_message_count
-- How many DMs the contact has sent (1: this is the first ever).
SELECT count(*) AS n FROM messages m
  JOIN conversations c ON c.id = m.conversation_id AND c.merchant_id = m.merchant_id
 WHERE m.merchant_id = %(merchant_id)s AND c.contact_id = %(contact_id)s
   AND m.direction = 'INBOUND';

-- name: contact_matches
-- Template: the compiled segment conditions ({where}) for one contact.
SELECT count(*) AS total
  FROM contacts c
 WHERE c.merchant_id = %(merchant_id)s AND c.id = %(contact_id)s
   AND {where};

-- name: conversation_inbound_count
-- How many DMs the contact has sent in one conversation (1: this one opened it).
SELECT count(*) AS n FROM messages
 WHERE merchant_id = %(merchant_id)s AND conversation_id = %(conversation_id)s
   AND direction = 'INBOUND';

-- name: contacts_for_steps
SELECT id, account_id, x_user_id, username, display_name, attributes, tags, opted_out,
       time_zone, created_at
  FROM contacts WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s::uuid[]);

-- name: reply_waits_many_for_update
SELECT * FROM flow_executions
 WHERE merchant_id = %(merchant_id)s AND contact_id = ANY(%(contact_ids)s::uuid[])
   AND waiting_for = 'REPLY' AND status = 'WAITING'
 ORDER BY id
 FOR UPDATE;

-- name: inbound_messages
SELECT id, text, quick_reply_metadata, conversation_id, x_event_id FROM messages
 WHERE merchant_id = %(merchant_id)s AND id = ANY(%(ids)s::uuid[]);

-- ------------------------------------------------------------------ a pass's writes
-- A step pass writes what its steps did in a few multi-row statements at its end
-- (and the contacts also before it evaluates conditions): each takes one jsonb array
-- of rows. Every row names its merchant_id; a pass serves every merchant.

-- name: insert_steps
INSERT INTO flow_execution_steps (merchant_id, execution_id, flow_id, step_no, node_id,
                                  node_type, status, branch, output, error, finished_at)
SELECT d.merchant_id, d.execution_id, d.flow_id, d.step_no, d.node_id, d.node_type,
       d.status, d.branch, d.output, d.error,
       CASE WHEN d.status = 'WAITING' THEN NULL ELSE now() END
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS d(merchant_id uuid, execution_id uuid, flow_id uuid, step_no integer,
            node_id text, node_type text, status text, branch text, output jsonb,
            error text);

-- name: finish_steps
-- The steps that parked executions (WAIT, WAIT_FOR_REPLY, AI_REPLY), finished on resume.
UPDATE flow_execution_steps s
   SET status = d.status, branch = d.branch, output = s.output || d.output,
       finished_at = now()
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS d(merchant_id uuid, execution_id uuid, step_no integer, status text,
            branch text, output jsonb)
 WHERE s.merchant_id = d.merchant_id AND s.execution_id = d.execution_id
   AND s.step_no = d.step_no;

-- name: save_executions
-- As save_execution, for every execution a pass advanced (each once).
UPDATE flow_executions e
   SET status = d.status, current_node_id = d.current_node_id, wake_at = d.wake_at,
       due_at = d.due_at, waiting_for = d.waiting_for, resume_branch = '',
       context = d.context, step_count = d.step_count, error = d.error,
       completed_at = CASE WHEN d.status IN ('COMPLETED', 'FAILED', 'CANCELLED')
                           THEN now() END,
       conversation_id = coalesce(e.conversation_id, d.conversation_id),
       updated_at = now()
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS d(merchant_id uuid, id uuid, status text, current_node_id text,
            wake_at timestamptz, due_at timestamptz, waiting_for text, context jsonb,
            step_count integer, error text, conversation_id uuid)
 WHERE e.merchant_id = d.merchant_id AND e.id = d.id;

-- name: apply_contact_changes
-- The net tag and attribute changes of a pass's steps, one row per contact, applied
-- relative to the contact as it is now (as add_contact_tags, remove_contact_tags and
-- set_contact_attribute are): tags removed, then the added ones it lacks appended in
-- order; attributes unset, then set. The contacts are locked in id order first, so
-- two passes touching the same contacts wait for each other rather than deadlock.
WITH d AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
           AS d(merchant_id uuid, id uuid, add_tags text[], del_tags text[],
                set_attrs jsonb, unset_attrs text[])
), locked AS (
    SELECT c.merchant_id, c.id FROM contacts c
      JOIN d ON c.merchant_id = d.merchant_id AND c.id = d.id
     ORDER BY c.id
       FOR UPDATE OF c
)
UPDATE contacts c
   SET tags = ARRAY(SELECT t FROM unnest(c.tags) t WHERE NOT (t = ANY(d.del_tags)))
              || ARRAY(SELECT a.t FROM unnest(d.add_tags) WITH ORDINALITY AS a(t, n)
                        WHERE NOT (a.t = ANY(c.tags)) ORDER BY a.n),
       attributes = (c.attributes - d.unset_attrs) || d.set_attrs,
       updated_at = now(), version = c.version + 1
  FROM d JOIN locked l ON l.merchant_id = d.merchant_id AND l.id = d.id
 WHERE c.merchant_id = d.merchant_id AND c.id = d.id;

-- name: contacts_matching
-- Template: which of the contacts match the compiled segment conditions ({where}).
SELECT c.id FROM contacts c
 WHERE c.merchant_id = %(merchant_id)s AND c.id = ANY(%(flow_contact_ids)s::uuid[])
   AND {where};

-- name: flows_using_template
-- The merchant's flows that still use a template in a SEND_MESSAGE node: in the
-- draft, in the published version, or in a version a live execution runs on
-- (DeleteTemplate refuses while any does). Ids are compared in canonical form.
WITH node_templates AS (
    SELECT f.id AS flow_id,
           replace(replace(replace(lower(n -> 'config' ->> 'template_id'), '-', ''),
                           '{', ''), '}', '') AS template_id
      FROM flows f
     CROSS JOIN LATERAL jsonb_array_elements(
           CASE WHEN jsonb_typeof(f.definition -> 'nodes') = 'array'
                THEN f.definition -> 'nodes' ELSE '[]'::jsonb END) n
     WHERE f.merchant_id = %(merchant_id)s AND n ->> 'type' = 'SEND_MESSAGE'
    UNION ALL
    SELECT v.flow_id,
           replace(replace(replace(lower(n -> 'config' ->> 'template_id'), '-', ''),
                           '{', ''), '}', '')
      FROM flow_versions v
      JOIN flows f ON f.merchant_id = v.merchant_id AND f.id = v.flow_id
     CROSS JOIN LATERAL jsonb_array_elements(
           CASE WHEN jsonb_typeof(v.definition -> 'nodes') = 'array'
                THEN v.definition -> 'nodes' ELSE '[]'::jsonb END) n
     WHERE v.merchant_id = %(merchant_id)s AND n ->> 'type' = 'SEND_MESSAGE'
       AND (v.version = f.published_version
            OR EXISTS (SELECT 1 FROM flow_executions e
                        WHERE e.merchant_id = v.merchant_id AND e.flow_id = v.flow_id
                          AND e.flow_version = v.version
                          AND e.status IN ('RUNNING', 'WAITING')))
)
SELECT f.id, f.name, f.status
  FROM flows f
 WHERE f.merchant_id = %(merchant_id)s
   AND f.id IN (SELECT flow_id FROM node_templates
                 WHERE template_id = replace(%(template_id)s::text, '-', ''))
 ORDER BY f.created_at, f.id;
