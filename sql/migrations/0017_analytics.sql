-- Analytics rollups (issue 12), kept by the `analytics-rollups` outbox consumer
-- (worker/rollups.py) and recomputed by `mktx-grpc analytics rebuild`.
--
-- Each rollup row is a function of raw data only (contacts, contact_interactions,
-- conversations, messages, and the conversation status history in domain_events),
-- recomputed whole for every contact or conversation an event names. Applying an
-- event twice, late or out of order therefore never double counts, and incremental
-- rollups equal rebuilt ones. Reports aggregate these rows at query time, in the
-- merchant's time zone (merchant_settings.time_zone, 0009; default UTC), so a
-- time-zone change needs no rebuild. Instants are stored in UTC; activity buckets
-- are 15 minutes wide because every time zone's offset is a multiple of 15 minutes,
-- so local days cut exactly on bucket boundaries in every zone, across DST.

-- One row per conversation *episode*: the conversation from its opening to its
-- first close, then from each reopening (CLOSED -> OPEN) to the next close.
CREATE TABLE analytics_conversation_episodes (
    merchant_id            uuid        NOT NULL,
    conversation_id        uuid        NOT NULL,
    episode                integer     NOT NULL,
    account_id             uuid        NOT NULL,
    contact_id             uuid        NOT NULL,
    -- The conversation's status for its latest episode; CLOSED for earlier ones.
    status                 text        NOT NULL,
    -- Who the episode was assigned to when it ended (or now, while it is live).
    assignee_user_id       text        NOT NULL DEFAULT '',
    opened_at              timestamptz NOT NULL,
    first_inbound_at       timestamptz,
    first_bot_reply_at     timestamptz,
    handoff_at             timestamptz,
    first_human_reply_at   timestamptz,
    resolved_at            timestamptz,
    first_response_s       double precision,
    first_response_bh_s    double precision,
    bot_response_s         double precision,
    bot_handled_s          double precision,
    resolution_s           double precision,
    resolution_bh_s        double precision,
    bot_replied            boolean     NOT NULL DEFAULT false,
    human_replied          boolean     NOT NULL DEFAULT false,
    escalated              boolean     NOT NULL DEFAULT false,
    bot_only               boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (merchant_id, conversation_id, episode)
);
CREATE INDEX analytics_episodes_opened ON analytics_conversation_episodes (merchant_id, opened_at);
CREATE INDEX analytics_episodes_resolved ON analytics_conversation_episodes (merchant_id, resolved_at)
    WHERE resolved_at IS NOT NULL;
CREATE INDEX analytics_episodes_responded
    ON analytics_conversation_episodes (merchant_id, first_human_reply_at)
    WHERE first_human_reply_at IS NOT NULL;
CREATE INDEX analytics_episodes_contact ON analytics_conversation_episodes (merchant_id, contact_id);

-- One row per contact (erased contacts have none).
CREATE TABLE analytics_contacts (
    merchant_id   uuid        NOT NULL,
    contact_id    uuid        NOT NULL,
    account_id    uuid        NOT NULL,
    source        text        NOT NULL,
    created_at    timestamptz NOT NULL,
    opted_out_at  timestamptz,
    tags          text[]      NOT NULL DEFAULT '{}',
    PRIMARY KEY (merchant_id, contact_id)
);
CREATE INDEX analytics_contacts_created ON analytics_contacts (merchant_id, created_at);
CREATE INDEX analytics_contacts_opted_out ON analytics_contacts (merchant_id, opted_out_at)
    WHERE opted_out_at IS NOT NULL;

-- The 15-minute UTC buckets in which a contact interacted (wrote, followed,
-- mentioned the account): "active contacts" is a distinct count over these.
CREATE TABLE analytics_contact_activity (
    merchant_id  uuid        NOT NULL,
    bucket       timestamptz NOT NULL,
    contact_id   uuid        NOT NULL,
    account_id   uuid        NOT NULL,
    PRIMARY KEY (merchant_id, bucket, contact_id)
);
CREATE INDEX analytics_contact_activity_contact ON analytics_contact_activity (merchant_id, contact_id);

-- The conversation status history (opened, closed, reopened, assigned, escalated)
-- lives only in the outbox; recomputing one conversation reads its events.
CREATE INDEX domain_events_aggregate ON domain_events (merchant_id, aggregate_id, id);
