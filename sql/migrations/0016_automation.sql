-- Automation flows (issue 9): versioned definitions, executions with their timers,
-- and a step log that feeds the per-node funnel.
--
-- The draft definition lives on the flow as one JSON document (trigger, nodes,
-- connections: the API's shape one-to-one); ActivateFlow copies it into an
-- immutable flow_versions row. flow_triggers / flow_nodes / flow_connections of
-- 0001 are not used (a graph is read and written whole, and versions need copies).

ALTER TABLE flows ADD COLUMN definition jsonb NOT NULL DEFAULT '{}';
ALTER TABLE flows ADD COLUMN trigger_type text NOT NULL DEFAULT 'UNSPECIFIED';
ALTER TABLE flows ADD COLUMN published_version integer NOT NULL DEFAULT 0;
ALTER TABLE flows ADD COLUMN activated_at timestamptz;
CREATE UNIQUE INDEX flows_merchant_name ON flows (merchant_id, name);
-- The trigger consumer's lookup: the ACTIVE flows of one account.
CREATE INDEX flows_active ON flows (merchant_id, account_id) WHERE status = 'ACTIVE';

CREATE TABLE flow_versions (
    merchant_id   uuid        NOT NULL,
    flow_id       uuid        NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
    version       integer     NOT NULL,
    definition    jsonb       NOT NULL,
    trigger_type  text        NOT NULL,
    published_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (flow_id, version)
);
CREATE INDEX flow_versions_merchant ON flow_versions (merchant_id, flow_id);

-- An execution is its own timer: due_at is when a worker must next look at it
-- (now for a RUNNING one, the wake time for a WAITING one, NULL when finished).
-- Workers claim due rows with FOR UPDATE SKIP LOCKED and run their steps in the
-- claiming transaction (see worker/automation.py).
ALTER TABLE flow_executions ADD COLUMN account_id uuid;
ALTER TABLE flow_executions ADD COLUMN flow_version integer NOT NULL DEFAULT 0;
ALTER TABLE flow_executions ADD COLUMN trigger_key text NOT NULL DEFAULT '';
ALTER TABLE flow_executions ADD COLUMN trigger_event jsonb NOT NULL DEFAULT '{}';
ALTER TABLE flow_executions ADD COLUMN conversation_id uuid;
ALTER TABLE flow_executions ADD COLUMN due_at timestamptz;
-- '' | 'WAIT' | 'REPLY': what a WAITING execution waits for.
ALTER TABLE flow_executions ADD COLUMN waiting_for text NOT NULL DEFAULT '';
-- Set when a reply resolves a wait_for_reply: the branch it continues on.
ALTER TABLE flow_executions ADD COLUMN resume_branch text NOT NULL DEFAULT '';
-- Facts later steps read: {"last_reply": "..."}.
ALTER TABLE flow_executions ADD COLUMN context jsonb NOT NULL DEFAULT '{}';
ALTER TABLE flow_executions ADD COLUMN step_count integer NOT NULL DEFAULT 0;
-- One execution per (flow, contact, trigger event): a replayed event starts nothing.
CREATE UNIQUE INDEX flow_executions_trigger
    ON flow_executions (flow_id, contact_id, trigger_key);
-- A contact is never in two live executions of one flow.
CREATE UNIQUE INDEX flow_executions_live
    ON flow_executions (flow_id, contact_id) WHERE status IN ('RUNNING', 'WAITING');
-- The timer claim (cross-merchant by design: workers serve every merchant).
CREATE INDEX flow_executions_due ON flow_executions (due_at) WHERE due_at IS NOT NULL;
-- A contact's pending wait_for_reply, resolved by its next DM.
CREATE INDEX flow_executions_reply
    ON flow_executions (merchant_id, contact_id) WHERE waiting_for = 'REPLY';
CREATE INDEX flow_executions_list
    ON flow_executions (merchant_id, flow_id, started_at DESC, id DESC);
CREATE INDEX flow_executions_contact ON flow_executions (merchant_id, contact_id);

ALTER TABLE flow_execution_steps ADD COLUMN flow_id uuid;
ALTER TABLE flow_execution_steps ADD COLUMN step_no integer NOT NULL DEFAULT 0;
ALTER TABLE flow_execution_steps ADD COLUMN node_type text NOT NULL DEFAULT '';
ALTER TABLE flow_execution_steps ADD COLUMN branch text NOT NULL DEFAULT '';
-- A step is recorded once: a repeated step would be a unique violation.
CREATE UNIQUE INDEX flow_execution_steps_once ON flow_execution_steps (execution_id, step_no);
CREATE INDEX flow_execution_steps_flow ON flow_execution_steps (merchant_id, flow_id, node_id);
