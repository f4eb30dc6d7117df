-- Delegations as the policy engine needs them: the inputs of each decision
-- (so it can be replayed against a candidate policy exactly) and its
-- outcome. The delegation lifecycle adds its own columns.
CREATE TABLE delegations (
  delegation_id       TEXT PRIMARY KEY,
  org_id              TEXT NOT NULL REFERENCES orgs(org_id),
  caller_agent_id     TEXT NOT NULL,
  callee_agent_id     TEXT,              -- NULL: chosen by capability, none yet
  capability          TEXT NOT NULL,
  budget_cap_micros   INTEGER NOT NULL CHECK (budget_cap_micros >= 0),
  callee_trust        REAL,              -- at decision time; NULL without callee
  callee_circuit_open INTEGER NOT NULL CHECK (callee_circuit_open IN (0, 1)),
  decision            TEXT NOT NULL CHECK (decision IN ('allow', 'block', 'pending_approval')),
  policy_id           TEXT,
  policy_version      INTEGER,
  created_at          INTEGER NOT NULL
) STRICT;
CREATE INDEX delegations_by_time ON delegations(org_id, created_at, delegation_id);
