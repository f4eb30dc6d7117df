"""Replay (issue 3 point 6): POST /v1/policies/simulate decides the org's
recorded delegations again with the candidate added, and reports what
would change. Until the delegation lifecycle records them, the records
are inserted here straight into the database (both backends)."""
import sqlite3
import time
import uuid

import pytest

from helpers import Api, expect_error, expect_ok, register_org_data, unique

T_BASE = 1_790_000_000  # a fixed past time; every test gives its window explicitly


def sql(server, statement):
    if server.backend == "sqlite":
        con = sqlite3.connect(server.sqlite_path, timeout=30)
        try:
            con.execute(statement)
            con.commit()
        finally:
            con.close()
    else:
        server.pg.psql(server.pg_dbname, statement)


def record(server, org_id, capability, budget_micros, at, callee=None, trust=None,
           circuit=0, decision="allow", caller="sales-agent"):
    did = "del_" + uuid.uuid4().hex[:16]
    q = lambda v: "NULL" if v is None else ("'" + str(v) + "'" if isinstance(v, str) else str(v))
    sql(server, "INSERT INTO delegations (delegation_id, org_id, caller_agent_id, callee_agent_id, "
                "capability, budget_cap_micros, callee_trust, callee_circuit_open, decision, "
                "policy_id, policy_version, created_at) VALUES "
                f"({q(did)}, {q(org_id)}, {q(caller)}, {q(callee)}, {q(capability)}, "
                f"{budget_micros}, {q(trust)}, {circuit}, {q(decision)}, NULL, NULL, {at})")
    return did


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@pytest.fixture
def org(server):
    d = register_org_data(server)
    return d["org_id"], Api(server, d["api_key"]), Api(server, d["test_api_key"])


def sim(c, yaml, status=200, **kw):
    body = {"yaml": yaml, "from": iso(T_BASE - 10), "to": iso(T_BASE + 1000)}
    body.update(kw)
    return expect_ok(c.post("/v1/policies/simulate", body), status)


def test_counts_and_lists_what_the_candidate_changes(server, org):
    org_id, c, _ = org
    expect_ok(c.post("/v1/policies", {"name": "base", "priority": 10,
                                      "yaml": 'rules:\n  - capability: "*"\n'}), 201)
    cheap = record(server, org_id, "research", 100_000, T_BASE)
    dear = record(server, org_id, "research", 900_000, T_BASE + 1)
    mail = record(server, org_id, "email_send", 50_000, T_BASE + 2)
    record(server, org_id, "research", 900_000, T_BASE + 5000)  # outside the window
    cand = ("rules:\n  - capability: research\n    max_budget_usd: 0.50\n"
            "  - capability: email_send\n    hitl_required: true\n")
    r = sim(c, cand, priority=1)
    assert (r["examined"], r["changed"], r["truncated"]) == (3, 2, False)
    assert r["transitions"] == {"allow->block": 1, "allow->pending_approval": 1}
    got = {x["delegation_id"]: (x["before"], x["after"]) for x in r["changes"]}
    assert got == {dear: ("allow", "block"), mail: ("allow", "pending_approval")}
    assert cheap not in got
    # the same candidate below the base policy changes nothing: "*" decides first
    r = sim(c, cand, priority=20)
    assert (r["examined"], r["changed"]) == (3, 0)


def test_recorded_inputs_are_used(server, org):
    org_id, c, _ = org
    # no policy at all now: everything blocks; the candidate lets trusted callees in
    record(server, org_id, "research", 1, T_BASE, callee="r1", trust=0.95)
    low = record(server, org_id, "research", 1, T_BASE + 1, callee="r2", trust=0.4)
    tripped = record(server, org_id, "research", 1, T_BASE + 2, callee="r3", trust=0.99,
                     circuit=1)
    r = sim(c, "rules:\n  - capability: research\n    min_trust_score: 0.9\n")
    assert (r["examined"], r["changed"]) == (3, 1)
    assert r["transitions"] == {"block->allow": 1}
    assert r["changes"][0]["after"] == "allow"
    assert r["changes"][0]["delegation_id"] not in (low, tripped)


def test_limit_and_window(server, org):
    org_id, c, _ = org
    for i in range(5):
        record(server, org_id, "research", 1, T_BASE + i)
    r = sim(c, "rules:\n  - capability: research\n", limit=3)
    assert (r["examined"], r["truncated"]) == (3, True)
    r = sim(c, "rules:\n  - capability: research\n", **{"from": iso(T_BASE + 3)})
    assert r["examined"] == 2


def test_no_side_effects_and_test_keys_allowed(server, org):
    org_id, c, t = org
    record(server, org_id, "research", 1, T_BASE)
    before = expect_ok(c.get("/v1/policies"))
    assert sim(t, "rules:\n  - capability: research\n")["changed"] == 1
    assert expect_ok(c.get("/v1/policies")) == before


def test_other_orgs_records_are_not_replayed(server, org):
    org_id, c, _ = org
    other = register_org_data(server)
    record(server, other["org_id"], "research", 1, T_BASE)
    assert sim(c, "rules:\n  - capability: research\n")["examined"] == 0


@pytest.mark.parametrize("body,field", [
    ({}, "yaml"),
    ({"yaml": "rules:\n  - capability: research\n    min_trust_score: 2\n"}, "yaml"),
    ({"yaml": "rules: []\n", "from": "yesterday"}, "from"),
    ({"yaml": "rules: []\n", "to": "2026-02-30T00:00:00Z"}, "to"),
    ({"yaml": "rules: []\n", "from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "from"),
    ({"yaml": "rules: []\n", "limit": 0}, "limit"),
    ({"yaml": "rules: []\n", "limit": 100001}, "limit"),
    ({"yaml": "rules: []\n", "extra": 1}, "extra"),
])
def test_bad_input(org, body, field):
    expect_error(org[1].post("/v1/policies/simulate", body), 400, "VALIDATION_ERROR", field)
