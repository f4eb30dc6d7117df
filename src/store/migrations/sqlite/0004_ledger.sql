-- The delegation lifecycle: every state a delegation passes through, the
-- org budget periods its holds and charges go to, the per-org audit log
-- (one entry per delegation, event_id +1 per org), the billing outbox,
-- idempotency keys, and the counters trust and circuit breakers read.
ALTER TABLE delegations ADD COLUMN status TEXT NOT NULL DEFAULT 'blocked'
  CHECK (status IN ('pending_approval', 'dispatched', 'completed', 'failed', 'timed_out',
                    'blocked', 'expired'));
ALTER TABLE delegations ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE delegations ADD COLUMN task_type TEXT NOT NULL DEFAULT '';
ALTER TABLE delegations ADD COLUMN task_input TEXT NOT NULL DEFAULT '{}';
ALTER TABLE delegations ADD COLUMN context_scope TEXT NOT NULL DEFAULT '[]';
ALTER TABLE delegations ADD COLUMN policy_result TEXT NOT NULL DEFAULT '{}';
ALTER TABLE delegations ADD COLUMN policy_ref TEXT NOT NULL DEFAULT '';
ALTER TABLE delegations ADD COLUMN timeout_ms INTEGER NOT NULL DEFAULT 30000;
ALTER TABLE delegations ADD COLUMN callback_url TEXT;
ALTER TABLE delegations ADD COLUMN period TEXT NOT NULL DEFAULT '';
ALTER TABLE delegations ADD COLUMN hold_micros INTEGER NOT NULL DEFAULT 0 CHECK (hold_micros >= 0);
ALTER TABLE delegations ADD COLUMN budget_limit_micros INTEGER NOT NULL DEFAULT -1;
ALTER TABLE delegations ADD COLUMN cost_micros INTEGER NOT NULL DEFAULT 0 CHECK (cost_micros >= 0);
ALTER TABLE delegations ADD COLUMN reported_cost_micros INTEGER NOT NULL DEFAULT -1;
ALTER TABLE delegations ADD COLUMN overrun INTEGER NOT NULL DEFAULT 0;
ALTER TABLE delegations ADD COLUMN llm_tokens INTEGER NOT NULL DEFAULT -1;
ALTER TABLE delegations ADD COLUMN latency_ms INTEGER NOT NULL DEFAULT -1;
ALTER TABLE delegations ADD COLUMN result TEXT;
ALTER TABLE delegations ADD COLUMN error_code TEXT NOT NULL DEFAULT '';
ALTER TABLE delegations ADD COLUMN error_message TEXT NOT NULL DEFAULT '';
ALTER TABLE delegations ADD COLUMN audit_event INTEGER NOT NULL DEFAULT 0;
ALTER TABLE delegations ADD COLUMN trust_before REAL;
ALTER TABLE delegations ADD COLUMN trust_after REAL;
ALTER TABLE delegations ADD COLUMN budget_remaining_micros INTEGER NOT NULL DEFAULT -1;
ALTER TABLE delegations ADD COLUMN dispatched_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE delegations ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE delegations ADD COLUMN settled_at INTEGER NOT NULL DEFAULT 0;
-- a person's decision on a pending approval (docs/approvals.md); while
-- pending, expires_at is the approval deadline (0: none)
ALTER TABLE delegations ADD COLUMN decided TEXT NOT NULL DEFAULT ''
  CHECK (decided IN ('', 'approved', 'rejected'));
ALTER TABLE delegations ADD COLUMN decided_by_key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE delegations ADD COLUMN decided_by_key_name TEXT NOT NULL DEFAULT '';
ALTER TABLE delegations ADD COLUMN approver TEXT NOT NULL DEFAULT '';
ALTER TABLE delegations ADD COLUMN decided_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE delegations ADD COLUMN decision_reason TEXT NOT NULL DEFAULT '';
CREATE INDEX delegations_by_status ON delegations(org_id, status, created_at);
CREATE INDEX delegations_open ON delegations(status, expires_at)
  WHERE status IN ('dispatched', 'pending_approval');

CREATE TABLE budget_periods (
  org_id        TEXT NOT NULL REFERENCES orgs(org_id),
  period        TEXT NOT NULL,                 -- 'YYYY-MM' (UTC)
  spent_micros  INTEGER NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
  held_micros   INTEGER NOT NULL DEFAULT 0 CHECK (held_micros >= 0),
  PRIMARY KEY (org_id, period)
) STRICT;

ALTER TABLE orgs ADD COLUMN audit_seq INTEGER NOT NULL DEFAULT 0;
CREATE TABLE audit_log (
  org_id                  TEXT NOT NULL REFERENCES orgs(org_id),
  event_id                INTEGER NOT NULL,
  delegation_id           TEXT NOT NULL,
  ts                      INTEGER NOT NULL,       -- unix seconds
  caller_id               TEXT NOT NULL,
  callee_id               TEXT NOT NULL,          -- '' when there was none
  policy_ref              TEXT NOT NULL,          -- '' when no rule decided
  decision                TEXT NOT NULL,          -- ALLOW | BLOCK | PENDING_APPROVAL
  status                  TEXT NOT NULL,          -- the delegation's final status
  cost_micros             INTEGER NOT NULL,
  budget_remaining_micros INTEGER NOT NULL,       -- -1: no monthly budget
  trust_before            REAL,
  trust_after             REAL,
  approval                TEXT,                   -- JSON of a person's decision; NULL none
  PRIMARY KEY (org_id, event_id),
  UNIQUE (org_id, delegation_id)
) STRICT;

CREATE TABLE billing_events (
  billing_id     TEXT PRIMARY KEY,
  org_id         TEXT NOT NULL REFERENCES orgs(org_id),
  delegation_id  TEXT NOT NULL UNIQUE,           -- also the idempotency key
  caller_agent_id TEXT NOT NULL,
  callee_agent_id TEXT NOT NULL,
  amount_micros  INTEGER NOT NULL CHECK (amount_micros >= 0),
  currency       TEXT NOT NULL DEFAULT 'usd',
  period         TEXT NOT NULL,
  state          TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
  attempts       INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error     TEXT NOT NULL DEFAULT '',
  created_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX billing_events_due ON billing_events(state, next_attempt_at);

CREATE TABLE idempotency_keys (
  org_id        TEXT NOT NULL REFERENCES orgs(org_id),
  idem_key      TEXT NOT NULL,
  body_hash     BLOB NOT NULL CHECK (length(body_hash) = 32),
  delegation_id TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  PRIMARY KEY (org_id, idem_key)
) STRICT;

ALTER TABLE agents ADD COLUMN settled_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN completed_count INTEGER NOT NULL DEFAULT 0;
CREATE TABLE agent_failures (
  org_id        TEXT NOT NULL,
  agent_id      TEXT NOT NULL,
  at            INTEGER NOT NULL,
  delegation_id TEXT NOT NULL
) STRICT;
CREATE INDEX agent_failures_by_agent ON agent_failures(org_id, agent_id, at);
