-- Contacts and conversations services (search indexes, live event stream support).
--
-- Columns shared with inbox ingestion (0003) are added with IF NOT EXISTS and the
-- same definitions there, so the two agree in either order.

-- ---------------------------------------------------------------- contacts
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS follow_time timestamptz;
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS opted_out boolean NOT NULL DEFAULT false;
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS opted_out_at timestamptz;

-- ListContacts order: latest interaction first, contacts without interactions last.
CREATE INDEX IF NOT EXISTS contacts_merchant_activity_order
    ON contacts (merchant_id, (coalesce(last_interaction_at, '-infinity'::timestamptz)) DESC,
                 id DESC);
-- ExportContacts walks by id.
CREATE INDEX IF NOT EXISTS contacts_merchant_id ON contacts (merchant_id, id);

-- Substring search on username and display name. pg_trgm makes ILIKE '%term%' an
-- index scan; the embedded server ships without it, so the extension and its
-- indexes are created only where available, and the query (plain ILIKE) works either
-- way.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        CREATE INDEX IF NOT EXISTS contacts_username_trgm
            ON contacts USING gin (username gin_trgm_ops);
        CREATE INDEX IF NOT EXISTS contacts_display_name_trgm
            ON contacts USING gin (display_name gin_trgm_ops);
    END IF;
END
$$;

-- ---------------------------------------------------------------- conversations
ALTER TABLE conversations ADD COLUMN IF NOT EXISTS escalated boolean NOT NULL DEFAULT false;
ALTER TABLE conversations ADD COLUMN IF NOT EXISTS escalation_reason text NOT NULL DEFAULT '';
ALTER TABLE conversations ADD COLUMN IF NOT EXISTS last_inbound_at timestamptz;

-- ListConversations order: newest activity first (conversations without messages by
-- their creation time).
CREATE INDEX IF NOT EXISTS conversations_merchant_last_activity
    ON conversations (merchant_id, (coalesce(last_message_at, created_at)) DESC, id DESC);
CREATE INDEX IF NOT EXISTS conversations_snooze_due ON conversations (snooze_until)
    WHERE status = 'SNOOZED';

-- ---------------------------------------------------------------- messages
-- origin is one of MessageOrigin's names (0003 adds it with its CHECK constraint).
ALTER TABLE messages ADD COLUMN IF NOT EXISTS origin text NOT NULL DEFAULT 'CONTACT';
ALTER TABLE messages ADD COLUMN IF NOT EXISTS quick_reply_metadata text NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN IF NOT EXISTS delivered_at timestamptz;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS read_at timestamptz;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS card_buttons jsonb NOT NULL DEFAULT '[]';
ALTER TABLE messages ADD COLUMN IF NOT EXISTS campaign_id uuid;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS flow_id uuid;
-- SendMessage idempotency: a retried request_id finds the messages of the first call.
CREATE INDEX IF NOT EXISTS messages_request ON messages (merchant_id, request_id)
    WHERE request_id IS NOT NULL;

-- ---------------------------------------------------------------- domain events
-- The writing transaction's id lets WatchConversations deliver only events below the
-- oldest running transaction: ids are allocated at INSERT but become visible at
-- COMMIT, so without this horizon a stream could pass id 11 while id 10 is still
-- uncommitted, and a client resuming after 11 would miss 10 forever.
ALTER TABLE domain_events ADD COLUMN IF NOT EXISTS tx xid8 NOT NULL DEFAULT pg_current_xact_id();

-- ---------------------------------------------------------------- contact imports
-- Finished ImportContacts streams with a request_id, so a retry returns the summary.
CREATE TABLE IF NOT EXISTS contact_imports (
    merchant_id  uuid        NOT NULL,
    request_id   text        NOT NULL,
    account_id   uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    summary      jsonb       NOT NULL,
    finished_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, request_id)
);
