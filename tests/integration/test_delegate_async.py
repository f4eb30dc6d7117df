"""Delegations that do not end in the request that opened them, or that
must not happen twice or at all: asynchronous delegations and their signed
callbacks, Idempotency-Key, test keys (docs/delegations.md), and a slow
callee that must block nobody (1,000 delegations waiting on it at once)."""
import json
import re
import threading
import time

from callee import DelegationOrg, assert_callback, assert_webhook, ok, status
from helpers import (Api, expect_error, expect_ok, raw_connect, raw_read_response,
                     request_head, unique)

DEL_ID_RE = re.compile(r"^del_[0-9a-f]{24}$")


def budget_policy(monthly, rules='  - capability: "*"\n'):
    return f"organization:\n  monthly_budget_usd: {monthly}\nrules:\n{rules}"


def with_receiver(w, receiver):
    receiver.add_agent(w.caller_id, w.caller_secret, role="callback")
    return receiver.hook_url(w.caller_id)


# --------------------------------------------------------------------------
# Asynchronous delegations

def test_callback_url_answers_202_at_once_then_calls_back_signed(server, callee, receiver):
    w = DelegationOrg(server, callee, policy=budget_policy("3.00"))
    cb = with_receiver(w, receiver)
    cid = w.add_callee(behaviour=ok(result={"summary": "later"}, cost=0.02, tokens=7, delay=3))
    t0 = time.monotonic()
    d = expect_ok(w.delegate(cid, cap=0.25, callback_url=cb, timeout_ms=20000), 202)
    assert time.monotonic() - t0 < 2.5, "the 202 must not wait for the callee"
    assert DEL_ID_RE.match(d["delegation_id"])
    assert d["status"] == "dispatched" and d["callback_url"] == cb
    assert d["hold_usd"] == 0.25
    assert d["result"] is None and d["trust_delta"] is None
    assert d["budget_remaining_usd"] is None and d["settled_at"] is None
    assert w.get(d["delegation_id"])["status"] == "dispatched"
    assert [x["delegation_id"] for x in w.list_all(status="dispatched")] == [d["delegation_id"]]
    recs = receiver.wait_for(1, w.caller_id, timeout=20)
    assert len(recs) == 1
    rec = recs[0]
    assert_callback(rec, d["delegation_id"])
    final = w.get(d["delegation_id"])
    assert rec.json == final, "the callback carries the final delegation object"
    assert final["status"] == "completed" and final["result"] == {"summary": "later"}
    assert final["usage"]["cost_usd"] == 0.02 and final["usage"]["llm_tokens"] == 7
    assert final["budget_remaining_usd"] == 2.98 and final["hold_usd"] == 0
    assert final["callback_url"] == cb
    # the callee's webhook is the usual one
    assert_webhook(callee.wait_for(1, cid)[0], final, org_id=w.org_id,
                   task_input={"company_name": "Acme Corp"}, timeout_ms=20000)
    time.sleep(1.5)
    assert receiver.count(w.caller_id) == 1, "one callback per delegation"


def test_callback_signed_with_a_whsec_caller_secret(server, callee, receiver):
    import base64
    import secrets
    w = DelegationOrg(server, callee,
                      caller_secret="whsec_" + base64.b64encode(secrets.token_bytes(24)).decode())
    cb = with_receiver(w, receiver)
    cid = w.add_callee()
    d = expect_ok(w.delegate(cid, callback_url=cb), 202)
    rec = receiver.wait_for(1, w.caller_id, timeout=15)[0]
    assert_callback(rec, d["delegation_id"])
    assert rec.checks == {"nexra_signature": True, "standard_signature": True}


def test_callback_of_a_failed_delegation(server, callee, receiver):
    w = DelegationOrg(server, callee, policy=budget_policy("3.00"))
    cb = with_receiver(w, receiver)
    cid = w.add_callee(behaviour=status(500))
    d = expect_ok(w.delegate(cid, callback_url=cb), 202)
    rec = receiver.wait_for(1, w.caller_id, timeout=15)[0]
    assert_callback(rec, d["delegation_id"])
    assert rec.json["status"] == "failed" and rec.json["error"]["code"] == "CALLEE_FAILED"
    assert rec.json["usage"]["cost_usd"] == 0 and rec.json["budget_remaining_usd"] == 3.0
    assert rec.json == w.get(d["delegation_id"])


def test_callback_of_a_timed_out_delegation(server, callee, receiver):
    w = DelegationOrg(server, callee)
    cb = with_receiver(w, receiver)
    cid = w.add_callee(behaviour=ok(delay=5))
    d = expect_ok(w.delegate(cid, callback_url=cb, timeout_ms=1000), 202)
    rec = receiver.wait_for(1, w.caller_id, timeout=15)[0]
    assert_callback(rec, d["delegation_id"])
    assert rec.json["status"] == "timed_out"
    assert rec.json["error"]["code"] == "CALLEE_TIMEOUT"


def test_a_failing_callback_is_retried(server, callee, receiver):
    w = DelegationOrg(server, callee)
    cb = with_receiver(w, receiver)
    receiver.behave(w.caller_id, status(503), status(500), status(200, b"{}"))
    cid = w.add_callee()
    d = expect_ok(w.delegate(cid, callback_url=cb), 202)
    recs = receiver.wait_for(3, w.caller_id, timeout=20)
    for rec in recs:
        assert_callback(rec, d["delegation_id"])
    assert recs[0].json == recs[1].json == recs[2].json == w.get(d["delegation_id"])
    # backoff: 1 s, then 2 s
    gaps = [round(recs[1].received - recs[0].received, 3),
            round(recs[2].received - recs[1].received, 3)]
    assert gaps[0] >= 0.95 and gaps[1] >= 1.9, f"retries came {gaps} s apart, not 1 s then 2 s"
    time.sleep(2.5)
    assert receiver.count(w.caller_id) == 3, "no more attempts after a 2xx"


def test_a_callback_is_given_up_after_5_attempts(server, callee, receiver):
    w = DelegationOrg(server, callee)
    cb = with_receiver(w, receiver)
    receiver.behave(w.caller_id, status(500))
    cid = w.add_callee()
    d = expect_ok(w.delegate(cid, callback_url=cb), 202)
    recs = receiver.wait_for(5, w.caller_id, timeout=25)
    for rec in recs:
        assert_callback(rec, d["delegation_id"])
    gaps = [round(b.received - a.received, 2) for a, b in zip(recs, recs[1:])]
    for gap, want in zip(gaps, (1, 2, 4, 8)):
        assert want - 0.1 <= gap <= want + 1.5, gaps
    time.sleep(3)
    assert receiver.count(w.caller_id) == 5
    assert w.get(d["delegation_id"])["status"] == "completed", "the delegation stays durable"


def test_callback_url_must_follow_the_webhook_rules(server, callee):
    w = DelegationOrg(server, callee)
    cid = w.add_callee()
    for bad in ("not a url", "ftp://127.0.0.1/cb", "http://user:pw@127.0.0.1/cb", ""):
        expect_error(w.delegate(cid, callback_url=bad), 400, "VALIDATION_ERROR",
                     field="callback_url")
    assert w.list_all() == [] and callee.count(cid) == 0


# --------------------------------------------------------------------------
# Idempotency-Key

def test_same_key_same_body_answers_the_first_answer(server, callee):
    w = DelegationOrg(server, callee)
    cid = w.add_callee()
    key = {"Idempotency-Key": unique("idem")}
    r1 = w.delegate(cid, headers=key)
    d1 = expect_ok(r1)
    r2 = w.delegate(cid, headers=key)
    d2 = expect_ok(r2)
    assert d2 == d1
    assert r2.json()["meta"]["request_id"] != r1.json()["meta"]["request_id"]
    assert callee.count(cid) == 1 and len(w.list_all()) == 1
    # a different body with the same key
    err = expect_error(w.delegate(cid, cap=0.30, headers=key), 422, "IDEMPOTENCY_KEY_REUSED")
    assert err["message"]
    assert callee.count(cid) == 1 and len(w.list_all()) == 1
    # another key is another delegation
    d3 = expect_ok(w.delegate(cid, headers={"Idempotency-Key": unique("idem")}))
    assert d3["delegation_id"] != d1["delegation_id"] and callee.count(cid) == 2


def test_same_key_while_the_first_is_in_flight_is_409(server, callee):
    w = DelegationOrg(server, callee)
    cid = w.add_callee(behaviour=ok(delay=2.5))
    key = {"Idempotency-Key": unique("idem")}
    first = {}
    t = threading.Thread(target=lambda: first.update(r=w.delegate(cid, headers=key)))
    t.start()
    try:
        callee.wait_for(1, cid, timeout=10)
        expect_error(w.delegate(cid, headers=key), 409, "CONFLICT")
    finally:
        t.join(30)
    d1 = expect_ok(first["r"])
    d2 = expect_ok(w.delegate(cid, headers=key))
    assert d2 == d1 and callee.count(cid) == 1


def test_concurrent_requests_with_one_key_make_one_delegation(server, callee):
    from concurrent.futures import ThreadPoolExecutor
    w = DelegationOrg(server, callee)
    cid = w.add_callee(behaviour=ok(delay=0.5))
    key = {"Idempotency-Key": unique("idem")}
    local = threading.local()

    def one(_):
        if not hasattr(local, "api"):
            local.api = Api(server, w.live_key, agent_id=w.caller_id)
        return w.delegate(cid, api=local.api, headers=key)

    with ThreadPoolExecutor(max_workers=20) as ex:
        rs = list(ex.map(one, range(40)))
    codes = sorted({r.status_code for r in rs})
    assert set(codes) <= {200, 409}, [r.text[:200] for r in rs if r.status_code not in (200, 409)]
    assert 200 in codes
    ids = {r.json()["data"]["delegation_id"] for r in rs if r.status_code == 200}
    assert len(ids) == 1
    for r in rs:
        if r.status_code == 409:
            expect_error(r, 409, "CONFLICT")
    assert callee.count(cid) == 1 and len(w.list_all()) == 1
    assert expect_ok(w.delegate(cid, headers=key))["delegation_id"] in ids


def test_refusals_replay_too(server, callee):
    w = DelegationOrg(server, callee,
                      policy="rules:\n  - capability: research\n    max_budget_usd: 0.10\n")
    cid = w.add_callee()
    key = {"Idempotency-Key": unique("idem")}
    e1 = expect_error(w.delegate(cid, cap=0.20, headers=key), 403, "POLICY_BLOCKED")
    e2 = expect_error(w.delegate(cid, cap=0.20, headers=key), 403, "POLICY_BLOCKED")
    assert e1["details"] == e2["details"]
    assert len(w.list_all()) == 1
    f = w.add_callee(behaviour=status(500))
    key = {"Idempotency-Key": unique("idem")}
    e1 = expect_error(w.delegate(f, cap=0.05, headers=key), 502, "CALLEE_FAILED")
    e2 = expect_error(w.delegate(f, cap=0.05, headers=key), 502, "CALLEE_FAILED")
    assert e1["details"] == e2["details"] and callee.count(f) == 1


def test_requests_refused_before_recording_do_not_claim_the_key(server, callee):
    w = DelegationOrg(server, callee)
    cid = w.add_callee()
    key = {"Idempotency-Key": unique("idem")}
    expect_error(w.delegate("no-such-agent", headers=key), 404, "NOT_FOUND")
    expect_error(w.delegate(cid, input={"company_name": 1}, headers=key), 400,
                 "VALIDATION_ERROR")
    expect_ok(w.admin.delete(f"/v1/agents/{cid}"))
    expect_error(w.delegate(cid, headers=key), 409, "CONFLICT")
    expect_ok(w.admin.post(f"/v1/agents/{cid}/activate"))
    d = expect_ok(w.delegate(cid, headers=key))
    assert expect_ok(w.delegate(cid, headers=key)) == d and callee.count(cid) == 1


def test_keys_are_scoped_to_the_org_and_checked(server, callee):
    a = DelegationOrg(server, callee)
    b = DelegationOrg(server, callee)
    a.add_callee(price=0.01)
    b.add_callee(price=0.01)
    key = {"Idempotency-Key": "shared-key-" + unique()}
    da = expect_ok(a.delegate(capability="research", headers=key))
    db = expect_ok(b.delegate(capability="research", headers=key))
    assert da["delegation_id"] != db["delegation_id"]
    for bad in ("has space", "x" * 256, "tab\tkey", "caf\u00e9"):
        r = a.api.post("/v1/delegate", a.body(capability="research"),
                       headers={"Idempotency-Key": bad.encode("utf-8")})
        expect_error(r, 400, "VALIDATION_ERROR")
    expect_ok(a.delegate(capability="research", headers={"Idempotency-Key": "k" * 255}))


# --------------------------------------------------------------------------
# Test keys

TEST_KEY_POLICY = budget_policy(
    "0.50", "  - capability: analysis\n    max_budget_usd: 0.10\n"
            "  - capability: validation\n    hitl_required: true\n"
            "  - capability: research\n")


def test_test_key_simulates_an_allowed_delegation(server, callee):
    w = DelegationOrg(server, callee, policy=TEST_KEY_POLICY)
    cid = w.add_callee(price=0.05)
    r = w.delegate(cid, cap=0.25, api=w.test)
    d = expect_ok(r, 200)
    assert d["status"] == "simulated" and DEL_ID_RE.match(d["delegation_id"])
    assert d["callee_agent_id"] == cid and d["caller_agent_id"] == w.caller_id
    assert d["policy_result"]["decision"] == "allow"
    assert d["budget_cap_usd"] == 0.25
    expect_error(w.admin.get(f"/v1/delegations/{d['delegation_id']}"), 404, "NOT_FOUND")
    d = expect_ok(w.delegate(capability="research", cap=0.20, api=w.test), 200)
    assert d["status"] == "simulated" and d["callee_agent_id"] == cid
    # asynchronous with a test key: simulated as well, and no callback
    d = expect_ok(w.delegate(cid, cap=0.20, api=w.test,
                             callback_url=callee.hook_url(w.caller_id)), 200)
    assert d["status"] == "simulated"
    time.sleep(0.5)
    assert callee.count(w.caller_id) == 0
    assert callee.count(cid) == 0 and w.list_all() == []


def test_test_key_refusals_are_the_live_ones(server, callee):
    w = DelegationOrg(server, callee, policy=TEST_KEY_POLICY)
    cid = w.add_callee(price=0.05)
    blocked = w.add_callee(capability="analysis")
    gated = w.add_callee(capability="validation")
    pricey = w.add_callee(price=0.30)
    # the monthly budget is read: 0.51 does not fit in 0.50
    det = expect_error(w.delegate(cid, cap=0.51, api=w.test), 402, "BUDGET_EXCEEDED")["details"]
    assert det["status"] == "blocked"
    expect_error(w.delegate(pricey, cap=0.20, api=w.test), 402, "BUDGET_EXCEEDED")
    det = expect_error(w.delegate(blocked, cap=0.20, api=w.test), 403,
                       "POLICY_BLOCKED")["details"]
    assert det["failed_constraints"][0]["constraint"] == "budget"
    assert expect_ok(w.delegate(gated, cap=0.05, api=w.test), 202)["status"] == \
        "pending_approval"
    expect_error(w.delegate(cid, input={"company_name": 5}, api=w.test), 400, "VALIDATION_ERROR")
    expect_error(w.delegate("no-such-agent", api=w.test), 404, "NOT_FOUND")
    assert sum(callee.count(a) for a in (cid, blocked, gated, pricey)) == 0
    assert w.list_all() == []


def test_test_key_leaves_no_trace(server, callee):
    """Nothing stored, held, sent, charged or audited, whatever the answer."""
    w = DelegationOrg(server, callee, policy=TEST_KEY_POLICY)
    cid = w.add_callee(price=0.05)
    gated = w.add_callee(capability="validation")
    before = expect_ok(w.delegate(cid, cap=0.10))
    assert before["budget_remaining_usd"] == 0.49
    for _ in range(3):
        w.delegate(cid, cap=0.49, api=w.test)
        w.delegate(gated, cap=0.10, api=w.test)
        w.delegate(cid, cap=0.60, api=w.test)
    assert callee.count(cid) == 1 and callee.count(gated) == 0
    assert [x["delegation_id"] for x in w.list_all()] == [before["delegation_id"]]
    after = expect_ok(w.delegate(cid, cap=0.49))  # exactly what is left: nothing was held
    assert after["audit_event"] == before["audit_event"] + 1
    assert after["budget_remaining_usd"] == 0.48


# --------------------------------------------------------------------------
# A slow callee blocks nobody

SLOW_N = 1000
SLOW_S = 5


def test_a_thousand_delegations_waiting_on_a_slow_callee_block_nobody(start_server, backend,
                                                                      callee):
    srv = start_server("--dev", "--rate-limits", "starter=100,growth=1000000", backend=backend)
    w = DelegationOrg(srv, callee)
    slow = w.add_callee(price=0.01, behaviour=ok(delay=SLOW_S))
    fast = w.add_callee(price=0.01)
    body = json.dumps(w.body(slow, cap=0.01, timeout_ms=120000)).encode()
    head = request_head("POST", "/v1/delegate", {
        "Authorization": f"Bearer {w.live_key}", "X-Agent-ID": w.caller_id,
        "Content-Type": "application/json", "Content-Length": str(len(body)),
        "Connection": "close"})
    socks = []
    t0 = time.monotonic()
    try:
        for _ in range(SLOW_N):
            s = raw_connect(srv, timeout=30)
            s.sendall(head + body)
            socks.append(s)
        # the callee has them all at once
        callee.wait_for(SLOW_N, slow, timeout=SLOW_S * 3)
        assert all(r.ok for r in callee.requests_for(slow))
        # meanwhile everything else answers promptly
        probe = Api(srv, w.live_key)
        for _ in range(5):
            for path in ("/healthz", "/v1/agents"):
                t = time.monotonic()
                r = probe.get(path, timeout=10)
                took = time.monotonic() - t
                assert r.status_code == 200, r.text[:300]
                assert took < 2.0, f"GET {path} took {took:.2f}s with {SLOW_N} delegations waiting"
        t = time.monotonic()
        d = expect_ok(w.delegate(fast, cap=0.01, timeout_ms=10000))
        assert d["status"] == "completed"
        assert time.monotonic() - t < 2.0, "a fast callee waited behind the slow one"
        # then all of them complete
        statuses = []
        for s in socks:
            resp = raw_read_response(s, timeout=90)
            statuses.append((resp.status, resp.json()["data"]["status"]
                             if resp.status == 200 else resp.body[:200]))
        took = time.monotonic() - t0
    finally:
        for s in socks:
            s.close()
    assert statuses == [(200, "completed")] * SLOW_N, \
        [x for x in statuses if x != (200, "completed")][:5]
    # 1,000 x 5 s one after another would take over an hour
    assert took < 60, f"{SLOW_N} delegations on a {SLOW_S}s callee took {took:.1f}s"
    assert len(w.list_all(status="completed")) == SLOW_N + 1
    assert w.list_all(status="dispatched") == []
    assert srv.stop() == 0
