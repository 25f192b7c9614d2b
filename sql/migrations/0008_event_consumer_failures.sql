-- Outbox consumers (worker/consumer.py): events a consumer's handler failed on.
--
-- A failing event holds its consumer (in order) while it is retried with back-off;
-- after the consumer's last attempt it is parked (parked_at set) and the consumer
-- moves on. Parked rows are the dead letters operators look at: which consumer,
-- which event, how often it failed and the last error. Consumers read across
-- merchants, so, like event_consumer_cursors, this table is not tenant-owned;
-- merchant_id is kept so operators can tell whose event it was.
CREATE TABLE event_consumer_failures (
    consumer         text        NOT NULL,
    event_id         bigint      NOT NULL,
    merchant_id      uuid        NOT NULL,
    event_type       text        NOT NULL,
    attempts         integer     NOT NULL,
    reason           text        NOT NULL,
    first_failed_at  timestamptz NOT NULL DEFAULT now(),
    last_failed_at   timestamptz NOT NULL DEFAULT now(),
    -- While retrying: when the next attempt may run. NULL once parked.
    retry_at         timestamptz,
    parked_at        timestamptz,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX event_consumer_failures_parked
    ON event_consumer_failures (consumer, parked_at) WHERE parked_at IS NOT NULL;
