"""Human-in-the-loop decisions (docs/approvals.md): a delegation the policy
sends to approval waits as pending_approval with its hold; an approval
dispatches it once and it settles like any other, a rejection ends it
blocked and unbilled, a deadline ends it expired (also across a restart),
and only a live key of its org can decide, once."""
import json
import threading
import time

from callee import DelegationOrg, assert_callback, ok
from helpers import Api, expect_error, expect_ok, register_org_data


def hitl_policy(monthly="1.00", timeout=None):
    gate = "  - capability: analysis\n    hitl_required: true\n"
    if timeout is not None:
        gate += f"    hitl_timeout_seconds: {timeout}\n"
    return (f"organization:\n  monthly_budget_usd: {monthly}\nrules:\n{gate}"
            "  - capability: research\n")


def pending(w, gated, cap=0.60, **extra):
    d = expect_ok(w.delegate(gated, cap=cap, **extra), 202)
    assert d["status"] == "pending_approval", d
    return d


def key_name(w):
    keys = expect_ok(w.admin.get("/v1/keys"))
    return next(k["name"] for k in keys if w.live_key.startswith(k["prefix"]))


def test_pending_approvals_list_what_an_approver_needs(server, callee):
    w = DelegationOrg(server, callee, policy=hitl_policy(timeout=3600))
    gated = w.add_callee(capability="analysis")
    t0 = time.time()
    d = pending(w, gated, input={"company_name": "Acme Corp", "tags": ["q3"]})
    (item,) = w.list_all(status="pending_approval")
    assert item == w.get(d["delegation_id"])
    assert (item["caller_agent_id"], item["callee_agent_id"], item["capability"]) == \
        (w.caller_id, gated, "analysis")
    assert item["task"]["input"] == {"company_name": "Acme Corp", "tags": ["q3"]}
    assert item["budget_cap_usd"] == 0.60 and item["hold_usd"] == 0.60
    pr = item["policy_result"]
    assert pr["decision"] == "pending_approval"
    assert pr["rule_capability"] == "analysis" and pr["hitl_timeout_seconds"] == 3600
    assert pr["policy_ref"]
    ap = item["approval"]
    assert ap["state"] == "pending" and ap["decided_by"] is None and ap["decided_at"] is None
    assert abs(ap["expires_at"] - (t0 + 3600)) <= 3 and item["expires_at"] == ap["expires_at"]
    assert 3590 <= ap["expires_in_seconds"] <= 3600
    assert item["dispatched_at"] is None, "nothing was sent yet"
    assert callee.count(gated) == 0


def test_approve_dispatches_once_settles_and_records_who(server, callee):
    w = DelegationOrg(server, callee, policy=hitl_policy())
    gated = w.add_callee(capability="analysis")
    callee.behave(gated, ok(result={"summary": "fine"}, cost=0.04))
    d = pending(w, gated)
    assert d["approval"]["expires_at"] is None and d["expires_at"] is None  # waits for ever
    a = expect_ok(w.admin.post(f"/v1/delegations/{d['delegation_id']}/approve",
                               {"approver": "dana@acme.test"}), 200)
    assert a["status"] == "completed" and a["result"] == {"summary": "fine"}, a
    assert a["usage"]["cost_usd"] == 0.04 and a["hold_usd"] == 0
    assert a["budget_remaining_usd"] == 0.96
    assert isinstance(a["audit_event"], int) and a["audit_event"] >= 1
    ap = a["approval"]
    assert ap["state"] == "approved" and ap["approver"] == "dana@acme.test"
    assert ap["decided_by"]["key_name"] == key_name(w) and ap["decided_by"]["key_id"]
    assert ap["decided_at"] and a["dispatched_at"]
    assert callee.count(gated) == 1
    # billed once: one outbox event, for the charged amount
    events = [e for e in expect_ok(w.admin.get("/v1/billing/events"))
              if e["delegation_id"] == d["delegation_id"]]
    assert len(events) == 1, events
    (rec,) = callee.requests_for(gated)
    assert rec.ok, rec.errors  # signed and with a valid token, as any webhook
    assert w.get(d["delegation_id"]) == a
    # once only
    for verb in ("approve", "reject"):
        err = expect_error(w.admin.post(f"/v1/delegations/{d['delegation_id']}/{verb}"),
                           409, "CONFLICT")
        assert err["details"]["status"] == "completed"
    time.sleep(0.3)
    assert callee.count(gated) == 1
    assert w.list_all(status="pending_approval") == []


def test_reject_ends_it_blocked_unbilled_with_the_hold_released(server, callee):
    w = DelegationOrg(server, callee, policy=hitl_policy())
    gated = w.add_callee(capability="analysis")
    free = w.add_callee(capability="research", behaviour=ok(cost=0.01))
    d = pending(w, gated, cap=0.60)
    expect_error(w.delegate(free, cap=0.50), 402, "BUDGET_EXCEEDED")  # 0.60 held
    r = expect_ok(w.admin.post(f"/v1/delegations/{d['delegation_id']}/reject",
                               {"reason": "not this quarter"}), 200)
    assert r["status"] == "blocked" and r["hold_usd"] == 0, r
    assert r["usage"]["cost_usd"] == 0
    assert r["error"]["code"] == "APPROVAL_REJECTED"
    assert "not this quarter" in r["error"]["message"]
    assert r["approval"]["state"] == "rejected" and r["approval"]["reason"] == "not this quarter"
    assert r["approval"]["decided_by"]["key_name"] == key_name(w)
    assert r["approval"]["approver"] is None
    assert isinstance(r["audit_event"], int)
    assert r["budget_remaining_usd"] == 1.0
    assert [e for e in expect_ok(w.admin.get("/v1/billing/events"))
            if e["delegation_id"] == d["delegation_id"]] == [], "a rejection is not billed"
    expect_ok(w.delegate(free, cap=1.00))  # the whole budget is free again
    for verb in ("approve", "reject"):
        expect_error(w.admin.post(f"/v1/delegations/{d['delegation_id']}/{verb}"),
                     409, "CONFLICT")
    assert callee.count(gated) == 0
    assert w.get(d["delegation_id"]) == r


def test_who_may_decide(server, callee):
    w = DelegationOrg(server, callee, policy=hitl_policy())
    gated = w.add_callee(capability="analysis")
    d = pending(w, gated)
    path = f"/v1/delegations/{d['delegation_id']}"
    other = Api(server, register_org_data(server)["api_key"])
    for verb in ("approve", "reject"):
        # another org: as if it did not exist
        e1 = expect_error(other.post(f"{path}/{verb}"), 404, "NOT_FOUND")
        e2 = expect_error(other.post(f"/v1/delegations/del_000000000000000000000000/{verb}"),
                          404, "NOT_FOUND")
        assert e1["message"].replace(d["delegation_id"], "X") == \
            e2["message"].replace("del_000000000000000000000000", "X")
        # the org's own test key
        expect_error(Api(server, w.test_key).post(f"{path}/{verb}"), 403, "FORBIDDEN")
        expect_error(w.admin.post(f"/v1/delegations/nope/{verb}"), 404, "NOT_FOUND")
    # bad bodies change nothing
    for body in ({"approver": "x" * 201}, {"reason": ""}, {"approver": 3}, {"why": "x"}, [1]):
        expect_error(w.admin.post(f"{path}/approve", body), 400, "VALIDATION_ERROR")
    expect_error(w.admin.post(f"{path}/reject", {"reason": "r" * 1001}), 400,
                 "VALIDATION_ERROR")
    assert w.get(d["delegation_id"]) == d
    assert callee.count(gated) == 0


def test_concurrent_approvals_dispatch_once(server, callee):
    w = DelegationOrg(server, callee, policy=hitl_policy())
    gated = w.add_callee(capability="analysis", behaviour=ok(cost=0.02))
    d = pending(w, gated)
    codes = []

    def go(verb):
        r = w.admin.post(f"/v1/delegations/{d['delegation_id']}/{verb}")
        codes.append((verb, r.status_code))

    ts = [threading.Thread(target=go, args=("approve" if i % 3 else "reject",))
          for i in range(12)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wins = [c for c in codes if c[1] == 200]
    assert len(wins) == 1 and all(c[1] == 409 for c in codes if c not in wins), codes
    g = w.get(d["delegation_id"])
    if wins[0][0] == "approve":
        assert g["status"] == "completed" and callee.count(gated) == 1
        assert g["budget_remaining_usd"] == 0.98
    else:
        assert g["status"] == "blocked" and callee.count(gated) == 0
        assert g["budget_remaining_usd"] == 1.0


def test_decisions_reach_the_callback(server, callee):
    w = DelegationOrg(server, callee, policy=hitl_policy())
    gated = w.add_callee(capability="analysis", behaviour=ok(cost=0.03))
    hook = callee.hook_url(w.caller_id)
    d = pending(w, gated, callback_url=hook)
    a = expect_ok(w.admin.post(f"/v1/delegations/{d['delegation_id']}/approve"), 202)
    assert a["status"] == "dispatched" and a["approval"]["state"] == "approved"
    (cb,) = callee.wait_for(1, w.caller_id)
    assert_callback(cb, d["delegation_id"])
    assert cb.json["status"] == "completed" and cb.json["approval"]["state"] == "approved"
    d2 = pending(w, gated, cap=0.30, callback_url=hook)
    expect_ok(w.admin.post(f"/v1/delegations/{d2['delegation_id']}/reject"), 200)
    cbs = callee.wait_for(2, w.caller_id)
    assert_callback(cbs[1], d2["delegation_id"])
    assert cbs[1].json["status"] == "blocked"
    assert cbs[1].json["error"]["code"] == "APPROVAL_REJECTED"


def wait_status(w, did, status, timeout):
    end = time.time() + timeout
    while True:
        g = w.get(did)
        if g["status"] == status or time.time() > end:
            return g
        time.sleep(0.25)


def test_expiry_releases_the_hold_even_across_a_restart(start_server, backend, callee):
    srv = start_server("--dev", backend=backend)
    w = DelegationOrg(srv, callee, policy=hitl_policy(timeout=2))
    gated = w.add_callee(capability="analysis")
    hook = callee.hook_url(w.caller_id)
    d = pending(w, gated, cap=0.70, callback_url=hook)
    assert srv.stop() == 0
    time.sleep(2.5)  # the deadline passes while no server runs
    srv2 = start_server.restart_of(srv)
    w.admin = Api(srv2, w.live_key)
    w.api = Api(srv2, w.live_key, agent_id=w.caller_id)
    # past the deadline nobody can decide, even before the sweeper ran
    expect_error(w.admin.post(f"/v1/delegations/{d['delegation_id']}/approve"), 409, "CONFLICT")
    g = wait_status(w, d["delegation_id"], "expired", 15)  # the sweeper runs every 5 s
    assert g["status"] == "expired", g
    assert g["error"]["code"] == "APPROVAL_EXPIRED" and g["hold_usd"] == 0
    assert g["usage"]["cost_usd"] == 0 and g["budget_remaining_usd"] == 1.0
    assert g["approval"]["state"] == "expired" and g["approval"]["decided_by"] is None
    assert isinstance(g["audit_event"], int)
    (cb,) = callee.wait_for(1, w.caller_id)
    assert_callback(cb, d["delegation_id"])
    assert cb.json["status"] == "expired"
    expect_error(w.admin.post(f"/v1/delegations/{d['delegation_id']}/reject"), 409, "CONFLICT")
    assert callee.count(gated) == 0
    assert srv2.stop() == 0


def test_cli_approvals(server, callee, nexra_bin):
    from test_cli import Cli

    w = DelegationOrg(server, callee, policy=hitl_policy())
    gated = w.add_callee(capability="analysis", behaviour=ok(cost=0.05))
    d1 = pending(w, gated, cap=0.20)
    d2 = pending(w, gated, cap=0.20)
    cli = Cli(nexra_bin, server.url, key=w.live_key)
    listed = cli.ok("approvals", "list")
    assert {x["delegation_id"] for x in listed} == {d1["delegation_id"], d2["delegation_id"]}
    assert cli.ok("approvals", "show", d1["delegation_id"])["status"] == "pending_approval"
    a = cli.ok("approvals", "approve", d1["delegation_id"], "--approver", "ops@acme.test")
    assert a["status"] == "completed" and a["approval"]["approver"] == "ops@acme.test"
    r = cli.ok("approvals", "reject", d2["delegation_id"], "--reason", "duplicate")
    assert r["status"] == "blocked" and r["approval"]["reason"] == "duplicate"
    assert cli.ok("approvals", "list") == []
    rc, out, err = cli.run("approvals", "approve", d2["delegation_id"])
    assert rc != 0 and "CONFLICT" in out + err
    rc, _, err = cli.run("approvals", "approve")
    assert rc != 0 and "approvals approve" in err
    assert callee.count(gated) == 1


def test_the_decision_is_in_the_verifiable_audit_entry(server, callee, nexra_bin, tmp_path):
    import os
    import subprocess

    from test_audit import entries_of, export, public_key, py_verify

    w = DelegationOrg(server, callee, policy=hitl_policy())
    gated = w.add_callee(capability="analysis", behaviour=ok(cost=0.02))
    a = pending(w, gated, cap=0.20)
    r = pending(w, gated, cap=0.20)
    expect_ok(w.admin.post(f"/v1/delegations/{a['delegation_id']}/approve",
                           {"approver": "Zoë \"ops\" <z@acme.test>"}), 200)
    expect_ok(w.admin.post(f"/v1/delegations/{r['delegation_id']}/reject",
                           {"reason": "line one\nline two, with a comma"}), 200)
    name = key_name(w)
    (ea,) = expect_ok(w.admin.get("/v1/audit/log", params={"delegation_id": a["delegation_id"]}))
    (er,) = expect_ok(w.admin.get("/v1/audit/log", params={"delegation_id": r["delegation_id"]}))
    assert ea["approval"]["decision"] == "approved" and ea["decision"] == "ALLOW"
    assert ea["approval"]["approver"] == "Zoë \"ops\" <z@acme.test>"
    assert ea["approval"]["decided_by"]["key_name"] == name
    assert er["approval"]["decision"] == "rejected" and er["decision"] == "BLOCK"
    assert er["approval"]["reason"] == "line one\nline two, with a comma"
    # the exports carry it and verify, JSONL and CSV, inside and outside Nexra
    pk, _ = public_key(w.admin)
    body = export(w.admin)
    objs = [json.loads(e) for e in entries_of(body)]
    assert sorted(o["approval"]["decision"] for o in objs) == ["approved", "rejected"]
    f = tmp_path / "log.jsonl"
    f.write_bytes(body)
    assert py_verify(str(f), pk) == (2, 2)
    c = tmp_path / "log.csv"
    c.write_bytes(export(w.admin, "csv"))
    for path in (f, c):
        p = subprocess.run([nexra_bin, "audit", "verify", str(path), "--public-key", pk],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr
    # a changed decision is caught
    bad = c.read_bytes().replace(b"line two", b"line 2")
    assert bad != c.read_bytes()
    c.write_bytes(bad)
    p = subprocess.run([nexra_bin, "audit", "verify", str(c), "--public-key", pk],
                       capture_output=True, text=True)
    assert p.returncode != 0, p.stdout
    assert os.path.exists(c)
