-- Named queries for the AI assistant: settings, sessions, daily token usage, the
-- conversation facts it reads, escalation, and the auto-reply queue. Every statement
-- filters on merchant_id, except the auto-reply loop's claim, which looks across
-- merchants by design (claim_replies).

-- ---------------------------------------------------------------- settings

-- name: get_settings
SELECT * FROM ai_settings WHERE merchant_id = %(merchant_id)s;

-- name: get_settings_for_update
SELECT * FROM ai_settings WHERE merchant_id = %(merchant_id)s FOR UPDATE;

-- name: upsert_settings
INSERT INTO ai_settings (merchant_id, enabled, model, temperature, max_tokens,
                         escalation_threshold, system_prompt, respect_business_hours,
                         escalation_keywords, handoff_message, after_hours_message, intents,
                         handoff_intents, daily_token_budget, session_timeout_seconds,
                         moderation_enabled)
VALUES (%(merchant_id)s, %(enabled)s, %(model)s, %(temperature)s, %(max_tokens)s,
        %(escalation_threshold)s, %(system_prompt)s, %(respect_business_hours)s,
        %(escalation_keywords)s, %(handoff_message)s, %(after_hours_message)s, %(intents)s,
        %(handoff_intents)s, %(daily_token_budget)s, %(session_timeout_seconds)s,
        %(moderation_enabled)s)
ON CONFLICT (merchant_id) DO UPDATE
   SET enabled = EXCLUDED.enabled, model = EXCLUDED.model,
       temperature = EXCLUDED.temperature, max_tokens = EXCLUDED.max_tokens,
       escalation_threshold = EXCLUDED.escalation_threshold,
       system_prompt = EXCLUDED.system_prompt,
       respect_business_hours = EXCLUDED.respect_business_hours,
       escalation_keywords = EXCLUDED.escalation_keywords,
       handoff_message = EXCLUDED.handoff_message,
       after_hours_message = EXCLUDED.after_hours_message, intents = EXCLUDED.intents,
       handoff_intents = EXCLUDED.handoff_intents,
       daily_token_budget = EXCLUDED.daily_token_budget,
       session_timeout_seconds = EXCLUDED.session_timeout_seconds,
       moderation_enabled = EXCLUDED.moderation_enabled,
       updated_at = now(), version = ai_settings.version + 1
RETURNING *;

-- ---------------------------------------------------------------- sessions

-- name: get_session
SELECT * FROM ai_sessions
 WHERE merchant_id = %(merchant_id)s AND conversation_id = %(conversation_id)s;

-- name: get_session_for_update
SELECT * FROM ai_sessions
 WHERE merchant_id = %(merchant_id)s AND conversation_id = %(conversation_id)s
   FOR UPDATE;

-- name: latest_contact_slots
-- The slots of the contact's most recent session in another conversation.
SELECT slots FROM ai_sessions
 WHERE merchant_id = %(merchant_id)s AND contact_id = %(contact_id)s
   AND conversation_id <> %(conversation_id)s
 ORDER BY updated_at DESC
 LIMIT 1;

-- name: save_session
-- The session upserted (its token counts added to the stored totals) and, when
-- %(record_usage)s, the day's usage counted as add_usage does, in one statement
-- (autocommit, one round trip; the two writes commit together).
WITH usage AS (
    INSERT INTO ai_usage_daily (merchant_id, day, prompt_tokens, completion_tokens, requests)
    SELECT %(merchant_id)s, (now() AT TIME ZONE 'UTC')::date, %(prompt_tokens)s,
           %(completion_tokens)s, 1
     WHERE %(record_usage)s
    ON CONFLICT (merchant_id, day) DO UPDATE
       SET prompt_tokens = ai_usage_daily.prompt_tokens + EXCLUDED.prompt_tokens,
           completion_tokens = ai_usage_daily.completion_tokens + EXCLUDED.completion_tokens,
           requests = ai_usage_daily.requests + 1
)
INSERT INTO ai_sessions (merchant_id, conversation_id, contact_id, intents, slots, summary,
                         summary_updated_at, context, current_intent, missing_slots,
                         session_started_at, last_activity_at, expires_at, prompt_tokens,
                         completion_tokens, updated_at)
VALUES (%(merchant_id)s, %(conversation_id)s, %(contact_id)s, %(intents)s, %(slots)s,
        %(summary)s, %(summary_updated_at)s, %(context)s, %(current_intent)s,
        %(missing_slots)s, %(session_started_at)s, %(last_activity_at)s, %(expires_at)s,
        %(prompt_tokens)s, %(completion_tokens)s, now())
ON CONFLICT (merchant_id, conversation_id) DO UPDATE
   SET intents = EXCLUDED.intents, slots = EXCLUDED.slots, summary = EXCLUDED.summary,
       summary_updated_at = EXCLUDED.summary_updated_at, context = EXCLUDED.context,
       current_intent = EXCLUDED.current_intent, missing_slots = EXCLUDED.missing_slots,
       session_started_at = EXCLUDED.session_started_at,
       last_activity_at = EXCLUDED.last_activity_at, expires_at = EXCLUDED.expires_at,
       prompt_tokens = ai_sessions.prompt_tokens + EXCLUDED.prompt_tokens,
       completion_tokens = ai_sessions.completion_tokens + EXCLUDED.completion_tokens,
       updated_at = now();

-- name: note_escalation
INSERT INTO ai_sessions (merchant_id, conversation_id, contact_id, escalated,
                         escalation_reason, summary, summary_updated_at)
VALUES (%(merchant_id)s, %(conversation_id)s, %(contact_id)s, true, %(reason)s, %(summary)s,
        now())
ON CONFLICT (merchant_id, conversation_id) DO UPDATE
   SET escalated = true, escalation_reason = EXCLUDED.escalation_reason,
       summary = EXCLUDED.summary, summary_updated_at = now(), updated_at = now();

-- name: claim_away
-- Records that the away message goes out for the closed period `period`; returns a
-- row only the first time for that period.
INSERT INTO ai_sessions (merchant_id, conversation_id, contact_id, away_sent_for)
VALUES (%(merchant_id)s, %(conversation_id)s, %(contact_id)s, %(period)s)
ON CONFLICT (merchant_id, conversation_id) DO UPDATE
   SET away_sent_for = EXCLUDED.away_sent_for, updated_at = now()
 WHERE ai_sessions.away_sent_for IS DISTINCT FROM EXCLUDED.away_sent_for
RETURNING id;

-- ---------------------------------------------------------------- usage

-- name: add_usage
INSERT INTO ai_usage_daily (merchant_id, day, prompt_tokens, completion_tokens, requests)
VALUES (%(merchant_id)s, (now() AT TIME ZONE 'UTC')::date, %(prompt_tokens)s,
        %(completion_tokens)s, 1)
ON CONFLICT (merchant_id, day) DO UPDATE
   SET prompt_tokens = ai_usage_daily.prompt_tokens + EXCLUDED.prompt_tokens,
       completion_tokens = ai_usage_daily.completion_tokens + EXCLUDED.completion_tokens,
       requests = ai_usage_daily.requests + 1;

-- name: usage_today
SELECT coalesce(sum(prompt_tokens + completion_tokens), 0)::bigint AS total
  FROM ai_usage_daily
 WHERE merchant_id = %(merchant_id)s AND day = (now() AT TIME ZONE 'UTC')::date;

-- ---------------------------------------------------------------- conversation facts

-- name: conversation_facts
-- The conversation with what the assistant needs of its contact and account.
SELECT c.*, ct.username AS contact_username, ct.display_name AS contact_display_name,
       ct.tags AS contact_tags, ct.attributes AS contact_attributes,
       a.settings AS account_settings,
       EXISTS (SELECT 1 FROM messages m
                WHERE m.merchant_id = c.merchant_id AND m.conversation_id = c.id
                  AND m.direction = 'OUTBOUND' AND NOT m.is_from_bot
                  AND m.origin IN ('AGENT', 'EXTERNAL')) AS human_replied
  FROM conversations c
  JOIN contacts ct ON ct.merchant_id = c.merchant_id AND ct.id = c.contact_id
  JOIN accounts a ON a.merchant_id = c.merchant_id AND a.id = c.account_id
 WHERE c.merchant_id = %(merchant_id)s AND c.id = %(conversation_id)s;

-- name: process_facts
-- Everything processing one message reads before the model, in one round trip (one
-- snapshot). The message is in a conversation (%(conversation_id)s), or outside any
-- (%(conversation_id)s NULL: the contact %(contact_id)s of the account
-- %(account_id)s). The row: the conversation (c.*, all NULL outside one) with its
-- contact's profile, its account's settings and human_replied (the columns of
-- conversation_facts); the merchant's AI settings as st_* (st_found false while
-- never stored); the conversation's session as ses_* (ses_found false when it has
-- none); prior_slots, the slots of the contact's latest session in another
-- conversation, read only when this conversation has no session; and used_today,
-- the merchant's tokens of the UTC day. No row when the conversation (or the contact
-- of that account) is not the merchant's.
WITH conv AS (
    SELECT * FROM conversations
     WHERE merchant_id = %(merchant_id)s AND id = %(conversation_id)s
), who AS (
    SELECT conv.contact_id, conv.account_id FROM conv
    UNION ALL
    SELECT ct.id, ct.account_id FROM contacts ct
     WHERE %(conversation_id)s::uuid IS NULL AND ct.merchant_id = %(merchant_id)s
       AND ct.id = %(contact_id)s AND ct.account_id = %(account_id)s
)
SELECT c.*, ct.username AS contact_username, ct.display_name AS contact_display_name,
       ct.tags AS contact_tags, ct.attributes AS contact_attributes,
       a.settings AS account_settings,
       EXISTS (SELECT 1 FROM messages m
                WHERE m.merchant_id = c.merchant_id AND m.conversation_id = c.id
                  AND m.direction = 'OUTBOUND' AND NOT m.is_from_bot
                  AND m.origin IN ('AGENT', 'EXTERNAL')) AS human_replied,
       st.merchant_id IS NOT NULL AS st_found, st.enabled AS st_enabled,
       st.model AS st_model, st.temperature AS st_temperature,
       st.max_tokens AS st_max_tokens, st.escalation_threshold AS st_escalation_threshold,
       st.system_prompt AS st_system_prompt,
       st.respect_business_hours AS st_respect_business_hours,
       st.escalation_keywords AS st_escalation_keywords,
       st.handoff_message AS st_handoff_message,
       st.after_hours_message AS st_after_hours_message, st.intents AS st_intents,
       st.handoff_intents AS st_handoff_intents,
       st.daily_token_budget AS st_daily_token_budget,
       st.session_timeout_seconds AS st_session_timeout_seconds,
       st.moderation_enabled AS st_moderation_enabled, st.updated_at AS st_updated_at,
       st.version AS st_version,
       ses.id IS NOT NULL AS ses_found, ses.context AS ses_context,
       ses.current_intent AS ses_current_intent, ses.missing_slots AS ses_missing_slots,
       ses.slots AS ses_slots, ses.intents AS ses_intents, ses.summary AS ses_summary,
       ses.session_started_at AS ses_session_started_at,
       ses.last_activity_at AS ses_last_activity_at, ses.expires_at AS ses_expires_at,
       ses.escalated AS ses_escalated, ses.prompt_tokens AS ses_prompt_tokens,
       ses.completion_tokens AS ses_completion_tokens,
       ses.away_sent_for AS ses_away_sent_for,
       CASE WHEN c.id IS NOT NULL AND ses.id IS NULL THEN
           (SELECT p.slots FROM ai_sessions p
             WHERE p.merchant_id = c.merchant_id AND p.contact_id = c.contact_id
               AND p.conversation_id <> c.id
             ORDER BY p.updated_at DESC
             LIMIT 1)
       END AS prior_slots,
       (SELECT coalesce(sum(u.prompt_tokens + u.completion_tokens), 0)::bigint
          FROM ai_usage_daily u
         WHERE u.merchant_id = ct.merchant_id
           AND u.day = (now() AT TIME ZONE 'UTC')::date) AS used_today
  FROM who
  JOIN contacts ct ON ct.merchant_id = %(merchant_id)s AND ct.id = who.contact_id
  JOIN accounts a ON a.merchant_id = ct.merchant_id AND a.id = who.account_id
  LEFT JOIN conv c ON true
  LEFT JOIN ai_settings st ON st.merchant_id = ct.merchant_id
  LEFT JOIN ai_sessions ses ON ses.merchant_id = ct.merchant_id AND ses.conversation_id = c.id;

-- name: contact_facts
SELECT ct.id AS contact_id, ct.username AS contact_username,
       ct.display_name AS contact_display_name, ct.tags AS contact_tags,
       ct.attributes AS contact_attributes, a.id AS account_id,
       a.settings AS account_settings
  FROM contacts ct
  JOIN accounts a ON a.merchant_id = ct.merchant_id AND a.id = ct.account_id
 WHERE ct.merchant_id = %(merchant_id)s AND ct.id = %(contact_id)s
   AND a.id = %(account_id)s;

-- name: recent_messages
SELECT * FROM messages
 WHERE merchant_id = %(merchant_id)s AND conversation_id = %(conversation_id)s
 ORDER BY created_at DESC, id DESC
 LIMIT %(limit)s;

-- name: latest_inbound_message
SELECT id, text FROM messages
 WHERE merchant_id = %(merchant_id)s AND conversation_id = %(conversation_id)s
   AND direction = 'INBOUND'
 ORDER BY created_at DESC, id DESC
 LIMIT 1;

-- name: mark_escalated
UPDATE conversations
   SET escalated = true, escalation_reason = %(reason)s,
       status = CASE WHEN status = 'CLOSED' THEN status ELSE 'OPEN' END,
       snooze_until = CASE WHEN status = 'SNOOZED' THEN NULL ELSE snooze_until END,
       assignee_user_id = CASE WHEN %(assignee)s = '' THEN assignee_user_id
                               ELSE %(assignee)s END,
       updated_at = now(), version = version + 1
 WHERE merchant_id = %(merchant_id)s AND id = %(conversation_id)s AND status <> 'CLOSED'
RETURNING *;

-- ---------------------------------------------------------------- auto-reply queue

-- name: enqueue_reply
-- One row per inbound message of an account with auto_reply_enabled (any account
-- for an automation's ai_reply step: require_auto_reply false). A message
-- older than %(max_age_seconds)s (a new consumer's cursor starts at the first event
-- ever recorded) is left to humans: the bot never answers stale messages.
INSERT INTO ai_reply_queue (merchant_id, account_id, contact_id, conversation_id, message_id,
                            instructions)
SELECT c.merchant_id, c.account_id, c.contact_id, c.id, m.id, %(instructions)s
  FROM conversations c
  JOIN accounts a ON a.merchant_id = c.merchant_id AND a.id = c.account_id
  JOIN messages m ON m.merchant_id = c.merchant_id AND m.conversation_id = c.id
 WHERE c.merchant_id = %(merchant_id)s AND c.id = %(conversation_id)s
   AND m.id = %(message_id)s AND m.direction = 'INBOUND'
   AND m.created_at > now() - make_interval(secs => %(max_age_seconds)s)
   AND (NOT %(require_auto_reply)s
        OR coalesce((a.settings ->> 'auto_reply_enabled')::boolean, false))
ON CONFLICT (merchant_id, message_id) DO NOTHING;

-- name: notify_replies
SELECT pg_notify('mktx_ai_replies', %(merchant_id)s::text);

-- name: claim_replies
-- Cross-merchant: due rows (and rows whose worker's lease ran out), oldest first,
-- one per conversation at a time (a conversation's messages are answered in order).
UPDATE ai_reply_queue q
   SET state = 'WORKING', lease_until = now() + make_interval(secs => %(lease_seconds)s),
       attempts = q.attempts + 1
 WHERE q.id IN (
       SELECT r.id FROM ai_reply_queue r
        WHERE ((r.state = 'QUEUED' AND r.ready_at <= now())
               OR (r.state = 'WORKING' AND r.lease_until < now()))
          AND NOT EXISTS (SELECT 1 FROM ai_reply_queue e
                           WHERE e.merchant_id = r.merchant_id
                             AND e.conversation_id = r.conversation_id
                             AND e.id < r.id AND e.state <> 'DONE')
        ORDER BY r.ready_at, r.id
        LIMIT %(limit)s
          FOR UPDATE SKIP LOCKED)
RETURNING q.*;

-- name: finish_reply
-- Records the outcome and, in the same statement, makes the automation executions
-- parked on this message (an ai_reply step: waiting_for 'AI_REPLY', the message id
-- in context.ai_reply_message_id) due now, so the step runner resumes them on the
-- outcome's branch (worker/automation.py). finished: 0 when the lease was lost.
WITH done AS (
    UPDATE ai_reply_queue
       SET state = 'DONE', outcome = %(outcome)s, detail = %(detail)s, done_at = now(),
           lease_until = NULL
     WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND state = 'WORKING'
    RETURNING merchant_id, contact_id, message_id
), woken AS (
    UPDATE flow_executions e
       SET due_at = now(), updated_at = now()
      FROM done
     WHERE e.merchant_id = done.merchant_id AND e.contact_id = done.contact_id
       AND e.status = 'WAITING' AND e.waiting_for = 'AI_REPLY'
       AND e.context ->> 'ai_reply_message_id' = done.message_id::text
    RETURNING e.id
)
SELECT (SELECT count(*) FROM done) AS finished, (SELECT count(*) FROM woken) AS woken;

-- name: notify_automation
-- Wakes the automation step runners (store/automation.py CHANNEL).
SELECT pg_notify('mktx_automation', %(merchant_id)s::text);

-- name: get_reply_for_message
SELECT * FROM ai_reply_queue WHERE merchant_id = %(merchant_id)s AND message_id = %(message_id)s;

-- name: retry_reply
UPDATE ai_reply_queue
   SET state = 'QUEUED', detail = %(detail)s, lease_until = NULL,
       ready_at = now() + make_interval(secs => %(delay_seconds)s)
 WHERE merchant_id = %(merchant_id)s AND id = %(id)s AND state = 'WORKING';

-- name: get_reply
SELECT * FROM ai_reply_queue WHERE merchant_id = %(merchant_id)s AND id = %(id)s;

-- name: purge_done_replies
-- Cross-merchant housekeeping: answered rows older than the retention, in batches.
DELETE FROM ai_reply_queue
 WHERE id IN (SELECT id FROM ai_reply_queue
               WHERE state = 'DONE' AND done_at < now() - make_interval(secs => %(keep_seconds)s)
               ORDER BY id LIMIT %(limit)s);
