-- Delegations as the policy engine needs them: the inputs of each decision
-- (so it can be replayed against a candidate policy exactly) and its
-- outcome. The delegation lifecycle adds its own columns.
CREATE TABLE delegations (
  delegation_id       text COLLATE "C" PRIMARY KEY,
  org_id              text COLLATE "C" NOT NULL REFERENCES orgs(org_id),
  caller_agent_id     text NOT NULL,
  callee_agent_id     text,              -- NULL: chosen by capability, none yet
  capability          text NOT NULL,
  budget_cap_micros   bigint NOT NULL CHECK (budget_cap_micros >= 0),
  callee_trust        double precision,  -- at decision time; NULL without callee
  callee_circuit_open integer NOT NULL CHECK (callee_circuit_open IN (0, 1)),
  decision            text NOT NULL CHECK (decision IN ('allow', 'block', 'pending_approval')),
  policy_id           text,
  policy_version      integer,
  created_at          bigint NOT NULL
);
CREATE INDEX delegations_by_time ON delegations(org_id, created_at, delegation_id);
