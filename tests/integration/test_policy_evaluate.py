"""Dry-run decisions (issue 3 points 3-5) through POST /v1/policies/evaluate:
the stack's order, default-deny, every failed constraint, HiTL, the callee's
trust and circuit, test keys, and no side effects."""
import pytest

from helpers import Api, expect_error, expect_ok, register_agent, register_org_data, unique

STACK_A = """rules:
  - capability: research
    max_budget_usd: 0.50
    min_trust_score: 0.85
  - capability: email_send
    max_budget_usd: 0.10
    hitl_required: true
    hitl_timeout_seconds: 600
  - capability: analysis
    caller_allowlist: [sales-agent]
"""


@pytest.fixture
def org(server):
    d = register_org_data(server)
    return dict(live=Api(server, d["api_key"]), test=Api(server, d["test_api_key"]))


def put(c, yaml, priority, name=None, enabled=True):
    return expect_ok(c.post("/v1/policies", {"name": name or unique("p"), "yaml": yaml,
                                             "priority": priority, "enabled": enabled}), 201)


def ev(c, **body):
    body.setdefault("caller_agent_id", "sales-agent")
    body.setdefault("budget_cap_usd", 0.25)
    return expect_ok(c.post("/v1/policies/evaluate", body))


def test_no_enabled_policy_blocks(org):
    d = ev(org["live"], capability="research")
    assert d["decision"] == "block" and d["reason"] == "no_enabled_policy"
    put(org["live"], STACK_A, 1, enabled=False)
    assert ev(org["live"], capability="research")["reason"] == "no_enabled_policy"


def test_first_matching_rule_decides_and_default_deny(org):
    c = org["live"]
    p = put(c, STACK_A, 10)
    d = ev(c, capability="research", budget_cap_usd=0.25)
    assert (d["decision"], d["policy_id"], d["policy_version"], d["rule_index"],
            d["rule_capability"]) == ("allow", p["policy_id"], 1, 0, "research")
    d = ev(c, capability="generation")
    assert d["decision"] == "block" and d["reason"] == "default_deny"


def test_every_failed_constraint_is_listed(org):
    c = org["live"]
    put(c, STACK_A, 10)
    callee, _, _ = register_agent(c, unique("r"))  # trust 0.5 < 0.85
    d = ev(c, callee_agent_id=callee, budget_cap_usd=0.75)
    assert d["decision"] == "block"
    kinds = {f["constraint"]: f for f in d["failed_constraints"]}
    assert set(kinds) == {"budget", "trust"}
    assert kinds["budget"]["budget_cap_usd"] == 0.75 and kinds["budget"]["max_budget_usd"] == 0.5
    assert kinds["trust"]["min_trust_score"] == 0.85
    d = ev(c, caller_agent_id="ops-agent", capability="analysis")
    assert [f["constraint"] for f in d["failed_constraints"]] == ["caller_allowlist"]


def test_hitl_gives_pending_approval_only_when_all_else_passes(org):
    c = org["live"]
    put(c, STACK_A, 10)
    d = ev(c, capability="email_send", budget_cap_usd=0.05)
    assert d["decision"] == "pending_approval" and d["hitl_timeout_seconds"] == 600
    d = ev(c, capability="email_send", budget_cap_usd=0.20)
    assert d["decision"] == "block"


def test_priority_orders_the_stack_ties_by_creation(org):
    c = org["live"]
    late = put(c, "rules:\n  - capability: research\n    max_budget_usd: 0.01\n", 20)
    put(c, "rules:\n  - capability: research\n    max_budget_usd: 9\n", 20)
    assert ev(c, capability="research")["policy_id"] == late["policy_id"]  # created first
    first = put(c, 'rules:\n  - capability: "*"\n', 5)
    d = ev(c, capability="research")
    assert d["policy_id"] == first["policy_id"] and d["rule_capability"] == "*"
    expect_ok(c.request("PATCH", f"/v1/policies/{first['policy_id']}", {"priority": 30}))
    assert ev(c, capability="research")["policy_id"] == late["policy_id"]
    expect_ok(c.delete(f"/v1/policies/{late['policy_id']}"))
    assert ev(c, capability="research")["decision"] == "allow"


def test_new_version_takes_effect(org):
    c = org["live"]
    name = unique("v")
    put(c, "rules:\n  - capability: research\n", 1, name=name)
    assert ev(c, capability="research")["decision"] == "allow"
    p = put(c, "rules:\n  - capability: research\n    max_budget_usd: 0.1\n", 1, name=name)
    d = ev(c, capability="research")
    assert d["decision"] == "block" and d["policy_version"] == 2 == p["version"]


def test_paused_callee_has_an_open_circuit(org):
    c = org["live"]
    put(c, 'rules:\n  - capability: "*"\n', 1)
    callee, _, _ = register_agent(c, unique("r"))
    assert ev(c, callee_agent_id=callee)["decision"] == "allow"
    expect_ok(c.delete(f"/v1/agents/{callee}"))
    d = ev(c, callee_agent_id=callee)
    assert d["decision"] == "block"
    assert [f["constraint"] for f in d["failed_constraints"]] == ["circuit"]


def test_test_keys_get_decisions_without_side_effects(org):
    put(org["live"], STACK_A, 10)
    before = expect_ok(org["live"].get("/v1/policies"))
    assert ev(org["test"], capability="research") == ev(org["live"], capability="research")
    assert expect_ok(org["live"].get("/v1/policies")) == before


@pytest.mark.parametrize("body,field", [
    ({"capability": "research"}, "budget_cap_usd"),
    ({"capability": "research", "budget_cap_usd": 0.1234567}, "budget_cap_usd"),
    ({"capability": "research", "budget_cap_usd": -1}, "budget_cap_usd"),
    ({"budget_cap_usd": 1}, "callee_agent_id"),
    ({"capability": "Not Valid", "budget_cap_usd": 1}, "capability"),
    ({"capability": "research", "budget_cap_usd": 1, "caller_agent_id": "bad id"}, "caller_agent_id"),
    ({"capability": "research", "budget_cap_usd": 1, "extra": 1}, "extra"),
])
def test_bad_input(org, body, field):
    body.setdefault("caller_agent_id", "sales-agent")
    expect_error(org["live"].post("/v1/policies/evaluate", body), 400, "VALIDATION_ERROR", field)


def test_callee_must_be_of_this_org(server, org):
    other = Api(server, register_org_data(server)["api_key"])
    theirs, _, _ = register_agent(other, unique("theirs"))
    c = org["live"]
    a = c.post("/v1/policies/evaluate", {"caller_agent_id": "x", "callee_agent_id": theirs,
                                         "budget_cap_usd": 1})
    b = c.post("/v1/policies/evaluate", {"caller_agent_id": "x", "callee_agent_id": "nope",
                                         "budget_cap_usd": 1})
    expect_error(a, 404, "NOT_FOUND")
    assert a.json()["error"] == b.json()["error"]


def test_a_change_made_through_another_server_is_seen_at_once(start_server, backend):
    """Compiled stacks are cached per process under the org's policy stamp:
    a change made through one server must decide the next request on the
    other, which holds a cached stack."""
    import shutil
    s1 = start_server("--dev", backend=backend)
    s2 = start_server("--dev", backend=backend, db=s1.db, start=False)
    shutil.copyfile(s1.master_key_path, s2.master_key_path)
    s2.start()
    d = register_org_data(s1)
    a1, a2 = Api(s1, d["api_key"]), Api(s2, d["api_key"])
    p = put(a1, "rules:\n  - capability: research\n", 1, name="shared")
    for _ in range(3):  # warm s2's cache
        assert ev(a2, capability="research")["decision"] == "allow"
    put(a1, "rules:\n  - capability: research\n    max_budget_usd: 0.1\n", 1, name="shared")
    d2 = ev(a2, capability="research")
    assert d2["decision"] == "block" and d2["policy_version"] == 2
    expect_ok(a1.delete(f"/v1/policies/{p['policy_id']}"))
    assert ev(a2, capability="research")["reason"] == "no_enabled_policy"
    assert s2.stop() == 0 and s1.stop() == 0
