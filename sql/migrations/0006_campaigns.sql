-- Campaigns: what the campaign engine needs beyond 0001's tables.
--
-- The ledger (campaign_recipients) keeps `due_at` as the planned send time and gains
-- `ready_at`, the time a dispatcher may claim the row (moved by the send window, the
-- DM budget and retries), and `lease_until` for rows being sent: a SENDING row whose
-- lease ran out (its dispatcher crashed) is resolved against X before any resend.

-- ---------------------------------------------------------------- campaigns
ALTER TABLE campaigns
    -- Why a RUNNING campaign is not sending now, or why it ended.
    ADD COLUMN status_reason      text        NOT NULL DEFAULT '',
    -- A RUNNING campaign waiting for its send window, DM budget or hourly cap is not
    -- looked at by dispatchers before this time.
    ADD COLUMN wait_until         timestamptz,
    ADD COLUMN max_sends_per_hour integer     NOT NULL DEFAULT 0,
    ADD COLUMN enrol_delay        interval    NOT NULL DEFAULT interval '0';

-- Dispatchers and the scheduler look at live campaigns of every merchant, so this
-- index cannot lead with merchant_id (like accounts_token_expiry).
CREATE INDEX campaigns_dispatch ON campaigns (status, wait_until)
    WHERE status IN ('SCHEDULED', 'RUNNING', 'PAUSED');

-- ---------------------------------------------------------------- ledger
ALTER TABLE campaign_recipients
    -- The text rendered when the row was claimed: what was (or is being) sent, and
    -- what crash recovery looks for at X.
    ADD COLUMN text        text        NOT NULL DEFAULT '',
    ADD COLUMN message_id  uuid,
    ADD COLUMN ready_at    timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN settled_at  timestamptz;

-- Claims: a campaign's claimable rows in ready order.
CREATE INDEX campaign_recipients_ready
    ON campaign_recipients (merchant_id, campaign_id, ready_at) WHERE state = 'QUEUED';
-- Crash recovery: SENDING rows whose lease ran out, across merchants (like
-- campaigns_dispatch, this one cannot lead with merchant_id).
CREATE INDEX campaign_recipients_lease
    ON campaign_recipients (lease_until) WHERE state = 'SENDING';
-- Delivery and read events name the inbox message.
CREATE INDEX campaign_recipients_message
    ON campaign_recipients (merchant_id, message_id) WHERE message_id IS NOT NULL;
-- ListCampaignRecipients: send order (due time, then contact, then step).
CREATE INDEX campaign_recipients_order
    ON campaign_recipients (merchant_id, campaign_id, due_at, contact_id, step);

-- ---------------------------------------------------------------- metrics
-- Events per campaign and hour, kept with the counters, so a timeline never scans
-- the ledger.
CREATE TABLE campaign_metrics_hourly (
    merchant_id  uuid        NOT NULL,
    campaign_id  uuid        NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    hour         timestamptz NOT NULL,
    sent         bigint      NOT NULL DEFAULT 0,
    delivered    bigint      NOT NULL DEFAULT 0,
    read         bigint      NOT NULL DEFAULT 0,
    clicked      bigint      NOT NULL DEFAULT 0,
    replied      bigint      NOT NULL DEFAULT 0,
    failed       bigint      NOT NULL DEFAULT 0,
    skipped      bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (merchant_id, campaign_id, hour)
);

-- ---------------------------------------------------------------- event consumers
-- Durable cursors of the background consumers of domain_events (one row per
-- consumer, e.g. 'campaigns'). Consumers read across merchants, so this table is not
-- tenant-owned.
CREATE TABLE event_consumer_cursors (
    consumer      text        PRIMARY KEY,
    last_event_id bigint      NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The writing transaction of each event (also added by 0004); consumers stop before
-- an event whose transaction may still be followed by a lower id's commit.
ALTER TABLE domain_events ADD COLUMN IF NOT EXISTS tx xid8 NOT NULL DEFAULT pg_current_xact_id();
