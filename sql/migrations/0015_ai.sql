-- The AI assistant (issue 10): settings beyond 0001's, sessions with expiry and
-- context, token usage per merchant per day, and the auto-reply queue.

-- ---------------------------------------------------------------- settings
ALTER TABLE ai_settings ADD COLUMN escalation_keywords text[] NOT NULL DEFAULT '{}';
ALTER TABLE ai_settings ADD COLUMN handoff_message text NOT NULL
    DEFAULT 'Thanks! A member of our team will get back to you shortly.';
ALTER TABLE ai_settings ADD COLUMN after_hours_message text NOT NULL
    DEFAULT 'Thanks for your message! We are away right now and will reply as soon as we are back.';
-- [{name, description, examples: [..], slots: [{name, type, required, prompt}]}]
ALTER TABLE ai_settings ADD COLUMN intents jsonb NOT NULL DEFAULT '[]';
ALTER TABLE ai_settings ADD COLUMN handoff_intents text[] NOT NULL DEFAULT '{}';
ALTER TABLE ai_settings ADD COLUMN daily_token_budget bigint NOT NULL DEFAULT 0;
ALTER TABLE ai_settings ADD COLUMN session_timeout_seconds integer NOT NULL DEFAULT 1800;
ALTER TABLE ai_settings ADD COLUMN moderation_enabled boolean NOT NULL DEFAULT true;

-- ---------------------------------------------------------------- sessions
-- One row per conversation; a "fresh session" after expiry resets the context and
-- intent in place (session_started_at moves) and keeps the still-valid slots.
ALTER TABLE ai_sessions ADD COLUMN contact_id uuid;
-- [{role: user|assistant, text, at}], the last 10.
ALTER TABLE ai_sessions ADD COLUMN context jsonb NOT NULL DEFAULT '[]';
ALTER TABLE ai_sessions ADD COLUMN current_intent text NOT NULL DEFAULT '';
ALTER TABLE ai_sessions ADD COLUMN missing_slots text[] NOT NULL DEFAULT '{}';
ALTER TABLE ai_sessions ADD COLUMN session_started_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE ai_sessions ADD COLUMN last_activity_at timestamptz;
ALTER TABLE ai_sessions ADD COLUMN expires_at timestamptz;
ALTER TABLE ai_sessions ADD COLUMN summary_updated_at timestamptz;
ALTER TABLE ai_sessions ADD COLUMN prompt_tokens bigint NOT NULL DEFAULT 0;
ALTER TABLE ai_sessions ADD COLUMN completion_tokens bigint NOT NULL DEFAULT 0;
-- The closed period (its next opening, ISO) in which the away message was sent.
ALTER TABLE ai_sessions ADD COLUMN away_sent_for text NOT NULL DEFAULT '';
-- A contact's new conversation starts from the slots of its latest session.
CREATE INDEX ai_sessions_contact ON ai_sessions (merchant_id, contact_id, updated_at DESC);

-- ---------------------------------------------------------------- usage
CREATE TABLE ai_usage_daily (
    merchant_id       uuid    NOT NULL,
    day               date    NOT NULL,
    prompt_tokens     bigint  NOT NULL DEFAULT 0,
    completion_tokens bigint  NOT NULL DEFAULT 0,
    requests          bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (merchant_id, day)
);

-- ---------------------------------------------------------------- auto-reply queue
-- The ai-auto-reply outbox consumer writes one row per inbound DM of an account
-- with auto_reply_enabled (quick database work); worker/auto_reply.py drains it,
-- calling the model outside any transaction, so a slow model never holds the
-- outbox stream. Every row ends DONE with its outcome (REPLIED, AWAY, ESCALATED,
-- SKIPPED): no inbound message is silently left unanswered.
CREATE TABLE ai_reply_queue (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id     uuid        NOT NULL,
    account_id      uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    contact_id      uuid        NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    conversation_id uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    message_id      uuid        NOT NULL,
    state           text        NOT NULL DEFAULT 'QUEUED'
        CHECK (state IN ('QUEUED', 'WORKING', 'DONE')),
    outcome         text        NOT NULL DEFAULT '',
    detail          text        NOT NULL DEFAULT '',
    attempts        integer     NOT NULL DEFAULT 0,
    ready_at        timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    done_at         timestamptz,
    UNIQUE (merchant_id, message_id)
);
-- Drained across merchants (like outbound_dms), so not led by merchant_id.
CREATE INDEX ai_reply_queue_ready ON ai_reply_queue (ready_at, id) WHERE state = 'QUEUED';
CREATE INDEX ai_reply_queue_lease ON ai_reply_queue (lease_until) WHERE state = 'WORKING';
CREATE INDEX ai_reply_queue_conversation ON ai_reply_queue (merchant_id, conversation_id, id);
