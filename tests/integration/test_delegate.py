"""POST /v1/delegate and GET /v1/delegations (docs/delegations.md) against a
real callee (callee.py): the seed's response shape, the signed webhook and
its scoped JWT as the callee verifies them, every refusal before dispatch
(caller, callee, input schema, price, policy, HiTL), choosing the callee by
capability, every way a callee can fail, monthly budgets, the circuit
breaker, and the list with its filters and tenancy."""
import json
import re
import time

import pytest

from callee import (DelegationOrg, OPEN_POLICY, assert_webhook, close, hang, ok, raw,
                    status)
from helpers import Api, expect_error, expect_ok, free_port, is_rfc3339z, register_org_data

DEL_ID_RE = re.compile(r"^del_[0-9a-f]{24}$")
OBJECT_KEYS = {
    "delegation_id", "status", "caller_agent_id", "callee_agent_id", "capability", "task",
    "context_scope", "budget_cap_usd", "timeout_ms", "callback_url", "policy_result", "result",
    "usage", "hold_usd", "audit_event", "trust_delta", "budget_remaining_usd", "error",
    "created_at", "dispatched_at", "settled_at", "expires_at", "approval",
}
USAGE_KEYS = {"cost_usd", "latency_ms", "llm_tokens", "reported_cost_usd", "overrun"}


def money(x):
    return round(x, 6)


def budget_policy(monthly, extra_rules='  - capability: "*"\n'):
    return f"organization:\n  monthly_budget_usd: {monthly}\nrules:\n{extra_rules}"


def check_final(d, status_, code=None):
    """The invariants of a settled (or blocked) delegation object."""
    assert OBJECT_KEYS <= set(d), sorted(OBJECT_KEYS - set(d))
    assert DEL_ID_RE.match(d["delegation_id"]), d["delegation_id"]
    assert d["status"] == status_, d
    assert set(d["usage"]) >= USAGE_KEYS, d["usage"]
    assert d["hold_usd"] == 0, d
    assert isinstance(d["audit_event"], int) and d["audit_event"] >= 1, d
    assert isinstance(d["trust_delta"], dict) and set(d["trust_delta"]) == {"before", "after"}, d
    assert is_rfc3339z(d["created_at"]) and is_rfc3339z(d["settled_at"]), d
    if d["dispatched_at"] is None:  # never sent: no deadline either
        assert d["expires_at"] is None, d
    else:
        assert isinstance(d["expires_at"], int), d
    if code is None:
        assert d["error"] is None, d
    else:
        assert d["error"]["code"] == code and d["error"]["message"], d
        assert d["usage"]["cost_usd"] == 0, d
        assert d["result"] is None, d


def error_object(r, http, code):
    """The error answer of a delegation: details carry the object plus
    delegation_id, policy_ref and failed_constraints."""
    err = expect_error(r, http, code)
    det = err["details"]
    assert DEL_ID_RE.match(det.get("delegation_id") or ""), err
    assert "policy_ref" in det and "failed_constraints" in det, err
    return det


# --------------------------------------------------------------------------
# The happy path

def test_happy_path_shape_webhook_and_token(server, callee):
    w = DelegationOrg(server, callee)
    cid = w.add_callee(price=0.05)
    ev = expect_ok(w.admin.post("/v1/policies/evaluate", {
        "caller_agent_id": w.caller_id, "callee_agent_id": cid, "budget_cap_usd": 0.25}))
    callee.behave(cid, ok(result={"summary": "Acme Corp sells anvils"}, cost=0.04, tokens=2400))
    task_input = {"company_name": "Acme Corp", "tags": ["b2b", "tools"]}
    t0 = time.time()
    r = w.api.post("/v1/delegate", {
            "callee_agent_id": cid,
            "task": {"type": "research", "input": task_input},
            "context_scope": ["crm:acme"],
            "budget_cap_usd": 0.25,
            "timeout_ms": 12000,
            "callback_url": None,
        })
    d = expect_ok(r, 200)
    # the seed's response
    assert DEL_ID_RE.match(d["delegation_id"])
    assert d["status"] == "completed"
    assert d["policy_result"]["decision"] == "allow"
    assert d["policy_result"]["policy_id"] == ev["policy_id"]
    assert d["policy_result"]["policy_version"] == 1
    assert d["result"] == {"summary": "Acme Corp sells anvils"}
    assert d["usage"]["cost_usd"] == 0.04 and d["usage"]["llm_tokens"] == 2400
    assert isinstance(d["usage"]["latency_ms"], int) and 0 <= d["usage"]["latency_ms"] < 10000
    # and the rest of the object
    check_final(d, "completed")
    assert d["usage"]["reported_cost_usd"] == 0.04 and d["usage"]["overrun"] is False
    assert d["policy_result"] == ev, "policy_result must be the decision as evaluate shows it"
    assert (d["caller_agent_id"], d["callee_agent_id"], d["capability"]) == \
        (w.caller_id, cid, "research")
    assert d["task"] == {"type": "research", "input": task_input}
    assert d["context_scope"] == ["crm:acme"]
    assert (d["budget_cap_usd"], d["timeout_ms"], d["callback_url"]) == (0.25, 12000, None)
    assert d["budget_remaining_usd"] is None  # no monthly budget
    assert d["trust_delta"]["before"] == 0.5
    assert d["trust_delta"]["after"] > d["trust_delta"]["before"]
    assert is_rfc3339z(d["dispatched_at"])
    assert abs(d["expires_at"] - (t0 + 12)) <= 3
    # what the callee got, verified the way a callee would
    recs = callee.wait_for(1, cid)
    assert len(recs) == 1
    assert_webhook(recs[0], d, org_id=w.org_id, task_input=task_input, timeout_ms=12000)
    assert recs[0].checks == {"nexra_signature": True, "standard_signature": True, "jwt": True}
    # stored exactly as answered
    assert w.get(d["delegation_id"]) == d
    assert abs(w.agent(cid)["trust_score"] - d["trust_delta"]["after"]) < 1e-6
    # the next delegation is the org's next audit entry
    d2 = expect_ok(w.delegate(cid, cap=0.25), 200)
    assert d2["delegation_id"] != d["delegation_id"]
    assert d2["audit_event"] == d["audit_event"] + 1
    assert d2["trust_delta"]["before"] == d["trust_delta"]["after"]
    assert {x["delegation_id"] for x in w.list_all()} == {d2["delegation_id"], d["delegation_id"]}
    assert callee.count(cid) == 2


def test_task_type_defaults_to_the_capability_and_input_may_be_any_json(server, callee):
    w = DelegationOrg(server, callee)
    cid = w.add_callee(input_schema={"type": "array"})
    d = expect_ok(w.delegate(cid, input=[1, "two", None]))
    assert d["task"] == {"type": "research", "input": [1, "two", None]}
    assert d["timeout_ms"] == 30000 and d["context_scope"] == []
    assert callee.wait_for(1, cid)[0].json["task"] == [1, "two", None]


def test_unicode_and_escapes_reach_the_callee_intact(server, callee):
    w = DelegationOrg(server, callee)
    cid = w.add_callee()
    task_input = {"company_name": "Soci\u00e9t\u00e9 G\u00e9n\u00e9rale \u2603 \U0001F600 \"q\" \\ \n\t\u0001",
                  "tags": ["</script>", "\u2028"]}
    callee.behave(cid, ok(result={"summary": "\u00e9t\u00e9 \u2603 \U0001F600 \u0001"}))
    d = expect_ok(w.delegate(cid, input=task_input))
    assert d["task"]["input"] == task_input
    assert d["result"] == {"summary": "\u00e9t\u00e9 \u2603 \U0001F600 \u0001"}
    assert_webhook(callee.wait_for(1, cid)[0], d, org_id=w.org_id, task_input=task_input)
    assert w.get(d["delegation_id"]) == d


def test_standard_webhooks_whsec_secret(server, callee):
    """A secret starting with whsec_ keys the Standard Webhooks signature with
    its base64-decoded rest; X-Nexra-Signature and the JWT use its bytes."""
    import base64
    import secrets
    w = DelegationOrg(server, callee)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    cid = w.add_callee(secret=secret)
    d = expect_ok(w.delegate(cid, timeout_ms=2500))  # expires_at: rounded up to the second
    rec = callee.wait_for(1, cid)[0]
    assert_webhook(rec, d, org_id=w.org_id, task_input={"company_name": "Acme Corp"},
                   timeout_ms=2500)


def test_money_is_exact_in_webhook_and_token(server, callee):
    w = DelegationOrg(server, callee)
    cid = w.add_callee(price=0.000001)
    callee.behave(cid, ok(cost=0.123456))
    d = expect_ok(w.delegate(cid, cap=0.123457))
    assert d["budget_cap_usd"] == 0.123457 and d["usage"]["cost_usd"] == 0.123456
    rec = callee.wait_for(1, cid)[0]
    assert rec.json["budget_cap"] == 0.123457 and rec.claims["budget_cap_usd"] == 0.123457


def test_extra_members_of_the_answer_are_ignored(server, callee):
    w = DelegationOrg(server, callee)
    cid = w.add_callee(behaviour=ok(cost=0.02, extra={"notes": "ignored", "trace": [1, 2]}))
    d = expect_ok(w.delegate(cid))
    assert d["result"] == {"summary": "done"} and d["usage"]["cost_usd"] == 0.02


# --------------------------------------------------------------------------
# Refusals before anything is stored

def test_caller_header_is_required_and_must_be_an_active_agent(server, callee):
    w = DelegationOrg(server, callee)
    cid = w.add_callee()
    no_agent = Api(server, w.live_key)
    expect_error(no_agent.post("/v1/delegate", w.body(cid)), 400, "VALIDATION_ERROR",
                 field="X-Agent-ID")
    ghost = Api(server, w.live_key, agent_id="ghost-agent")
    expect_error(ghost.post("/v1/delegate", w.body(cid)), 403, "FORBIDDEN")
    other = DelegationOrg(server, callee, policy=None)
    theirs = Api(server, w.live_key, agent_id=other.caller_id)
    expect_error(theirs.post("/v1/delegate", w.body(cid)), 403, "FORBIDDEN")
    expect_ok(w.admin.delete(f"/v1/agents/{w.caller_id}"))
    expect_error(w.delegate(cid), 403, "FORBIDDEN")
    assert w.list_all() == [] and callee.count(cid) == 0


@pytest.mark.parametrize("mutation,field", [
    (lambda b: b.pop("task"), "task"),
    (lambda b: b.pop("budget_cap_usd"), "budget_cap_usd"),
    (lambda b: b.update(budget_cap_usd=-0.01), "budget_cap_usd"),
    (lambda b: b.update(budget_cap_usd=0.1234567), "budget_cap_usd"),
    (lambda b: b.update(budget_cap_usd="0.25"), "budget_cap_usd"),
    (lambda b: b.pop("callee_agent_id"), "callee_agent_id"),
    (lambda b: b["task"].pop("input"), "task.input"),
    (lambda b: b["task"].update(extra=1), "task.extra"),
    (lambda b: b.update(task=[1]), "task"),
    (lambda b: b.update(timeout_ms=0), "timeout_ms"),
    (lambda b: b.update(timeout_ms=300001), "timeout_ms"),
    (lambda b: b.update(timeout_ms=1.5), "timeout_ms"),
    (lambda b: b.update(context_scope="all"), "context_scope"),
    (lambda b: b.update(context_scope=list(range(257))), "context_scope"),
    (lambda b: b.update(callback_url="ftp://example.com/cb"), "callback_url"),
    (lambda b: b.update(callback_url=5), "callback_url"),
    (lambda b: b.update(surprise=True), "surprise"),
    (lambda b: b.update(capability="analysis"), "capability"),
    (lambda b: b["task"].update(type="analysis"), "task.type"),
])
def test_bad_bodies_are_400_and_store_nothing(server, callee, mutation, field):
    w = DelegationOrg(server, callee)
    cid = w.add_callee()
    b = w.body(cid)
    mutation(b)
    err = expect_error(w.api.post("/v1/delegate", b), 400, "VALIDATION_ERROR")
    assert err["details"].get("field") == field, err
    assert w.list_all() == [] and callee.count(cid) == 0


def test_edge_values_are_accepted(server, callee):
    w = DelegationOrg(server, callee)
    cid = w.add_callee(price=0)
    d = expect_ok(w.delegate(cid, context_scope=[f"doc:{i}" for i in range(256)],
                             timeout_ms=300000))
    assert len(d["context_scope"]) == 256 and d["timeout_ms"] == 300000
    assert abs(d["expires_at"] - (time.time() + 300)) <= 3
    callee.behave(cid, ok(cost=0))
    d = expect_ok(w.delegate(cid, cap=0))
    assert d["budget_cap_usd"] == 0 and d["usage"]["cost_usd"] == 0


def test_unknown_callee_is_404_like_another_orgs(server, callee):
    w = DelegationOrg(server, callee)
    other = DelegationOrg(server, callee)
    theirs = other.add_callee()
    a = expect_error(w.delegate("no-such-agent"), 404, "NOT_FOUND")
    b = expect_error(w.delegate(theirs), 404, "NOT_FOUND")
    assert a["details"] == b["details"]
    assert a["message"].replace("no-such-agent", "X") == b["message"].replace(theirs, "X")
    assert w.list_all() == [] and other.list_all() == [] and callee.count(theirs) == 0


def test_paused_callee_is_409_and_not_recorded(server, callee):
    w = DelegationOrg(server, callee)
    cid = w.add_callee()
    expect_ok(w.admin.delete(f"/v1/agents/{cid}"))
    expect_error(w.delegate(cid), 409, "CONFLICT")
    assert w.list_all() == [] and callee.count(cid) == 0
    expect_ok(w.admin.post(f"/v1/agents/{cid}/activate"))
    expect_ok(w.delegate(cid))


@pytest.mark.parametrize("task_input,path", [
    ({"company_name": 42}, "/company_name"),
    ({"company_name": "Acme", "tags": ["ok", 7]}, "/tags/1"),
])
def test_input_violating_the_input_schema_is_400_naming_the_path(server, callee, task_input,
                                                                  path):
    w = DelegationOrg(server, callee)
    cid = w.add_callee()
    err = expect_error(w.delegate(cid, input=task_input), 400, "VALIDATION_ERROR",
                       field="task.input")
    det = err["details"]
    assert det["path"] == path, det
    assert isinstance(det["errors"], list) and det["errors"], det
    assert path in [e.get("path") for e in det["errors"]], det
    assert w.list_all() == [] and callee.count(cid) == 0
    # a missing required property is reported too
    err = expect_error(w.delegate(cid, input={"tags": []}), 400, "VALIDATION_ERROR",
                       field="task.input")
    assert err["details"]["errors"], err


def test_price_above_the_cap_is_402_and_recorded_blocked(server, callee):
    w = DelegationOrg(server, callee)
    cid = w.add_callee(price=0.30)
    det = error_object(w.delegate(cid, cap=0.25), 402, "BUDGET_EXCEEDED")
    check_final(det, "blocked", "BUDGET_EXCEEDED")
    stored = w.get(det["delegation_id"])
    check_final(stored, "blocked", "BUDGET_EXCEEDED")
    assert stored["trust_delta"]["before"] == stored["trust_delta"]["after"]
    assert [x["delegation_id"] for x in w.list_all(status="blocked")] == [det["delegation_id"]]
    assert callee.count(cid) == 0
    # equal to the cap is fine
    expect_ok(w.delegate(cid, cap=0.30))


# --------------------------------------------------------------------------
# Policy

def test_policy_block_is_403_recorded_with_its_reasons(server, callee):
    w = DelegationOrg(server, callee, policy=None)
    pol = w.policy("rules:\n  - capability: research\n    max_budget_usd: 0.10\n",
                   name="strict-research")
    cid = w.add_callee()
    det = error_object(w.delegate(cid, cap=0.25), 403, "POLICY_BLOCKED")
    check_final(det, "blocked", "POLICY_BLOCKED")
    assert det["policy_ref"] == "strict-research"
    assert det["failed_constraints"] == [
        {"constraint": "budget", "budget_cap_usd": 0.25, "max_budget_usd": 0.1}]
    pr = det["policy_result"]
    assert (pr["decision"], pr["policy_id"], pr["policy_version"]) == \
        ("block", pol["policy_id"], 1)
    assert det["trust_delta"]["before"] == det["trust_delta"]["after"]
    stored = w.get(det["delegation_id"])
    assert stored["status"] == "blocked" and stored["error"]["code"] == "POLICY_BLOCKED"
    assert stored["policy_result"] == pr
    assert callee.count(cid) == 0
    d = expect_ok(w.delegate(cid, cap=0.10))
    assert d["audit_event"] == det["audit_event"] + 1
    # the decision is recorded as it was made, whatever the stack says later
    w.policy("rules:\n  - capability: research\n", name="strict-research")
    assert w.get(det["delegation_id"])["policy_result"] == pr
    assert expect_ok(w.delegate(cid, cap=0.25))["policy_result"]["policy_version"] == 2


def test_caller_allowlist_uses_the_x_agent_id(server, callee):
    w = DelegationOrg(server, callee, policy=None)
    w.policy("rules:\n  - capability: research\n    caller_allowlist: [ops-agent]\n",
             name="allow")
    cid = w.add_callee()
    det = error_object(w.delegate(cid), 403, "POLICY_BLOCKED")
    assert det["failed_constraints"] == [
        {"constraint": "caller_allowlist", "caller_agent_id": w.caller_id}]
    w.policy(f"rules:\n  - capability: research\n    caller_allowlist: [ops-agent, {w.caller_id}]\n",
             name="allow")
    expect_ok(w.delegate(cid))
    assert callee.count(cid) == 1


def test_no_policy_means_default_deny(server, callee):
    w = DelegationOrg(server, callee, policy=None)
    cid = w.add_callee()
    det = error_object(w.delegate(cid), 403, "POLICY_BLOCKED")
    assert det["policy_result"]["reason"] == "no_enabled_policy"
    assert det["policy_ref"] is None
    w.policy("rules:\n  - capability: analysis\n")
    det = error_object(w.delegate(cid), 403, "POLICY_BLOCKED")
    assert det["policy_result"]["reason"] == "default_deny"
    assert len(w.list_all(status="blocked")) == 2 and callee.count(cid) == 0


def test_hitl_is_202_pending_with_its_hold(server, callee):
    w = DelegationOrg(server, callee, policy=budget_policy(
        "1.00", "  - capability: analysis\n    hitl_required: true\n"
                "  - capability: research\n"))
    gated = w.add_callee(capability="analysis")
    free = w.add_callee(capability="research")
    d = expect_ok(w.delegate(gated, cap=0.60), 202)
    assert d["status"] == "pending_approval"
    assert d["policy_result"]["decision"] == "pending_approval"
    assert d["hold_usd"] == 0.60
    assert d["trust_delta"] is None and d["budget_remaining_usd"] is None
    assert w.get(d["delegation_id"])["status"] == "pending_approval"
    assert [x["delegation_id"] for x in w.list_all(status="pending_approval")] == \
        [d["delegation_id"]]
    # the hold counts: 0.60 held + 0.50 > 1.00
    det = error_object(w.delegate(free, cap=0.50), 402, "BUDGET_EXCEEDED")
    assert det["status"] == "blocked"
    ok_ = expect_ok(w.delegate(free, cap=0.40))
    assert money(ok_["budget_remaining_usd"]) == money(1.00 - 0.60 - 0.01)
    # chosen by capability, approval is a candidate too
    d2 = expect_ok(w.delegate(capability="analysis", cap=0.30), 202)
    assert d2["status"] == "pending_approval" and d2["callee_agent_id"] == gated
    assert d2["hold_usd"] == 0.30
    expect_error(w.delegate(free, cap=0.10), 402, "BUDGET_EXCEEDED")  # 0.09 left
    assert len(w.list_all(status="pending_approval")) == 2
    assert callee.count(gated) == 0 and callee.count(free) == 1


# --------------------------------------------------------------------------
# Choosing the callee by capability

def test_choosing_the_callee_by_capability(server, callee):
    w = DelegationOrg(server, callee)
    cheap = w.add_callee(price=0.05, description="Researches companies; zebra specialist")
    dear = w.add_callee(price=0.30, description="Researches companies")
    w.add_callee(capability="analysis", price=0.01)
    # dear is above the cap: cheap
    d = expect_ok(w.delegate(capability="research", cap=0.20))
    assert d["callee_agent_id"] == cheap and d["capability"] == "research"
    # give dear a better trust score
    expect_ok(w.delegate(dear, cap=0.50))
    t_dear = w.agent(dear)["trust_score"]
    t_cheap = w.agent(cheap)["trust_score"]
    if t_cheap >= t_dear:  # cheap got one completion as well: one more for dear
        expect_ok(w.delegate(dear, cap=0.50))
        t_dear = w.agent(dear)["trust_score"]
    assert t_dear > t_cheap
    # both fit: higher trust first, whatever the price
    d = expect_ok(w.delegate(capability="research", cap=0.50))
    assert d["callee_agent_id"] == dear
    rec = callee.requests_for(dear)[-1]
    assert rec.json["delegation_id"] == d["delegation_id"]
    # query words found in the description rank first
    d = expect_ok(w.delegate(capability="research", cap=0.50, query="zebra research"))
    assert d["callee_agent_id"] == cheap
    # a policy that needs more trust than cheap has: dear, even asked for zebras
    t_cheap = w.agent(cheap)["trust_score"]
    t_dear = w.agent(dear)["trust_score"]
    assert t_dear > t_cheap
    floor = f"{(t_cheap + t_dear) / 2:.4f}"
    w.policy(f"rules:\n  - capability: research\n    min_trust_score: {floor}\n", priority=1)
    d = expect_ok(w.delegate(capability="research", cap=0.50, query="zebra"))
    assert d["callee_agent_id"] == dear
    # none fits: dear over the cap, cheap under the trust floor
    n_before = len(w.list_all())
    err = expect_error(w.delegate(capability="research", cap=0.10), 404, "NOT_FOUND")
    det = err["details"]
    assert (det["considered"], det["over_budget"], det["blocked_by_policy"]) == (2, 1, 1), det
    assert len(w.list_all()) == n_before  # nothing recorded


def test_choosing_skips_paused_agents_the_caller_and_other_orgs(server, callee):
    w = DelegationOrg(server, callee, caller_capability="research")
    only = w.add_callee(price=0.01)
    DelegationOrg(server, callee).add_callee(price=0.01)  # another org's research agent
    d = expect_ok(w.delegate(capability="research", cap=0.10))
    assert d["callee_agent_id"] == only
    expect_ok(w.admin.delete(f"/v1/agents/{only}"))
    err = expect_error(w.delegate(capability="research", cap=0.10), 404, "NOT_FOUND")
    assert err["details"]["considered"] == 0, err  # the caller is no candidate
    err = expect_error(w.delegate(capability="execution", cap=0.10), 404, "NOT_FOUND")
    assert err["details"]["considered"] == 0


# --------------------------------------------------------------------------
# Outcomes

FAILURES = {
    "http_500": status(500),
    "http_404": status(404, b"not here"),
    "http_302": raw(b"", code=302),
    "not_json": raw(b"<html>Internal thing</html>"),
    "json_array": raw(b"[1, 2, 3]", ctype="application/json"),
    "no_result": raw(b'{"cost_usd": 0.01}', ctype="application/json"),
    "no_cost": raw(b'{"result": {"summary": "x"}}', ctype="application/json"),
    "cost_with_7_decimals": ok(cost=0.0100001),
    "over_1_mib": ok(result={"summary": "x" * (1024 * 1024 + 10)}),
    "result_violates_output_schema": ok(result={"summary": 5}),
    "result_missing_required": ok(result={"other": "x"}),
    "connection_closed": close(),
}


@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_callee_failure_is_502_failed_not_billed(server, callee, kind):
    w = DelegationOrg(server, callee, policy=budget_policy("5.00"))
    cid = w.add_callee(behaviour=FAILURES[kind])
    det = error_object(w.delegate(cid, cap=0.25, timeout_ms=5000), 502, "CALLEE_FAILED")
    check_final(det, "failed", "CALLEE_FAILED")
    assert det["budget_remaining_usd"] == 5.0, det
    assert det["trust_delta"]["after"] < det["trust_delta"]["before"], det
    stored = w.get(det["delegation_id"])
    check_final(stored, "failed", "CALLEE_FAILED")
    assert stored["budget_remaining_usd"] == 5.0
    assert callee.count(cid) == 1
    assert callee.requests_for(cid)[0].ok, callee.requests_for(cid)[0].errors
    # the whole budget is still there for a good call
    callee.behave(cid, ok(cost=0.02))
    d = expect_ok(w.delegate(cid, cap=5.00))
    assert d["budget_remaining_usd"] == 4.98


def test_callee_answer_of_exactly_1_mib_is_read_one_byte_more_is_not(server, callee):
    w = DelegationOrg(server, callee)
    cid = w.add_callee()
    limit = 1024 * 1024
    frame = len(json.dumps({"result": {"summary": ""}, "cost_usd": 0.01}).encode())
    body = json.dumps({"result": {"summary": "x" * (limit - frame)}, "cost_usd": 0.01}).encode()
    assert len(body) == limit
    callee.behave(cid, raw(body, ctype="application/json"))
    d = expect_ok(w.delegate(cid, timeout_ms=10000))
    assert len(d["result"]["summary"]) == limit - frame
    over = body[:-1] + b" }"  # the same answer, one byte longer
    assert len(over) == limit + 1 and json.loads(over)["cost_usd"] == 0.01
    callee.behave(cid, raw(over, ctype="application/json"))
    det = error_object(w.delegate(cid, timeout_ms=10000), 502, "CALLEE_FAILED")
    assert det["status"] == "failed"


def test_unreachable_callee_is_502(server, callee):
    w = DelegationOrg(server, callee)
    cid = w.add_callee(webhook_url=f"http://127.0.0.1:{free_port()}/nobody")
    det = error_object(w.delegate(cid, timeout_ms=5000), 502, "CALLEE_FAILED")
    check_final(det, "failed", "CALLEE_FAILED")


@pytest.mark.parametrize("behaviour", ["slow", "hang"])
def test_slow_callee_is_504_timed_out(server, callee, behaviour):
    w = DelegationOrg(server, callee, policy=budget_policy("2.00"))
    cid = w.add_callee(behaviour=ok(delay=6) if behaviour == "slow" else hang())
    t0 = time.monotonic()
    r = w.delegate(cid, cap=0.50, timeout_ms=1000)
    elapsed = time.monotonic() - t0
    det = error_object(r, 504, "CALLEE_TIMEOUT")
    assert 0.9 <= elapsed < 5.0, f"answered after {elapsed:.2f}s for timeout_ms 1000"
    check_final(det, "timed_out", "CALLEE_TIMEOUT")
    assert det["budget_remaining_usd"] == 2.0
    assert det["trust_delta"]["after"] < det["trust_delta"]["before"]
    assert w.get(det["delegation_id"])["status"] == "timed_out"
    assert callee.count(cid) == 1


def test_cost_above_the_cap_is_charged_at_the_cap(server, callee):
    w = DelegationOrg(server, callee, policy=budget_policy("5.00"))
    cid = w.add_callee(behaviour=ok(cost=0.40))
    d = expect_ok(w.delegate(cid, cap=0.25))
    check_final(d, "completed")
    assert d["usage"]["cost_usd"] == 0.25
    assert d["usage"]["reported_cost_usd"] == 0.40
    assert d["usage"]["overrun"] is True
    assert d["budget_remaining_usd"] == 4.75
    assert w.get(d["delegation_id"])["usage"] == d["usage"]


# --------------------------------------------------------------------------
# Monthly budget and circuit breaker

def test_monthly_budget_holds_and_spend(server, callee):
    w = DelegationOrg(server, callee, policy=budget_policy("1.00"))
    cid = w.add_callee(price=0.01)
    callee.behave(cid, ok(cost=0.10))
    d1 = expect_ok(w.delegate(cid, cap=0.30))
    assert d1["budget_remaining_usd"] == 0.90
    callee.behave(cid, status(500))
    f = error_object(w.delegate(cid, cap=0.30), 502, "CALLEE_FAILED")
    assert f["budget_remaining_usd"] == 0.90  # the hold was released, nothing charged
    callee.behave(cid, ok(cost=0.20))
    d2 = expect_ok(w.delegate(cid, cap=0.30))
    assert money(d2["budget_remaining_usd"]) == 0.70
    b = error_object(w.delegate(cid, cap=0.71), 402, "BUDGET_EXCEEDED")
    check_final(b, "blocked", "BUDGET_EXCEEDED")
    assert b["policy_result"]["decision"] == "allow"
    callee.behave(cid, ok(cost=0.05))
    d3 = expect_ok(w.delegate(cid, cap=0.70))  # exactly what is left
    assert money(d3["budget_remaining_usd"]) == 0.65
    done = w.list_all(status="completed")
    assert money(sum(x["usage"]["cost_usd"] for x in done)) == 0.35
    assert w.list_all(status="dispatched") == []
    assert all(x["hold_usd"] == 0 for x in w.list_all())
    assert callee.count(cid) == 4
    assert len(w.list_all()) == 5


def test_circuit_breaker_pauses_the_callee_until_activated(server, callee):
    w = DelegationOrg(server, callee, policy=(
        "rules:\n  - capability: research\n    circuit_breaker:\n"
        "      max_failures: 2\n      window_seconds: 300\n"))
    cid = w.add_callee(behaviour=status(500))
    error_object(w.delegate(cid), 502, "CALLEE_FAILED")
    assert w.agent(cid)["status"] != "paused"
    error_object(w.delegate(cid), 502, "CALLEE_FAILED")
    assert w.agent(cid)["status"] == "paused"
    expect_error(w.delegate(cid), 409, "CONFLICT")
    assert len(w.list_all()) == 2 and callee.count(cid) == 2
    assert expect_ok(w.admin.post(f"/v1/agents/{cid}/activate"))["status"] != "paused"
    callee.behave(cid, ok())
    expect_ok(w.delegate(cid))
    assert callee.count(cid) == 3


def test_timeouts_count_for_the_circuit_breaker(server, callee):
    w = DelegationOrg(server, callee, policy=(
        "rules:\n  - capability: research\n    circuit_breaker:\n"
        "      max_failures: 2\n      window_seconds: 300\n"))
    cid = w.add_callee(behaviour=status(503))
    error_object(w.delegate(cid), 502, "CALLEE_FAILED")
    callee.behave(cid, ok(delay=4))
    error_object(w.delegate(cid, timeout_ms=1000), 504, "CALLEE_TIMEOUT")
    assert w.agent(cid)["status"] == "paused"


def test_without_a_circuit_breaker_failures_do_not_pause(server, callee):
    w = DelegationOrg(server, callee, policy=OPEN_POLICY)
    cid = w.add_callee(behaviour=status(500))
    for _ in range(3):
        error_object(w.delegate(cid), 502, "CALLEE_FAILED")
    assert w.agent(cid)["status"] == "probationary"


def test_trust_follows_the_worked_example(server, callee):
    """docs/trust.md's worked example, end to end: sla_p99_ms 1000, price
    0.05; five good calls (probationary, alpha 0.2), then active (alpha
    0.1): a failure, a call at 1.5 x the SLA, a call at 1.5 x the price."""
    w = DelegationOrg(server, callee)
    cid = w.add_callee(price=0.05, p99=1000, behaviour=ok(cost=0.04))
    expected = [0.6, 0.68, 0.744, 0.7952, 0.83616]
    before = 0.5
    for i, want in enumerate(expected):
        assert w.agent(cid)["status"] == "probationary"
        d = expect_ok(w.delegate(cid))
        assert abs(d["trust_delta"]["before"] - before) < 1e-9, (i, d["trust_delta"])
        assert abs(d["trust_delta"]["after"] - want) < 1e-9, (i, d["trust_delta"])
        before = d["trust_delta"]["after"]
    a = w.agent(cid)
    assert a["status"] == "active" and abs(a["trust_score"] - 0.83616) < 1e-9, a
    callee.behave(cid, status(500))
    d = error_object(w.delegate(cid), 502, "CALLEE_FAILED")
    assert abs(d["trust_delta"]["after"] - 0.752544) < 1e-9, d["trust_delta"]
    assert w.agent(cid)["status"] == "active", "failures do not demote"
    callee.behave(cid, ok(cost=0.04, delay=1.5))
    d = expect_ok(w.delegate(cid))
    lat = d["usage"]["latency_ms"]
    assert 1500 <= lat < 2000, d["usage"]
    signal = 0.6 + 0.25 * max(0.0, 2 - lat / 1000) + 0.15
    assert abs(d["trust_delta"]["after"] - (0.752544 + 0.1 * (signal - 0.752544))) < 1e-6
    prev = d["trust_delta"]["after"]
    callee.behave(cid, ok(cost=0.075))
    d = expect_ok(w.delegate(cid))
    assert abs(d["trust_delta"]["after"] - (prev + 0.1 * (0.925 - prev))) < 1e-6


# --------------------------------------------------------------------------
# Reading delegations

def test_list_filters_paging_and_order(server, callee):
    w = DelegationOrg(server, callee)
    a = w.add_callee(price=0.01)
    b = w.add_callee(price=0.01, behaviour=status(500))
    c = w.add_callee(price=0.50)
    ids = {}
    ids["a1"] = expect_ok(w.delegate(a))["delegation_id"]
    ids["b1"] = error_object(w.delegate(b), 502, "CALLEE_FAILED")["delegation_id"]
    ids["c1"] = error_object(w.delegate(c, cap=0.25), 402, "BUDGET_EXCEEDED")["delegation_id"]
    time.sleep(1.1)  # created_at has whole seconds: a2 is strictly the newest
    ids["a2"] = expect_ok(w.delegate(a))["delegation_id"]
    everything = w.list_all()
    assert {x["delegation_id"] for x in everything} == set(ids.values())
    assert everything[0]["delegation_id"] == ids["a2"], "newest first"
    created = [x["created_at"] for x in everything]
    assert created == sorted(created, reverse=True), "newest first"
    for x in everything:
        assert x == w.get(x["delegation_id"])
    # agent_id: as callee or as caller
    assert {x["delegation_id"] for x in w.list_all(agent_id=a)} == {ids["a1"], ids["a2"]}
    assert {x["delegation_id"] for x in w.list_all(agent_id=w.caller_id)} == set(ids.values())
    assert w.list_all(agent_id="nobody-at-all") == []
    # status
    assert {x["delegation_id"] for x in w.list_all(status="completed")} == {ids["a1"], ids["a2"]}
    assert [x["delegation_id"] for x in w.list_all(status="failed")] == [ids["b1"]]
    assert [x["delegation_id"] for x in w.list_all(status="blocked")] == [ids["c1"]]
    assert w.list_all(status="timed_out") == [] and w.list_all(status="dispatched") == []
    assert [x["delegation_id"] for x in w.list_all(status="completed", agent_id=a)] == \
        [ids["a2"], ids["a1"]]
    assert w.list_all(status="completed", agent_id=b) == []
    # from <= created_at < to
    times = sorted(x["created_at"] for x in everything)
    first, last = times[0], times[-1]
    assert len(w.list_all(**{"from": first})) == 4
    assert w.list_all(to=first) == []
    assert len(w.list_all(**{"from": first, "to": "2999-01-01T00:00:00Z"})) == 4
    assert w.list_all(**{"from": "2999-01-01T00:00:00Z"}) == []
    assert w.list_all(to="2000-01-01T00:00:00Z") == []
    assert [x["delegation_id"] for x in w.list_all(**{"from": last})] == [ids["a2"]]
    assert {x["delegation_id"] for x in w.list_all(to=last)} == {ids["a1"], ids["b1"], ids["c1"]}
    # paging
    r = w.admin.get("/v1/delegations", params={"limit": 3})
    body = r.json()
    assert r.status_code == 200 and len(body["data"]) == 3 and body["meta"]["has_more"] is True
    r2 = w.admin.get("/v1/delegations", params={"limit": 3, "offset": 3})
    body2 = r2.json()
    assert len(body2["data"]) == 1 and body2["meta"]["has_more"] is False
    assert [x["delegation_id"] for x in body["data"] + body2["data"]] == \
        [x["delegation_id"] for x in everything]
    r3 = w.admin.get("/v1/delegations", params={"limit": 2, "offset": 10})
    assert expect_ok(r3) == []


@pytest.mark.parametrize("params,field", [
    ({"status": "done"}, "status"),
    ({"status": "simulated"}, "status"),
    ({"from": "yesterday"}, "from"),
    ({"to": "2026-13-01T00:00:00Z"}, "to"),
    ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "from"),
    ({"agent_id": "bad id!"}, "agent_id"),
    ({"limit": "0"}, "limit"),
    ({"limit": "201"}, "limit"),
    ({"offset": "-1"}, "offset"),
])
def test_list_bad_query(server, callee, params, field):
    w = DelegationOrg(server, callee, policy=None)
    expect_error(w.admin.get("/v1/delegations", params=params), 400, "VALIDATION_ERROR",
                 field=field)


def test_other_orgs_delegation_reads_as_missing(server, callee):
    w = DelegationOrg(server, callee)
    cid = w.add_callee()
    mine = expect_ok(w.delegate(cid))["delegation_id"]
    other = Api(server, register_org_data(server)["api_key"])
    a = expect_error(other.get(f"/v1/delegations/{mine}"), 404, "NOT_FOUND")
    missing = "del_" + "0" * 24
    b = expect_error(other.get(f"/v1/delegations/{missing}"), 404, "NOT_FOUND")
    assert a["details"] == b["details"]
    assert a["message"].replace(mine, "X") == b["message"].replace(missing, "X")
    expect_error(other.get("/v1/delegations/not-an-id"), 404, "NOT_FOUND")
    assert expect_ok(other.get("/v1/delegations")) == []
    assert expect_ok(other.get("/v1/delegations", params={"agent_id": cid})) == []
