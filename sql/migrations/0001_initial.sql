-- The whole domain model of mktx-grpc.
--
-- Rules that hold for every tenant-owned table:
-- * `merchant_id uuid NOT NULL`, and every index leads with it, so tenant isolation is
--   easy to audit and the schema can later be distributed by merchant_id.
-- * `version` counts updates; the API's etag is derived from it.
-- * Enumerations are text with CHECK constraints: readable in psql, cheap to extend
--   with a forward migration.

-- ---------------------------------------------------------------- idempotency
-- Create RPCs with a request_id record it here in the creating transaction, so a
-- retried Create returns the first resource instead of making a second one.
CREATE TABLE idempotency_keys (
    merchant_id  uuid        NOT NULL,
    scope        text        NOT NULL,            -- e.g. 'template'
    request_id   text        NOT NULL,
    resource_id  uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, scope, request_id)
);

-- ---------------------------------------------------------------- accounts
CREATE TABLE accounts (
    id                   uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    merchant_id          uuid        NOT NULL,
    x_user_id            text        NOT NULL,
    username             text        NOT NULL DEFAULT '',
    display_name         text        NOT NULL DEFAULT '',
    profile_image_url    text        NOT NULL DEFAULT '',
    followers_count      bigint      NOT NULL DEFAULT 0,
    status               text        NOT NULL DEFAULT 'ACTIVE'
        CHECK (status IN ('PENDING', 'ACTIVE', 'INACTIVE', 'ERROR', 'DISCONNECTED')),
    status_reason        text        NOT NULL DEFAULT '',
    auth_method          text        NOT NULL
        CHECK (auth_method IN ('OAUTH1', 'OAUTH2')),
    scopes               text[]      NOT NULL DEFAULT '{}',
    -- Tokens are AES-GCM ciphertexts (nonce || ciphertext || tag); never plaintext.
    access_token_enc     bytea,
    token_secret_enc     bytea,      -- OAuth 1.0a token secret
    refresh_token_enc    bytea,      -- OAuth 2.0 refresh token
    token_expires_at     timestamptz,
    settings             jsonb       NOT NULL DEFAULT '{}',
    webhook_id           text        NOT NULL DEFAULT '',
    webhook_url          text        NOT NULL DEFAULT '',
    webhook_subscribed   boolean     NOT NULL DEFAULT false,
    webhook_validated_at timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    version              bigint      NOT NULL DEFAULT 1
);
CREATE INDEX accounts_merchant_created ON accounts (merchant_id, created_at DESC, id DESC);
-- One live connection per X user across all merchants: webhook events are routed by
-- X user id (`for_user_id`), which must name exactly one account. This index cannot
-- lead with merchant_id, by design.
CREATE UNIQUE INDEX accounts_live_x_user ON accounts (x_user_id)
    WHERE status <> 'DISCONNECTED';

-- Pending OAuth connections between StartConnection and CompleteConnection.
CREATE TABLE oauth_connections (
    state                 text        PRIMARY KEY,
    merchant_id           uuid        NOT NULL,
    auth_method           text        NOT NULL CHECK (auth_method IN ('OAUTH1', 'OAUTH2')),
    callback_uri          text        NOT NULL,
    scopes                text[]      NOT NULL DEFAULT '{}',
    request_token         text,       -- OAuth 1.0a request token (public value)
    request_secret_enc    bytea,      -- OAuth 1.0a request token secret
    code_verifier_enc     bytea,      -- OAuth 2.0 PKCE verifier
    expires_at            timestamptz NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX oauth_connections_merchant ON oauth_connections (merchant_id, expires_at);

-- ---------------------------------------------------------------- contacts
CREATE TABLE contacts (
    id                   uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    merchant_id          uuid        NOT NULL,
    account_id           uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    x_user_id            text        NOT NULL,
    username             text        NOT NULL DEFAULT '',
    display_name         text        NOT NULL DEFAULT '',
    profile_image_url    text        NOT NULL DEFAULT '',
    source               text        NOT NULL DEFAULT 'MANUAL'
        CHECK (source IN ('INBOUND_MESSAGE', 'NEW_FOLLOWER', 'MENTION', 'IMPORT', 'MANUAL')),
    follows_account      boolean     NOT NULL DEFAULT false,
    tags                 text[]      NOT NULL DEFAULT '{}',
    attributes           jsonb       NOT NULL DEFAULT '{}',
    time_zone            text        NOT NULL DEFAULT '',
    language             text        NOT NULL DEFAULT '',
    first_interaction_at timestamptz,
    last_interaction_at  timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    version              bigint      NOT NULL DEFAULT 1,
    UNIQUE (merchant_id, account_id, x_user_id)
);
CREATE INDEX contacts_merchant_created ON contacts (merchant_id, created_at DESC, id DESC);
-- GIN indexes cannot lead with a uuid column without btree_gin, which the embedded
-- server lacks; the planner combines them with the merchant_id btree (BitmapAnd).
CREATE INDEX contacts_merchant_tags ON contacts USING gin (tags);
CREATE INDEX contacts_merchant_attributes ON contacts USING gin (attributes jsonb_path_ops);
CREATE INDEX contacts_merchant_last_interaction
    ON contacts (merchant_id, last_interaction_at DESC NULLS LAST);

-- Interactions feed engagement figures and segment facts.
CREATE TABLE contact_interactions (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id  uuid        NOT NULL,
    contact_id   uuid        NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    kind         text        NOT NULL
        CHECK (kind IN ('MESSAGE_IN', 'MESSAGE_OUT', 'FOLLOW', 'UNFOLLOW', 'MENTION')),
    occurred_at  timestamptz NOT NULL,
    ref          text        NOT NULL DEFAULT ''
);
CREATE INDEX contact_interactions_contact
    ON contact_interactions (merchant_id, contact_id, occurred_at);

-- GDPR erasure audit: who erased which X user and when. No personal content.
CREATE TABLE erasure_audit (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id   uuid        NOT NULL,
    account_id    uuid,
    x_user_id     text        NOT NULL,
    erased_by     text        NOT NULL,
    erased_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX erasure_audit_merchant ON erasure_audit (merchant_id, erased_at);

-- ---------------------------------------------------------------- conversations
CREATE TABLE conversations (
    id                    uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    merchant_id           uuid        NOT NULL,
    account_id            uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    contact_id            uuid        NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    x_conversation_id     text        NOT NULL DEFAULT '',
    status                text        NOT NULL DEFAULT 'OPEN'
        CHECK (status IN ('OPEN', 'PENDING', 'SNOOZED', 'CLOSED')),
    assignee_user_id      text        NOT NULL DEFAULT '',
    snooze_until          timestamptz,
    close_reason          text        NOT NULL DEFAULT '',
    last_message_preview  text        NOT NULL DEFAULT '',
    last_message_at       timestamptz,
    unread_count          integer     NOT NULL DEFAULT 0,
    message_count         integer     NOT NULL DEFAULT 0,
    closed_at             timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    version               bigint      NOT NULL DEFAULT 1
);
-- At most one conversation that is not CLOSED per contact and account.
CREATE UNIQUE INDEX conversations_one_live
    ON conversations (merchant_id, account_id, contact_id) WHERE status <> 'CLOSED';
CREATE INDEX conversations_merchant_activity
    ON conversations (merchant_id, updated_at DESC, id DESC);
CREATE INDEX conversations_merchant_contact ON conversations (merchant_id, contact_id);
CREATE INDEX conversations_snoozed ON conversations (merchant_id, snooze_until)
    WHERE status = 'SNOOZED';

CREATE TABLE messages (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    merchant_id      uuid        NOT NULL,
    conversation_id  uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    direction        text        NOT NULL CHECK (direction IN ('INBOUND', 'OUTBOUND')),
    type             text        NOT NULL DEFAULT 'TEXT'
        CHECK (type IN ('TEXT', 'IMAGE', 'CARD', 'QUICK_REPLY')),
    text             text        NOT NULL DEFAULT '',
    attachments      jsonb       NOT NULL DEFAULT '[]',
    quick_replies    jsonb       NOT NULL DEFAULT '[]',
    is_from_bot      boolean     NOT NULL DEFAULT false,
    sender_user_id   text        NOT NULL DEFAULT '',
    x_event_id       text,
    delivery_state   text        NOT NULL DEFAULT 'PENDING'
        CHECK (delivery_state IN ('PENDING', 'SENT', 'DELIVERED', 'READ', 'FAILED')),
    failure_reason   text        NOT NULL DEFAULT '',
    request_id       text,
    sent_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX messages_x_event ON messages (merchant_id, x_event_id)
    WHERE x_event_id IS NOT NULL;
CREATE INDEX messages_conversation ON messages (merchant_id, conversation_id, created_at, id);

-- ---------------------------------------------------------------- templates
CREATE TABLE templates (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    merchant_id     uuid        NOT NULL,
    name            text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    type            text        NOT NULL CHECK (type IN ('TEXT', 'QUICK_REPLY', 'CARD')),
    content         text        NOT NULL,
    quick_replies   jsonb       NOT NULL DEFAULT '[]',
    card_media_url  text        NOT NULL DEFAULT '',
    card_buttons    jsonb       NOT NULL DEFAULT '[]',
    variables       text[]      NOT NULL DEFAULT '{}',
    tags            text[]      NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         bigint      NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX templates_merchant_name ON templates (merchant_id, lower(name));
CREATE INDEX templates_merchant_created ON templates (merchant_id, created_at DESC, id DESC);

-- ---------------------------------------------------------------- segments
CREATE TABLE segments (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    merchant_id       uuid        NOT NULL,
    account_id        uuid        REFERENCES accounts (id) ON DELETE CASCADE,
    name              text        NOT NULL,
    description       text        NOT NULL DEFAULT '',
    -- The condition tree (AND/OR groups of field/operator/value), validated on save
    -- and compiled to one parameterised query.
    conditions        jsonb       NOT NULL,
    contact_count     bigint      NOT NULL DEFAULT 0,
    count_refreshed_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    version           bigint      NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX segments_merchant_name ON segments (merchant_id, lower(name));
CREATE INDEX segments_merchant_created ON segments (merchant_id, created_at DESC, id DESC);

-- ---------------------------------------------------------------- campaigns
CREATE TABLE campaigns (
    id                   uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    merchant_id          uuid        NOT NULL,
    account_id           uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name                 text        NOT NULL,
    description          text        NOT NULL DEFAULT '',
    type                 text        NOT NULL
        CHECK (type IN ('BULK_DM', 'WELCOME', 'FOLLOW_UP', 'DRIP', 'BROADCAST')),
    status               text        NOT NULL DEFAULT 'DRAFT'
        CHECK (status IN ('DRAFT', 'SCHEDULED', 'RUNNING', 'PAUSED', 'COMPLETED', 'CANCELLED')),
    template_id          uuid        REFERENCES templates (id) ON DELETE SET NULL,
    variables            jsonb       NOT NULL DEFAULT '{}',
    start_at             timestamptz,
    end_at               timestamptz,
    time_zone            text        NOT NULL DEFAULT 'UTC',
    send_window          jsonb,                   -- WeeklySchedule, null = any time
    respect_contact_time_zone boolean NOT NULL DEFAULT false,
    steps                jsonb       NOT NULL DEFAULT '[]',  -- follow_up / drip steps
    stop_on_reply        boolean     NOT NULL DEFAULT true,
    attribution_window   interval    NOT NULL DEFAULT interval '72 hours',
    exclusion            jsonb       NOT NULL DEFAULT '{}',
    -- Counters kept by the dispatcher and webhook ingestion so metrics never count rows.
    recipients_total     bigint      NOT NULL DEFAULT 0,
    sent_count           bigint      NOT NULL DEFAULT 0,
    delivered_count      bigint      NOT NULL DEFAULT 0,
    read_count           bigint      NOT NULL DEFAULT 0,
    clicked_count        bigint      NOT NULL DEFAULT 0,
    replied_count        bigint      NOT NULL DEFAULT 0,
    failed_count         bigint      NOT NULL DEFAULT 0,
    skipped_count        bigint      NOT NULL DEFAULT 0,
    started_at           timestamptz,
    completed_at         timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    version              bigint      NOT NULL DEFAULT 1
);
CREATE INDEX campaigns_merchant_created ON campaigns (merchant_id, created_at DESC, id DESC);
CREATE INDEX campaigns_merchant_template ON campaigns (merchant_id, template_id);
CREATE INDEX campaigns_live ON campaigns (merchant_id, status)
    WHERE status IN ('SCHEDULED', 'RUNNING', 'PAUSED');

CREATE TABLE campaign_segments (
    merchant_id   uuid    NOT NULL,
    campaign_id   uuid    NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    segment_id    uuid    NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    excluded      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (merchant_id, campaign_id, segment_id)
);
CREATE INDEX campaign_segments_segment ON campaign_segments (merchant_id, segment_id);

-- The send ledger: one row per (campaign, contact, step), the single source of truth
-- for what was sent. Exactly-once delivery hangs on its state machine.
CREATE TABLE campaign_recipients (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id   uuid        NOT NULL,
    campaign_id   uuid        NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    contact_id    uuid        NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    step          integer     NOT NULL DEFAULT 0,
    state         text        NOT NULL DEFAULT 'QUEUED'
        CHECK (state IN ('QUEUED', 'SENDING', 'SENT', 'DELIVERED', 'READ', 'REPLIED',
                         'FAILED', 'SKIPPED')),
    reason        text        NOT NULL DEFAULT '',
    x_event_id    text,
    due_at        timestamptz NOT NULL DEFAULT now(),
    attempts      integer     NOT NULL DEFAULT 0,
    sending_at    timestamptz,
    sent_at       timestamptz,
    delivered_at  timestamptz,
    read_at       timestamptz,
    replied_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign_id, contact_id, step)
);
CREATE INDEX campaign_recipients_due ON campaign_recipients (merchant_id, campaign_id, due_at)
    WHERE state IN ('QUEUED', 'SENDING');
CREATE INDEX campaign_recipients_contact ON campaign_recipients (merchant_id, contact_id);
CREATE INDEX campaign_recipients_x_event ON campaign_recipients (merchant_id, x_event_id)
    WHERE x_event_id IS NOT NULL;

-- ---------------------------------------------------------------- automation
CREATE TABLE flows (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    merchant_id   uuid        NOT NULL,
    account_id    uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name          text        NOT NULL,
    description   text        NOT NULL DEFAULT '',
    status        text        NOT NULL DEFAULT 'DRAFT'
        CHECK (status IN ('DRAFT', 'ACTIVE', 'INACTIVE')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    version       bigint      NOT NULL DEFAULT 1
);
CREATE INDEX flows_merchant_created ON flows (merchant_id, created_at DESC, id DESC);

CREATE TABLE flow_triggers (
    merchant_id   uuid   NOT NULL,
    flow_id       uuid   PRIMARY KEY REFERENCES flows (id) ON DELETE CASCADE,
    type          text   NOT NULL,
    config        jsonb  NOT NULL DEFAULT '{}'
);
CREATE INDEX flow_triggers_type ON flow_triggers (merchant_id, type);

CREATE TABLE flow_nodes (
    merchant_id   uuid   NOT NULL,
    flow_id       uuid   NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    node_id       text   NOT NULL,
    type          text   NOT NULL,
    config        jsonb  NOT NULL DEFAULT '{}',
    position      integer NOT NULL DEFAULT 0,
    PRIMARY KEY (flow_id, node_id)
);
CREATE INDEX flow_nodes_merchant ON flow_nodes (merchant_id, flow_id);

CREATE TABLE flow_connections (
    merchant_id   uuid   NOT NULL,
    flow_id       uuid   NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    from_node_id  text   NOT NULL,
    to_node_id    text   NOT NULL,
    branch        text   NOT NULL DEFAULT 'default',
    PRIMARY KEY (flow_id, from_node_id, branch, to_node_id)
);
CREATE INDEX flow_connections_merchant ON flow_connections (merchant_id, flow_id);

CREATE TABLE flow_executions (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    merchant_id      uuid        NOT NULL,
    flow_id          uuid        NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    contact_id       uuid        NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    status           text        NOT NULL DEFAULT 'RUNNING'
        CHECK (status IN ('RUNNING', 'WAITING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    current_node_id  text        NOT NULL DEFAULT '',
    wake_at          timestamptz,
    error            text        NOT NULL DEFAULT '',
    started_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX flow_executions_flow ON flow_executions (merchant_id, flow_id, started_at DESC);
CREATE INDEX flow_executions_wake ON flow_executions (wake_at) WHERE status = 'WAITING';

CREATE TABLE flow_execution_steps (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id    uuid        NOT NULL,
    execution_id   uuid        NOT NULL REFERENCES flow_executions (id) ON DELETE CASCADE,
    node_id        text        NOT NULL,
    status         text        NOT NULL,
    output         jsonb       NOT NULL DEFAULT '{}',
    error          text        NOT NULL DEFAULT '',
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);
CREATE INDEX flow_execution_steps_execution
    ON flow_execution_steps (merchant_id, execution_id, id);

-- ---------------------------------------------------------------- AI
CREATE TABLE ai_settings (
    merchant_id          uuid        PRIMARY KEY,
    enabled              boolean     NOT NULL DEFAULT false,
    model                text        NOT NULL DEFAULT 'gpt-4o-mini',
    temperature          real        NOT NULL DEFAULT 0.3,
    max_tokens           integer     NOT NULL DEFAULT 512,
    escalation_threshold real        NOT NULL DEFAULT 0.6,
    system_prompt        text        NOT NULL DEFAULT '',
    respect_business_hours boolean   NOT NULL DEFAULT true,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    version              bigint      NOT NULL DEFAULT 1
);

CREATE TABLE ai_sessions (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    merchant_id      uuid        NOT NULL,
    conversation_id  uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    intents          jsonb       NOT NULL DEFAULT '[]',
    slots            jsonb       NOT NULL DEFAULT '{}',
    summary          text        NOT NULL DEFAULT '',
    escalated        boolean     NOT NULL DEFAULT false,
    escalation_reason text       NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, conversation_id)
);

-- ---------------------------------------------------------------- webhooks and events
-- Raw X webhook payloads, committed before the sidecar answers 200, so nothing X
-- delivered is lost; processing is retried from here.
CREATE TABLE webhook_inbox (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_key      text        NOT NULL UNIQUE,   -- X event id (dedupe across redelivery)
    for_user_id    text        NOT NULL,
    event_type     text        NOT NULL,
    payload        jsonb       NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now(),
    processed_at   timestamptz,
    attempts       integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error     text        NOT NULL DEFAULT ''
);
CREATE INDEX webhook_inbox_pending ON webhook_inbox (next_attempt_at)
    WHERE processed_at IS NULL;

-- The outbox of domain events, written in the same transaction as the change they
-- describe; live streams, automation, AI and analytics consume it.
CREATE TABLE domain_events (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id   uuid        NOT NULL,
    type          text        NOT NULL,
    aggregate_id  uuid,
    payload       jsonb       NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX domain_events_merchant ON domain_events (merchant_id, id);
