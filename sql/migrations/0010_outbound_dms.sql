-- The one-off DM ledger (store/outbound.py, worker/outbound.py): every DM a background
-- sender sends on behalf of an account that is not a campaign's (a flow's
-- send_message step, the AI assistant's reply, an away or hand-off message), and the
-- agent sends whose outcome X left unknown. One row per message to send:
-- QUEUED -> SENDING (armed, with a lease, before X is called) -> SENT / FAILED /
-- SKIPPED. An armed row whose lease ran out is resolved at X (a DM lookup) before
-- anything is sent again.
CREATE TABLE outbound_dms (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    merchant_id     uuid        NOT NULL,
    account_id      uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- GDPR erase deletes the contact, and its rows with it.
    contact_id      uuid        NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    -- Who wants it sent ("flow", "ai", ...) and the caller's idempotency key.
    source          text        NOT NULL,
    source_ref      text        NOT NULL,
    -- What the stored message says about itself (messages.origin / is_from_bot /
    -- flow_id), and the conversation asked for (NULL: the contact's live one).
    origin          text        NOT NULL
        CHECK (origin IN ('AGENT', 'AI', 'AUTOMATION', 'CAMPAIGN')),
    is_from_bot     boolean     NOT NULL DEFAULT false,
    flow_id         uuid,
    conversation_id uuid,
    text            text        NOT NULL DEFAULT '',
    media_url       text,
    quick_replies   jsonb       NOT NULL DEFAULT '[]',
    bypass_opt_out  boolean     NOT NULL DEFAULT false,
    -- False for an agent send adopted for resolution only: when X does not have it,
    -- it is FAILED ("not sent"), never sent by the ledger.
    resend          boolean     NOT NULL DEFAULT true,
    state           text        NOT NULL DEFAULT 'QUEUED'
        CHECK (state IN ('QUEUED', 'SENDING', 'SENT', 'FAILED', 'SKIPPED')),
    -- Why a row waits, is being resolved, failed or was skipped (readable).
    reason          text        NOT NULL DEFAULT '',
    -- 'account': the row waits for its account to be ACTIVE again and is claimable
    -- as soon as it is, whatever ready_at says.
    waiting_for     text        NOT NULL DEFAULT '' CHECK (waiting_for IN ('', 'account')),
    -- The earliest send time the caller asked for; ready_at moves with waits.
    not_before      timestamptz NOT NULL DEFAULT now(),
    ready_at        timestamptz NOT NULL DEFAULT now(),
    attempts        integer     NOT NULL DEFAULT 0,
    sending_at      timestamptz,
    lease_until     timestamptz,
    x_event_id      text,
    -- The stored message (SENT; or the agent's PENDING message being resolved).
    message_id      uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    settled_at      timestamptz,
    UNIQUE (merchant_id, source, source_ref)
);

-- The sender claims due rows of every merchant, so these cannot lead with
-- merchant_id (like campaigns_dispatch).
CREATE INDEX outbound_dms_ready ON outbound_dms (ready_at, id) WHERE state = 'QUEUED';
CREATE INDEX outbound_dms_account_wait ON outbound_dms (account_id)
    WHERE state = 'QUEUED' AND waiting_for = 'account';
CREATE INDEX outbound_dms_lease ON outbound_dms (lease_until) WHERE state = 'SENDING';
-- A contact's DMs go out one at a time, in order: the claim looks for earlier ones.
CREATE INDEX outbound_dms_recipient ON outbound_dms (merchant_id, account_id, contact_id, id)
    WHERE state IN ('QUEUED', 'SENDING');
CREATE INDEX outbound_dms_contact ON outbound_dms (merchant_id, contact_id);
