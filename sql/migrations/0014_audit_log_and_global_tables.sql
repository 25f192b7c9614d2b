-- (Brief number 0017; 0013 on this branch because the loader refuses gaps: renumber at merge.)
-- Issue 14 §3. Which tables are global (not tenant-owned), said in the schema so a
-- distributed deployment (Citus, by merchant_id) knows them; and the audit log of
-- destructive RPCs.

COMMENT ON TABLE event_consumer_cursors IS
  'Global (no merchant_id): one durable cursor per background consumer of domain_events '
  '(e.g. ''campaigns''); each consumer reads the outbox across every merchant in id order, '
  'so the cursor belongs to the consumer, not to a tenant. On Citus: a reference table '
  '(or local to the coordinator), never distributed.';

COMMENT ON TABLE webhook_inbox IS
  'Global (no merchant_id): raw X webhook deliveries, committed before the sidecar answers '
  'X, keyed by X''s for_user_id. The merchant is not known when a row is stored: it is '
  'routed to a merchant (through the connected account of for_user_id) only after it is '
  'stored, when it is processed. On Citus: a local (coordinator) table; processing writes '
  'the tenant rows, which are distributed.';

-- One row per successful destructive RPC (Delete*, DisconnectAccount, CancelCampaign,
-- CancelScheduledPost, the GDPR erase DeleteContact), written in the same transaction
-- as the change: who (the token's user id), which request (x-request-id or the
-- generated one), what (the full method name) and which resource id. No request
-- body, no personal content.
CREATE TABLE audit_log (
    merchant_id  uuid        NOT NULL,
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    user_id      text        NOT NULL,
    request_id   text        NOT NULL,
    method       text        NOT NULL,
    resource_id  text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, id)
);
CREATE INDEX audit_log_by_time ON audit_log (merchant_id, created_at);
COMMENT ON TABLE audit_log IS
  'Tenant-owned: destructive RPCs, one row each, written in the RPC''s own transaction.';
