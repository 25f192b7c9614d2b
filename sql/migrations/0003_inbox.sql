-- Inbox ingestion: what the webhook sidecar needs beyond 0001's tables.

-- ---------------------------------------------------------------- webhook_inbox
-- How a finished row ended: PROCESSED (applied), IGNORED (nothing to do: unknown or
-- disconnected account, the account's own follows/tweets), DUPLICATE (the change was
-- already recorded, e.g. a message with the same X event id), DEAD (gave up after
-- the maximum number of attempts; last_error says why). Empty while pending.
ALTER TABLE webhook_inbox
    ADD COLUMN outcome text NOT NULL DEFAULT ''
        CHECK (outcome IN ('', 'PROCESSED', 'IGNORED', 'DUPLICATE', 'DEAD'));

-- ---------------------------------------------------------------- contacts
-- Follow state: follows_account (0001) is the current state; these say when it last
-- changed either way, so an out-of-order follow/unfollow delivery never overrides
-- a newer one.
ALTER TABLE contacts
    ADD COLUMN followed_at   timestamptz,
    ADD COLUMN unfollowed_at timestamptz;

-- ---------------------------------------------------------------- messages
-- origin: APP (sent through mktx), EXTERNAL (sent by the account from another X
-- client and seen only as a webhook echo), CONTACT (inbound).
-- metadata: inbound extras such as X's quick_reply_response and source_app_id.
ALTER TABLE messages
    ADD COLUMN origin       text        NOT NULL DEFAULT 'APP'
        CHECK (origin IN ('APP', 'EXTERNAL', 'CONTACT')),
    ADD COLUMN metadata     jsonb       NOT NULL DEFAULT '{}',
    ADD COLUMN delivered_at timestamptz,
    ADD COLUMN read_at      timestamptz;

-- Read receipts mark a contact's outbound messages read up to an X event id; this
-- keeps that update to the still-unread outbound messages of one conversation.
CREATE INDEX messages_outbound_unread ON messages (merchant_id, conversation_id)
    WHERE direction = 'OUTBOUND' AND delivery_state IN ('SENT', 'DELIVERED');

-- ---------------------------------------------------------------- conversations
-- Reopen-or-new on an inbound message looks up the contact's latest closed
-- conversation.
CREATE INDEX conversations_contact_closed
    ON conversations (merchant_id, account_id, contact_id, closed_at DESC)
    WHERE status = 'CLOSED';
