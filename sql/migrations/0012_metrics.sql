-- Operator metrics count the webhook inbox's dead rows on every scrape
-- (sql/queries/metrics.sql, queue_depths); without this index that is a scan of the
-- whole inbox.
CREATE INDEX webhook_inbox_dead ON webhook_inbox (id) WHERE outcome = 'DEAD';
