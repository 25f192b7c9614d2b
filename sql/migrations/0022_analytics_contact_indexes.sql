-- Analytics (issue 12): GetContactAnalytics' counts read only their index. The
-- contacts' creation index carries the account (for the account filter) and the
-- source (new contacts by source, one bucket at a time); the opt-out index carries
-- the account.
DROP INDEX analytics_contacts_created;
CREATE INDEX analytics_contacts_created ON analytics_contacts (merchant_id, created_at)
    INCLUDE (account_id, source);

DROP INDEX analytics_contacts_opted_out;
CREATE INDEX analytics_contacts_opted_out ON analytics_contacts (merchant_id, opted_out_at)
    INCLUDE (account_id)
    WHERE opted_out_at IS NOT NULL;
