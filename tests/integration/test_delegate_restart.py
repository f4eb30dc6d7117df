"""Delegations across a server's end (docs/delegations.md "Timeouts,
failures and restarts"): a delegation whose process was killed is settled
timed_out by the sweeper of the next one, its hold released; on SIGTERM the
delegations still waiting are settled failed and their requests answered."""
import os
import shutil
import signal
import threading
import time

import pytest

from callee import DelegationOrg, hang, ok
from helpers import Api, expect_error, expect_ok


def budget_policy(monthly):
    return f'organization:\n  monthly_budget_usd: {monthly}\nrules:\n  - capability: "*"\n'


def test_orphans_are_settled_timed_out_after_a_crash(start_server, backend, callee):
    srv = start_server("--dev", backend=backend)
    w = DelegationOrg(srv, callee, policy=budget_policy("1.00"))
    cid = w.add_callee(behaviour=hang())
    d = expect_ok(w.delegate(cid, cap=0.40, timeout_ms=1000,
                             callback_url=callee.hook_url(w.caller_id)), 202)
    did = d["delegation_id"]
    callee.wait_for(1, cid)
    srv.kill()  # SIGKILL: nobody records the outcome
    srv2 = start_server.restart_of(srv)
    w.admin = Api(srv2, w.live_key)
    w.api = Api(srv2, w.live_key, agent_id=w.caller_id)
    first = w.get(did)
    if time.time() < first["expires_at"] + 9:
        assert first["status"] == "dispatched" and first["hold_usd"] == 0.40, first
        expect_error(w.delegate(cid, cap=0.61), 402, "BUDGET_EXCEEDED")  # still held
    # the sweeper: every 5 s, for delegations dispatched 10 s past expires_at
    deadline = first["expires_at"] + 10 + 5 + 10
    while True:
        g = w.get(did)
        if g["status"] != "dispatched" or time.time() > deadline:
            break
        time.sleep(0.5)
    assert g["status"] == "timed_out", g
    assert g["error"]["code"] == "CALLEE_TIMEOUT", g
    assert g["usage"]["cost_usd"] == 0 and g["hold_usd"] == 0, g
    assert g["budget_remaining_usd"] == 1.0, g
    assert isinstance(g["audit_event"], int), g
    assert abs(g["trust_delta"]["after"] - g["trust_delta"]["before"]) < 1e-6, \
        "the callee's trust is left alone for an orphan"
    assert w.list_all(status="dispatched") == []
    callee.behave(cid, ok(cost=0.01))
    assert expect_ok(w.delegate(cid, cap=1.00))["budget_remaining_usd"] == 0.99
    assert srv2.stop() == 0


def test_sigterm_answers_waiting_delegations_failed(start_server, backend, callee):
    srv = start_server("--dev", "--shutdown-grace", "1", backend=backend)
    w = DelegationOrg(srv, callee, policy=budget_policy("1.00"))
    cid = w.add_callee(behaviour=hang())
    got = {}

    def call():
        try:
            got["r"] = w.delegate(cid, cap=0.40, timeout_ms=60000)
        except Exception as e:  # noqa: BLE001
            got["e"] = e

    t = threading.Thread(target=call)
    t.start()
    callee.wait_for(1, cid)
    t0 = time.monotonic()
    srv.send_signal(signal.SIGTERM)
    rc = srv.wait(15)
    t.join(15)
    assert rc == 0, f"exit status {rc}\n{srv.tail()}"
    assert time.monotonic() - t0 < 10
    assert "e" not in got, f"the waiting request was not answered: {got.get('e')!r}"
    err = expect_error(got["r"], 502, "CALLEE_FAILED")
    det = err["details"]
    assert det["status"] == "failed" and det["usage"]["cost_usd"] == 0 and det["hold_usd"] == 0
    srv2 = start_server.restart_of(srv)
    w.admin = Api(srv2, w.live_key)
    g = w.get(det["delegation_id"])
    assert g["status"] == "failed" and g["hold_usd"] == 0 and g["budget_remaining_usd"] == 1.0
    assert srv2.stop() == 0


@pytest.mark.skipif("postgres" not in os.environ.get("NEXRA_TEST_BACKENDS", "sqlite,postgres"),
                    reason="NEXRA_TEST_BACKENDS excludes postgres")
def test_an_orphan_is_settled_once_by_one_of_several_processes_on_postgres(start_server, callee):
    s1 = start_server("--dev", backend="postgres")
    others = [start_server("--dev", backend="postgres", db=s1.db, start=False) for _ in range(2)]
    for s in others:
        shutil.copyfile(s1.master_key_path, s.master_key_path)
        s.start()
    w = DelegationOrg(s1, callee, policy=budget_policy("1.00"))
    cid = w.add_callee(behaviour=hang())
    ids = [expect_ok(w.delegate(cid, cap=0.10, timeout_ms=1000,
                                callback_url=callee.hook_url(w.caller_id)), 202)["delegation_id"]
           for _ in range(5)]
    callee.wait_for(5, cid)
    s1.kill()
    w.admin = Api(others[0], w.live_key)
    w.api = Api(others[1], w.live_key, agent_id=w.caller_id)
    deadline = time.time() + 1 + 10 + 5 + 15
    while time.time() < deadline:
        if not w.list_all(status="dispatched"):
            break
        time.sleep(0.5)
    got = [w.get(i) for i in ids]
    assert [g["status"] for g in got] == ["timed_out"] * 5, got
    events = sorted(g["audit_event"] for g in got)
    assert len(set(events)) == 5
    # settled once each: the budget has exactly 1.00 left, and the next
    # audit entry follows the last one
    callee.behave(cid, ok(cost=0.01))
    d = expect_ok(w.delegate(cid, cap=1.00))
    assert d["budget_remaining_usd"] == 0.99
    assert d["audit_event"] == max(events) + 1
    assert expect_error(w.delegate(cid, cap=0.990001), 402, "BUDGET_EXCEEDED")
    for s in others:
        assert s.stop() == 0
