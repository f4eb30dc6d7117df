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
-- a person's decision on a pending approval (docs/approvals.md); while
-- pending, expires_at is the approval deadline (0: none)
ALTER TABLE delegations ADD COLUMN decided text NOT NULL DEFAULT ''
  CHECK (decided IN ('', 'approved', 'rejected'));
ALTER TABLE delegations ADD COLUMN decided_by_key_id text NOT NULL DEFAULT '';
ALTER TABLE delegations ADD COLUMN decided_by_key_name text NOT NULL DEFAULT '';
ALTER TABLE delegations ADD COLUMN approver text NOT NULL DEFAULT '';
ALTER TABLE delegations ADD COLUMN decided_at bigint NOT NULL DEFAULT 0;
ALTER TABLE delegations ADD COLUMN decision_reason text NOT NULL DEFAULT '';
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
  approval                text,                   -- JSON of a person's decision; NULL none
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

-- The ledger's writes as functions (store.h, struct ledger_op; called by
-- pg_ledger.c), so that one OPEN or one SETTLE is one statement: a batch
-- of them goes to the server in one pipelined round trip and commits once.
-- A ledger transaction is:
--
--   BEGIN;
--   SELECT nexra_ledger_begin(org) for each org of the batch, in one
--     order shared by every process (pg_ledger.c: strcmp order);
--   SELECT * FROM nexra_ledger_open(...) / nexra_ledger_settle(...) per op;
--   SELECT nexra_ledger_end(org) for each org;
--   COMMIT;
--
-- nexra_ledger_begin locks the org's row for the whole transaction. Every
-- row an op writes belongs to its org, so ledger transactions that share
-- an org meet at that row, in the same order, and never deadlock one
-- another; holds, settles and audit appends of one org are serialized
-- across processes. Under that lock an audit entry takes the number after
-- the org's last entry, found among those above orgs.audit_seq (this
-- transaction's own), and nexra_ledger_end writes the last number back to
-- orgs.audit_seq, once per batch. The hot rows
-- (the org's, its budget month's, the callee's) are thus written by plain
-- UPDATEs, never after a row lock of another subtransaction: a row locked
-- by one subtransaction and updated by the next carries a MultiXact on
-- every version, and every foreign key check then pays for all of them.
--
-- Each op runs in a BEGIN ... EXCEPTION block, a subtransaction: a failing
-- op rolls back alone (its audit number with it, so ids stay gapless) and
-- reports o_rc (0 ok, 1 conflict, 2 not found, 3 internal, with the
-- server's words in o_message) while the others go on. Deadlocks and
-- serialization failures are re-raised instead: they abort the whole
-- transaction, which the client then runs again.
--
-- Holds: an UPDATE of the (org, period) row that adds the cap only where
-- spent + held + cap <= limit (or no limit), else an INSERT of the row
-- when there is none yet; nothing written means refused. Under the org
-- lock no other process changes the row in between.
--
-- Both op functions return the same row: o_rc, o_message, o_idem,
-- o_idem_id, o_refused, o_status, o_hold, o_error_code, o_event,
-- o_remaining, o_before, o_after, o_settled_at, o_circuit, o_cost.

CREATE FUNCTION nexra_ledger_begin(p_org text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM orgs o WHERE o.org_id = p_org FOR NO KEY UPDATE;
END $$;

CREATE FUNCTION nexra_ledger_end(p_org text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE orgs o SET audit_seq = (SELECT max(a.event_id) FROM audit_log a
                                 WHERE a.org_id = p_org AND a.event_id > o.audit_seq)
  WHERE o.org_id = p_org
    AND EXISTS (SELECT 1 FROM audit_log a WHERE a.org_id = p_org AND a.event_id > o.audit_seq);
END $$;

-- Settlement proper, shared by SETTLE and by OPEN of a blocked delegation:
-- budget, audit entry, callee trust and counters, billing, circuit
-- breaker. The caller writes the delegation row itself.
CREATE FUNCTION nexra_ledger_final(
  p_org text, p_id text, p_status text, p_caller text, p_callee text, p_policy_ref text,
  p_period text, p_limit bigint, p_hold bigint, p_cost bigint,
  p_signal double precision, p_alpha double precision, p_promote bigint,
  p_cb_max bigint, p_cb_window bigint, p_now bigint, p_approval text,
  OUT o_event bigint, OUT o_remaining bigint, OUT o_before double precision,
  OUT o_after double precision, OUT o_circuit integer)
LANGUAGE plpgsql AS $$
DECLARE
  v_ran boolean := p_status IN ('completed', 'failed', 'timed_out');
  v_done integer := CASE WHEN p_status = 'completed' THEN 1 ELSE 0 END;
  v_spent bigint;
  v_held bigint;
  v_status text;
  v_completed bigint;
  v_failures bigint;
BEGIN
  o_circuit := 0;
  IF p_hold <> 0 OR p_cost <> 0 THEN
    UPDATE budget_periods b
    SET held_micros = b.held_micros - p_hold, spent_micros = b.spent_micros + p_cost
    WHERE b.org_id = p_org AND b.period = p_period
    RETURNING b.spent_micros, b.held_micros INTO v_spent, v_held;
    IF NOT FOUND THEN
      INSERT INTO budget_periods (org_id, period, spent_micros, held_micros)
      VALUES (p_org, p_period, p_cost, 0)
      RETURNING spent_micros, held_micros INTO v_spent, v_held;
    END IF;
  ELSE
    SELECT b.spent_micros, b.held_micros INTO v_spent, v_held
    FROM budget_periods b WHERE b.org_id = p_org AND b.period = p_period;
  END IF;
  o_remaining := CASE WHEN p_limit < 0 THEN -1
                      ELSE p_limit - coalesce(v_spent, 0) - coalesce(v_held, 0) END;

  -- entries above audit_seq are this transaction's (nexra_ledger_end
  -- raises it at the end of each): the probe reads at most a batch of them
  -- whatever plan the statistics suggest
  SELECT coalesce((SELECT max(a.event_id) FROM audit_log a
                   WHERE a.org_id = p_org AND a.event_id > o.audit_seq), o.audit_seq) + 1
  INTO o_event FROM orgs o WHERE o.org_id = p_org;
  IF NOT FOUND THEN
    RAISE foreign_key_violation USING MESSAGE = 'no org ' || p_org;
  END IF;

  IF p_callee IS NOT NULL THEN
    -- no row lock needed: the org's row lock keeps other ledger writers out
    SELECT a.trust_score, a.status, a.completed_count INTO o_before, v_status, v_completed
    FROM agents a WHERE a.org_id = p_org AND a.agent_id = p_callee;
    o_after := o_before;
    IF FOUND AND v_ran THEN
      o_after := o_before + p_alpha * (p_signal - o_before);
      IF v_status = 'probationary' AND v_completed + v_done >= p_promote THEN
        v_status := 'active';
      END IF;
      UPDATE agents a SET trust_score = o_after,
        settled_count = a.settled_count + 1,
        completed_count = a.completed_count + v_done,
        status = v_status,
        updated_at = CASE WHEN a.status <> v_status THEN p_now ELSE a.updated_at END
      WHERE a.org_id = p_org AND a.agent_id = p_callee;
      IF p_status <> 'completed' AND p_cb_max > 0 THEN
        INSERT INTO agent_failures (org_id, agent_id, at, delegation_id)
        VALUES (p_org, p_callee, p_now, p_id);
        SELECT count(*) INTO v_failures FROM agent_failures f
        WHERE f.org_id = p_org AND f.agent_id = p_callee
          AND f.at > p_now - p_cb_window AND f.at <= p_now;
        IF v_failures >= p_cb_max AND v_status <> 'paused' THEN
          UPDATE agents a SET prior_status = a.status, status = 'paused', updated_at = p_now
          WHERE a.org_id = p_org AND a.agent_id = p_callee;
          o_circuit := 1;
        END IF;
      END IF;
    END IF;
  END IF;

  INSERT INTO audit_log (org_id, event_id, delegation_id, ts, caller_id, callee_id, policy_ref,
                         decision, status, cost_micros, budget_remaining_micros,
                         trust_before, trust_after, approval)
  VALUES (p_org, o_event, p_id, p_now, p_caller, coalesce(p_callee, ''), p_policy_ref,
          CASE WHEN v_ran THEN 'ALLOW' ELSE 'BLOCK' END, p_status, p_cost, o_remaining,
          o_before, o_after, p_approval);

  IF p_status = 'completed' THEN
    INSERT INTO billing_events (billing_id, org_id, delegation_id, caller_agent_id,
                                callee_agent_id, amount_micros, period, next_attempt_at,
                                created_at)
    VALUES ('bill_' || p_id, p_org, p_id, p_caller, coalesce(p_callee, ''), p_cost, p_period,
            p_now, p_now)
    ON CONFLICT DO NOTHING;
  END IF;
END $$;

-- LEDGER_OPEN: the idempotency claim, the hold, the row (settled at once
-- when blocked, by policy or because the hold did not fit).
CREATE FUNCTION nexra_ledger_open(
  p_org text, p_id text, p_caller text, p_callee text, p_capability text, p_cap bigint,
  p_callee_trust double precision, p_circuit_open integer, p_decision text, p_policy_id text,
  p_policy_version integer, p_created_at bigint, p_status text, p_key_id text,
  p_task_type text, p_task_input text, p_context_scope text, p_policy_result text,
  p_policy_ref text, p_timeout_ms bigint, p_callback_url text, p_period text,
  p_limit bigint, p_dispatched_at bigint, p_expires_at bigint, p_error_code text,
  p_error_message text, p_idem_key text, p_idem_hash bytea, p_now bigint,
  OUT o_rc integer, OUT o_message text, OUT o_idem integer, OUT o_idem_id text,
  OUT o_refused integer, OUT o_status text, OUT o_hold bigint, OUT o_error_code text,
  OUT o_event bigint, OUT o_remaining bigint, OUT o_before double precision,
  OUT o_after double precision, OUT o_settled_at bigint, OUT o_circuit integer,
  OUT o_cost bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_same boolean;
  v_spent bigint;
  v_held bigint;
  f record;
BEGIN
  o_rc := 0; o_idem := 0; o_refused := 0; o_status := p_status; o_hold := 0;
  o_error_code := coalesce(p_error_code, ''); o_event := 0; o_remaining := -1;
  o_settled_at := 0; o_circuit := 0; o_cost := 0;
  BEGIN
    IF p_idem_key IS NOT NULL THEN
      -- claim the key; a claim 24 hours old or more is taken over
      INSERT INTO idempotency_keys AS k (org_id, idem_key, body_hash, delegation_id, created_at)
      VALUES (p_org, p_idem_key, p_idem_hash, p_id, p_now)
      ON CONFLICT (org_id, idem_key) DO UPDATE
        SET body_hash = EXCLUDED.body_hash, delegation_id = EXCLUDED.delegation_id,
            created_at = EXCLUDED.created_at
        WHERE k.created_at <= p_now - 86400;
      IF NOT FOUND THEN
        SELECT k.body_hash = p_idem_hash, k.delegation_id INTO v_same, o_idem_id
        FROM idempotency_keys k WHERE k.org_id = p_org AND k.idem_key = p_idem_key;
        o_idem := CASE WHEN v_same THEN 1 ELSE 2 END;
        RETURN;
      END IF;
    END IF;

    IF p_status IN ('dispatched', 'pending_approval') THEN
      UPDATE budget_periods b SET held_micros = b.held_micros + p_cap
      WHERE b.org_id = p_org AND b.period = p_period
        AND (p_limit < 0 OR b.spent_micros + b.held_micros + p_cap <= p_limit)
      RETURNING b.spent_micros, b.held_micros INTO v_spent, v_held;
      IF NOT FOUND THEN
        -- no row yet, or no room: a first row only if the cap fits at all
        INSERT INTO budget_periods (org_id, period, spent_micros, held_micros)
        SELECT p_org, p_period, 0, p_cap WHERE p_limit < 0 OR p_cap <= p_limit
        ON CONFLICT (org_id, period) DO NOTHING
        RETURNING spent_micros, held_micros INTO v_spent, v_held;
      END IF;
      IF FOUND THEN
        o_hold := p_cap;
        o_remaining := CASE WHEN p_limit < 0 THEN -1 ELSE p_limit - v_spent - v_held END;
      ELSE
        o_status := 'blocked';
        o_refused := 1;
        o_error_code := 'BUDGET_EXCEEDED';
      END IF;
    ELSIF p_status <> 'blocked' THEN
      RAISE invalid_parameter_value USING MESSAGE = 'cannot open a delegation as ' || p_status;
    END IF;

    IF o_status = 'blocked' THEN
      SELECT * INTO f FROM nexra_ledger_final(p_org, p_id, 'blocked', p_caller, p_callee,
        p_policy_ref, p_period, p_limit, 0, 0, 0, 0, 0, 0, 0, p_now, NULL);
      o_event := f.o_event;
      o_remaining := f.o_remaining;
      o_before := f.o_before;
      o_after := f.o_after;
      o_settled_at := p_now;
    END IF;

    INSERT INTO delegations (delegation_id, org_id, caller_agent_id, callee_agent_id, capability,
      budget_cap_micros, callee_trust, callee_circuit_open, decision, policy_id, policy_version,
      created_at, status, key_id, task_type, task_input, context_scope, policy_result, policy_ref,
      timeout_ms, callback_url, period, hold_micros, budget_limit_micros, error_code,
      error_message, audit_event, trust_before, trust_after, budget_remaining_micros,
      dispatched_at, expires_at, settled_at)
    VALUES (p_id, p_org, p_caller, p_callee, p_capability, p_cap, p_callee_trust,
      p_circuit_open, p_decision, p_policy_id, p_policy_version, p_created_at, o_status, p_key_id,
      p_task_type, coalesce(p_task_input, '{}'), coalesce(p_context_scope, '[]'),
      coalesce(p_policy_result, '{}'), p_policy_ref, p_timeout_ms, p_callback_url, p_period,
      o_hold, p_limit, o_error_code, coalesce(p_error_message, ''), o_event, o_before, o_after,
      o_remaining, p_dispatched_at, p_expires_at, o_settled_at);
  EXCEPTION
    WHEN integrity_constraint_violation THEN
      o_rc := 1; o_message := SQLERRM;
    WHEN OTHERS THEN
      IF SQLSTATE IN ('40001', '40P01') THEN
        RAISE;
      END IF;
      o_rc := 3; o_message := SQLERRM;
  END;
END $$;

-- LEDGER_SETTLE: the status guard (a second settler finds the delegation
-- final: CONFLICT), settlement, the row.
CREATE FUNCTION nexra_ledger_settle(
  p_org text, p_id text, p_status text, p_cost bigint, p_reported bigint, p_overrun integer,
  p_llm_tokens bigint, p_latency_ms bigint, p_result text, p_error_code text,
  p_error_message text, p_signal double precision, p_alpha double precision,
  p_promote bigint, p_cb_max bigint, p_cb_window bigint, p_now bigint, p_settled_at bigint,
  p_approval text,
  OUT o_rc integer, OUT o_message text, OUT o_idem integer, OUT o_idem_id text,
  OUT o_refused integer, OUT o_status text, OUT o_hold bigint, OUT o_error_code text,
  OUT o_event bigint, OUT o_remaining bigint, OUT o_before double precision,
  OUT o_after double precision, OUT o_settled_at bigint, OUT o_circuit integer,
  OUT o_cost bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v record;
  f record;
BEGIN
  o_rc := 0; o_idem := 0; o_refused := 0; o_status := p_status; o_hold := 0;
  o_error_code := coalesce(p_error_code, ''); o_event := 0; o_remaining := -1;
  o_settled_at := 0; o_circuit := 0; o_cost := 0;
  BEGIN
    IF p_status NOT IN ('completed', 'failed', 'timed_out', 'blocked', 'expired') THEN
      RAISE invalid_parameter_value USING MESSAGE = 'not a final status: ' || p_status;
    END IF;
    SELECT d.status, d.caller_agent_id, d.callee_agent_id, d.policy_ref, d.period,
           d.hold_micros, d.budget_limit_micros
    INTO v FROM delegations d
    WHERE d.org_id = p_org AND d.delegation_id = p_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
      o_rc := 2; o_message := 'no delegation ' || p_id;
      RETURN;
    END IF;
    IF v.status NOT IN ('dispatched', 'pending_approval') THEN
      o_rc := 1; o_message := 'delegation ' || p_id || ' is ' || v.status;
      RETURN;
    END IF;
    -- the charge: what was reported, at most the hold (an overrun is
    -- charged at the cap); nothing unless completed
    IF p_status = 'completed' THEN
      o_cost := greatest(0, least(p_cost, v.hold_micros));
    END IF;
    o_settled_at := CASE WHEN p_settled_at > 0 THEN p_settled_at ELSE p_now END;
    SELECT * INTO f FROM nexra_ledger_final(p_org, p_id, p_status, v.caller_agent_id,
      v.callee_agent_id, v.policy_ref, v.period, v.budget_limit_micros, v.hold_micros, o_cost,
      p_signal, p_alpha, p_promote, p_cb_max, p_cb_window, p_now, p_approval);
    UPDATE delegations d SET status = p_status, hold_micros = 0, cost_micros = o_cost,
      reported_cost_micros = p_reported, overrun = p_overrun, llm_tokens = p_llm_tokens,
      latency_ms = p_latency_ms, result = p_result, error_code = o_error_code,
      error_message = coalesce(p_error_message, ''), audit_event = f.o_event,
      trust_before = f.o_before, trust_after = f.o_after,
      budget_remaining_micros = f.o_remaining, settled_at = o_settled_at
    WHERE d.org_id = p_org AND d.delegation_id = p_id;
    o_event := f.o_event;
    o_remaining := f.o_remaining;
    o_before := f.o_before;
    o_after := f.o_after;
    o_circuit := f.o_circuit;
  EXCEPTION
    WHEN integrity_constraint_violation THEN
      o_rc := 1; o_message := SQLERRM;
    WHEN OTHERS THEN
      IF SQLSTATE IN ('40001', '40P01') THEN
        RAISE;
      END IF;
      o_rc := 3; o_message := SQLERRM;
  END;
END $$;

-- LEDGER_DECIDE: a person's decision on a pending approval. Only a
-- delegation still pending_approval and inside its deadline (expires_at 0
-- or later than now) can be decided: CONFLICT otherwise. Approving turns it
-- dispatched with the given dispatched_at and expires_at (the hold stays);
-- rejecting settles it blocked (nothing charged, the hold released, the
-- decision in its audit entry). The same row shape as the other ops.
CREATE FUNCTION nexra_ledger_decide(
  p_org text, p_id text, p_decided text, p_key_id text, p_key_name text, p_approver text,
  p_reason text, p_now bigint, p_dispatched_at bigint, p_expires_at bigint,
  p_error_message text, p_error_code text, p_approval text,
  OUT o_rc integer, OUT o_message text, OUT o_idem integer, OUT o_idem_id text,
  OUT o_refused integer, OUT o_status text, OUT o_hold bigint, OUT o_error_code text,
  OUT o_event bigint, OUT o_remaining bigint, OUT o_before double precision,
  OUT o_after double precision, OUT o_settled_at bigint, OUT o_circuit integer,
  OUT o_cost bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v record;
BEGIN
  o_rc := 0; o_idem := 0; o_refused := 0; o_status := 'dispatched'; o_hold := 0;
  o_error_code := ''; o_event := 0; o_remaining := -1;
  o_settled_at := 0; o_circuit := 0; o_cost := 0;
  BEGIN
    IF p_decided NOT IN ('approved', 'rejected') THEN
      RAISE invalid_parameter_value USING MESSAGE = 'not a decision: ' || p_decided;
    END IF;
    UPDATE delegations d SET decided = p_decided, decided_by_key_id = p_key_id,
      decided_by_key_name = p_key_name, approver = coalesce(p_approver, ''), decided_at = p_now,
      decision_reason = coalesce(p_reason, ''),
      status = CASE WHEN p_decided = 'approved' THEN 'dispatched' ELSE d.status END,
      dispatched_at = CASE WHEN p_decided = 'approved' THEN p_dispatched_at
                           ELSE d.dispatched_at END,
      expires_at = CASE WHEN p_decided = 'approved' THEN p_expires_at ELSE d.expires_at END
    WHERE d.org_id = p_org AND d.delegation_id = p_id AND d.status = 'pending_approval'
      AND (d.expires_at = 0 OR d.expires_at > p_now)
    RETURNING d.hold_micros, d.budget_remaining_micros INTO v;
    IF NOT FOUND THEN
      PERFORM 1 FROM delegations d WHERE d.org_id = p_org AND d.delegation_id = p_id;
      IF FOUND THEN
        o_rc := 1; o_message := 'delegation ' || p_id || ' is not awaiting a decision';
      ELSE
        o_rc := 2; o_message := 'no delegation ' || p_id;
      END IF;
      RETURN;
    END IF;
    IF p_decided = 'approved' THEN
      o_hold := v.hold_micros;
      o_remaining := v.budget_remaining_micros;
      RETURN;
    END IF;
    SELECT * INTO o_rc, o_message, o_idem, o_idem_id, o_refused, o_status, o_hold,
      o_error_code, o_event, o_remaining, o_before, o_after, o_settled_at, o_circuit, o_cost
    FROM nexra_ledger_settle(p_org, p_id, 'blocked', 0, -1, 0, -1, -1, NULL, p_error_code,
      p_error_message, 0, 0, 0, 0, 0, p_now, p_now, p_approval);
    IF o_rc <> 0 THEN
      RAISE EXCEPTION 'settling the rejection failed: %', o_message;
    END IF;
  EXCEPTION
    WHEN integrity_constraint_violation THEN
      o_rc := 1; o_message := SQLERRM;
    WHEN OTHERS THEN
      IF SQLSTATE IN ('40001', '40P01') THEN
        RAISE;
      END IF;
      o_rc := 3; o_message := SQLERRM;
  END;
END $$;
