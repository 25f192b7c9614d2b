-- GetOverview's contact counts without counting every contact or every activity
-- bucket of the period (issue 12 §5). analytics_contact_totals: the merchant's
-- contact rows per account, kept by the consumer from the rows it removes and
-- inserts (total in a period = this minus those created at or after its end).
-- analytics_contacts.last_active: the contact's latest activity bucket (0017's
-- analytics_contact_activity), so the contacts active in [start, end) are those
-- whose latest bucket is in it, plus those active again since end that also have a
-- bucket in it (few when the period ends now).
CREATE TABLE analytics_contact_totals (
    merchant_id  uuid   NOT NULL,
    account_id   uuid   NOT NULL,
    contacts     bigint NOT NULL,
    PRIMARY KEY (merchant_id, account_id)
);
INSERT INTO analytics_contact_totals (merchant_id, account_id, contacts)
SELECT merchant_id, account_id, count(*) FROM analytics_contacts GROUP BY 1, 2;

ALTER TABLE analytics_contacts ADD COLUMN last_active timestamptz;
UPDATE analytics_contacts c
   SET last_active = (SELECT max(a.bucket) FROM analytics_contact_activity a
                       WHERE a.merchant_id = c.merchant_id AND a.contact_id = c.contact_id);
CREATE INDEX analytics_contacts_last_active ON analytics_contacts (merchant_id, last_active)
    INCLUDE (account_id) WHERE last_active IS NOT NULL;
