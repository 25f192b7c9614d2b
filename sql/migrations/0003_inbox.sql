-- Inbox ingestion: what the webhook sidecar needs beyond 0001's tables.

-- ---------------------------------------------------------------- webhook_inbox
-- How a finished row ended: PROCESSED (applied), IGNORED (nothing to do: unknown or
-- disconnected account, the account's own follows/tweets), DUPLICATE (the change was
-- already recorded, e.g. a message with the same X event id), DEAD (gave up after
-- the maximum number of attempts; last_error says why). Empty while pending.
ALTER TABLE webhook_inbox
    ADD COLUMN outcome text NOT NULL DEFAULT ''
        CHECK (outcome IN ('', 'PROCESSED', 'IGNORED', 'DUPLICATE', 'DEAD'));

-- Columns shared with 0004 (Contacts and Conversations services) are added with
-- IF NOT EXISTS and the same definitions there, so the two agree in either order.

-- ---------------------------------------------------------------- contacts
-- Follow state: follows_account (0001) is the current state; follow_time is when the
-- contact last started following, unfollowed_at when they last stopped. Ingestion
-- applies a follow/unfollow only if it is not older than both, so an out-of-order
-- redelivery never overrides a newer change.
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS follow_time timestamptz;
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS unfollowed_at timestamptz;

-- ---------------------------------------------------------------- messages
-- origin: who wrote it (MessageOrigin): CONTACT (inbound), AGENT, AI, CAMPAIGN,
-- AUTOMATION, or EXTERNAL (the account itself from another X client, seen only as
-- a webhook echo). quick_reply_metadata: on an inbound answer to a quick-reply
-- prompt, the metadata of the option tapped (X's quick_reply_response.metadata).
ALTER TABLE messages ADD COLUMN IF NOT EXISTS origin text NOT NULL DEFAULT 'CONTACT';
ALTER TABLE messages ADD CONSTRAINT messages_origin_check
    CHECK (origin IN ('CONTACT', 'AGENT', 'AI', 'CAMPAIGN', 'AUTOMATION', 'EXTERNAL'));
ALTER TABLE messages ADD COLUMN IF NOT EXISTS quick_reply_metadata text NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN IF NOT EXISTS delivered_at timestamptz;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS read_at timestamptz;

-- Read receipts mark a contact's outbound messages read up to an X event id; this
-- keeps that update to the still-unread outbound messages of one conversation.
CREATE INDEX messages_outbound_unread ON messages (merchant_id, conversation_id)
    WHERE direction = 'OUTBOUND' AND delivery_state IN ('SENT', 'DELIVERED');

-- ---------------------------------------------------------------- conversations
-- When the contact last wrote (inbound messages only).
ALTER TABLE conversations ADD COLUMN IF NOT EXISTS last_inbound_at timestamptz;

-- Reopen-or-new on an inbound message looks up the contact's latest closed
-- conversation.
CREATE INDEX conversations_contact_closed
    ON conversations (merchant_id, account_id, contact_id, closed_at DESC)
    WHERE status = 'CLOSED';
