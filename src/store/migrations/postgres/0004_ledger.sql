-- The delegation lifecycle: every state a delegation passes through, the
-- org budget periods its holds and charges go to, the per-org audit log
-- (one entry per delegation, event_id +1 per org), the billing outbox,
-- idempotency keys, and the counters trust and circuit breakers read.
ALTER TABLE delegations ADD COLUMN status text NOT NULL DEFAULT 'blocked'
  CHECK (status IN ('pending_approval', 'dispatched', 'completed', 'failed', 'timed_out',
                    'blocked', 'expired'));
ALTER TABLE delegations ADD COLUMN key_id text NOT NULL DEFAULT '';
ALTER TABLE delegations ADD COLUMN task_type text NOT NULL DEFAULT '';
ALTER TABLE delegations ADD COLUMN task_input text NOT NULL DEFAULT '{}';
ALTER TABLE delegations ADD COLUMN context_scope text NOT NULL DEFAULT '[]';
ALTER TABLE delegations ADD COLUMN policy_result text NOT NULL DEFAULT '{}';
ALTER TABLE delegations ADD COLUMN policy_ref text NOT NULL DEFAULT '';
ALTER TABLE delegations ADD COLUMN timeout_ms bigint NOT NULL DEFAULT 30000;
ALTER TABLE delegations ADD COLUMN callback_url text;
ALTER TABLE delegations ADD COLUMN period text NOT NULL DEFAULT '';
ALTER TABLE delegations ADD COLUMN hold_micros bigint NOT NULL DEFAULT 0 CHECK (hold_micros >= 0);
ALTER TABLE delegations ADD COLUMN budget_limit_micros bigint NOT NULL DEFAULT -1;
ALTER TABLE delegations ADD COLUMN cost_micros bigint NOT NULL DEFAULT 0 CHECK (cost_micros >= 0);
ALTER TABLE delegations ADD COLUMN reported_cost_micros bigint NOT NULL DEFAULT -1;
ALTER TABLE delegations ADD COLUMN overrun bigint NOT NULL DEFAULT 0;
ALTER TABLE delegations ADD COLUMN llm_tokens bigint NOT NULL DEFAULT -1;
ALTER TABLE delegations ADD COLUMN latency_ms bigint NOT NULL DEFAULT -1;
ALTER TABLE delegations ADD COLUMN result text;
ALTER TABLE delegations ADD COLUMN error_code text NOT NULL DEFAULT '';
ALTER TABLE delegations ADD COLUMN error_message text NOT NULL DEFAULT '';
ALTER TABLE delegations ADD COLUMN audit_event bigint NOT NULL DEFAULT 0;
ALTER TABLE delegations ADD COLUMN trust_before double precision;
ALTER TABLE delegations ADD COLUMN trust_after double precision;
ALTER TABLE delegations ADD COLUMN budget_remaining_micros bigint NOT NULL DEFAULT -1;
ALTER TABLE delegations ADD COLUMN dispatched_at bigint NOT NULL DEFAULT 0;
ALTER TABLE delegations ADD COLUMN expires_at bigint NOT NULL DEFAULT 0;
ALTER TABLE delegations ADD COLUMN settled_at bigint NOT NULL DEFAULT 0;
CREATE INDEX delegations_by_status ON delegations(org_id, status, created_at);
CREATE INDEX delegations_open ON delegations(status, expires_at)
  WHERE status IN ('dispatched', 'pending_approval');

CREATE TABLE budget_periods (
  org_id        text COLLATE "C" NOT NULL REFERENCES orgs(org_id),
  period        text NOT NULL,                 -- 'YYYY-MM' (UTC)
  spent_micros  bigint NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
  held_micros   bigint NOT NULL DEFAULT 0 CHECK (held_micros >= 0),
  PRIMARY KEY (org_id, period)
);

ALTER TABLE orgs ADD COLUMN audit_seq bigint NOT NULL DEFAULT 0;
CREATE TABLE audit_log (
  org_id                  text NOT NULL REFERENCES orgs(org_id),
  event_id                bigint NOT NULL,
  delegation_id           text NOT NULL,
  ts                      bigint NOT NULL,       -- unix seconds
  caller_id               text NOT NULL,
  callee_id               text NOT NULL,          -- '' when there was none
  policy_ref              text NOT NULL,          -- '' when no rule decided
  decision                text NOT NULL,          -- ALLOW | BLOCK | PENDING_APPROVAL
  status                  text NOT NULL,          -- the delegation's final status
  cost_micros             bigint NOT NULL,
  budget_remaining_micros bigint NOT NULL,       -- -1: no monthly budget
  trust_before            double precision,
  trust_after             double precision,
  PRIMARY KEY (org_id, event_id),
  UNIQUE (org_id, delegation_id)
);

CREATE TABLE billing_events (
  billing_id     text COLLATE "C" PRIMARY KEY,
  org_id         text NOT NULL REFERENCES orgs(org_id),
  delegation_id  text NOT NULL UNIQUE,           -- also the idempotency key
  caller_agent_id text NOT NULL,
  callee_agent_id text NOT NULL,
  amount_micros  bigint NOT NULL CHECK (amount_micros >= 0),
  currency       text NOT NULL DEFAULT 'usd',
  period         text NOT NULL,
  state          text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
  attempts       bigint NOT NULL DEFAULT 0,
  next_attempt_at bigint NOT NULL,
  last_error     text NOT NULL DEFAULT '',
  created_at     bigint NOT NULL
);
CREATE INDEX billing_events_due ON billing_events(state, next_attempt_at);

CREATE TABLE idempotency_keys (
  org_id        text COLLATE "C" NOT NULL REFERENCES orgs(org_id),
  idem_key      text NOT NULL,
  body_hash     bytea NOT NULL CHECK (octet_length(body_hash) = 32),
  delegation_id text NOT NULL,
  created_at    bigint NOT NULL,
  PRIMARY KEY (org_id, idem_key)
);

ALTER TABLE agents ADD COLUMN settled_count bigint NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN completed_count bigint NOT NULL DEFAULT 0;
CREATE TABLE agent_failures (
  org_id        text NOT NULL,
  agent_id      text NOT NULL,
  at            bigint NOT NULL,
  delegation_id text NOT NULL
);
CREATE INDEX agent_failures_by_agent ON agent_failures(org_id, agent_id, at);
