"""The monthly budget under concurrency (docs/delegations.md "Budget holds"):
the hold is one conditional update of the org's budget row, so however many
delegations race for the last dollars, exactly as many caps as fit are
dispatched and every other one is refused, on SQLite, on PostgreSQL, and
with two `nexra serve` processes on one PostgreSQL database."""
import os
import shutil
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from callee import DelegationOrg, ok, status
from helpers import Api, check_envelope, expect_error, expect_ok

WORKERS = 64


def money(x):
    return round(x, 6)


def budget_policy(monthly):
    return f'organization:\n  monthly_budget_usd: {monthly}\nrules:\n  - capability: "*"\n'


def fire(servers, w, bodies, workers=WORKERS, headers=None):
    """POSTs every body concurrently (request i through servers[i % n]);
    returns [(status, envelope)] in the order of bodies."""
    local = threading.local()

    def one(i):
        srv = servers[i % len(servers)]
        clients = getattr(local, "clients", None)
        if clients is None:
            clients = local.clients = {}
        c = clients.get(srv.url)
        if c is None:
            c = clients[srv.url] = Api(srv, w.live_key, agent_id=w.caller_id)
        r = c.post("/v1/delegate", bodies[i], timeout=60, headers=headers)
        return r.status_code, check_envelope(r)

    with ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(one, range(len(bodies))))


def settle_checks(w, results, callee, cids):
    """Common checks after a burst: every answer is final, nothing is left
    dispatched or held, the callee saw exactly the dispatched ones."""
    completed = [b["data"] for s, b in results if s == 200]
    refused = [b["error"] for s, b in results if s == 402]
    failed = [b["error"] for s, b in results if s == 502]
    assert len(completed) + len(refused) + len(failed) == len(results), \
        Counter(s for s, _ in results)
    for d in completed:
        assert d["status"] == "completed" and d["hold_usd"] == 0, d
        assert d["budget_remaining_usd"] is not None and d["budget_remaining_usd"] >= 0, d
    for e in refused:
        assert e["code"] == "BUDGET_EXCEEDED", e
        assert e["details"]["status"] == "blocked" and e["details"]["hold_usd"] == 0, e
        assert e["details"]["usage"]["cost_usd"] == 0, e
    for e in failed:
        assert e["code"] == "CALLEE_FAILED" and e["details"]["usage"]["cost_usd"] == 0, e
    ids = [d["delegation_id"] for d in completed] + \
        [e["details"]["delegation_id"] for e in refused + failed]
    assert len(set(ids)) == len(results), "every request is its own delegation"
    assert w.list_all(status="dispatched") == []
    stored = w.list_all()
    assert len(stored) == len(results)
    assert all(x["hold_usd"] == 0 for x in stored)
    assert Counter(x["status"] for x in stored) == Counter(
        {"completed": len(completed), "blocked": len(refused), "failed": len(failed)}) - Counter()
    # one audit entry each, numbered one after the other in the org
    events = sorted(x["audit_event"] for x in stored)
    assert events == list(range(events[0], events[0] + len(stored))), events[:10]
    seen = [r for cid in cids for r in callee.requests_for(cid)]
    assert len(seen) == len(completed) + len(failed)
    bad = [r for r in seen if not r.ok]
    assert not bad, bad[:3]
    assert {r.delegation_id for r in seen} == \
        {d["delegation_id"] for d in completed} | {e["details"]["delegation_id"] for e in failed}
    return completed, refused, failed


def probe_remaining(w, cid, remaining):
    """Exactly `remaining` is left: one micro-dollar more is refused, the
    exact amount (when positive) is accepted."""
    det = expect_error(w.delegate(cid, cap=money(remaining + 0.000001)), 402,
                       "BUDGET_EXCEEDED")["details"]
    assert det["status"] == "blocked"
    if remaining > 0:
        d = expect_ok(w.delegate(cid, cap=money(remaining)))
        assert money(d["budget_remaining_usd"]) == money(remaining - d["usage"]["cost_usd"])


def test_exactly_the_budget_under_500_concurrent_delegations(server, callee):
    """The issue's acceptance test: budget 1.00, cap 0.01, cost 0.01, 500
    concurrent requests: exactly 100 completed, 400 refused with 402."""
    w = DelegationOrg(server, callee, policy=budget_policy("1.00"))
    cid = w.add_callee(price=0.01, behaviour=ok(cost=0.01))
    results = fire([server], w, [w.body(cid, cap=0.01)] * 500)
    assert Counter(s for s, _ in results) == {200: 100, 402: 400}
    completed, refused, _ = settle_checks(w, results, callee, [cid])
    assert money(sum(d["usage"]["cost_usd"] for d in completed)) == 1.00
    assert min(d["budget_remaining_usd"] for d in completed) == 0
    probe_remaining(w, cid, 0)


def test_failures_release_their_holds_under_concurrency(server, callee):
    """Half the callees fail (their holds come back), the others charge 0.01
    of a 0.03 cap (the rest of the hold comes back): whatever the
    interleaving, what is left is exactly the budget minus the costs."""
    w = DelegationOrg(server, callee, policy=budget_policy("1.50"))
    good = w.add_callee(price=0.01, behaviour=ok(cost=0.01))
    bad = w.add_callee(price=0.01, behaviour=status(500))
    bodies = [w.body(good if i % 2 else bad, cap=0.03) for i in range(300)]
    results = fire([server], w, bodies)
    completed, refused, failed = settle_checks(w, results, callee, [good, bad])
    assert len(failed) > 0 and len(completed) > 0
    spent = money(sum(d["usage"]["cost_usd"] for d in completed))
    assert spent == money(0.01 * len(completed)) <= 1.50
    probe_remaining(w, good, money(1.50 - spent))


@pytest.mark.skipif("postgres" not in os.environ.get("NEXRA_TEST_BACKENDS", "sqlite,postgres"),
                    reason="NEXRA_TEST_BACKENDS excludes postgres")
def test_exactly_the_budget_across_two_processes_on_one_postgres(start_server, callee):
    s1 = start_server("--dev", backend="postgres")
    s2 = start_server("--dev", backend="postgres", db=s1.db, start=False)
    shutil.copyfile(s1.master_key_path, s2.master_key_path)
    s2.start()
    w = DelegationOrg(s1, callee, policy=budget_policy("1.00"))
    cid = w.add_callee(price=0.01, behaviour=ok(cost=0.01))
    results = fire([s1, s2], w, [w.body(cid, cap=0.01)] * 500)
    assert Counter(s for s, _ in results) == {200: 100, 402: 400}
    # both processes dispatched some
    per_server = Counter(i % 2 for i, (s, _) in enumerate(results) if s == 200)
    assert per_server[0] > 0 and per_server[1] > 0, per_server
    completed, _, _ = settle_checks(w, results, callee, [cid])
    assert money(sum(d["usage"]["cost_usd"] for d in completed)) == 1.00
    assert min(d["budget_remaining_usd"] for d in completed) == 0
    w2 = Api(s2, w.live_key)
    assert expect_ok(w2.get("/v1/delegations", params={"status": "dispatched"})) == []
    probe_remaining(w, cid, 0)
    # one Idempotency-Key raced through both processes: one delegation
    v = DelegationOrg(s1, callee)
    vid = v.add_callee(price=0.01, behaviour=ok(delay=0.3))
    key = "both-" + vid
    results = fire([s1, s2], v, [v.body(vid)] * 40, workers=20, headers={"Idempotency-Key": key})
    codes = Counter(s for s, _ in results)
    assert set(codes) <= {200, 409} and codes[200] >= 1, codes
    assert len({b["data"]["delegation_id"] for s, b in results if s == 200}) == 1
    assert callee.count(vid) == 1 and len(v.list_all()) == 1
    assert s2.stop() == 0 and s1.stop() == 0


def test_a_dispatched_delegation_holds_its_cap_until_it_settles(server, callee):
    w = DelegationOrg(server, callee, policy=budget_policy("1.00"))
    slow = w.add_callee(price=0.01, behaviour=ok(cost=0.10, delay=2))
    fast = w.add_callee(price=0.01, behaviour=ok(cost=0.01))
    got = {}
    t = threading.Thread(target=lambda: got.update(r=w.delegate(slow, cap=0.80)))
    t.start()
    try:
        callee.wait_for(1, slow)
        open_ = w.list_all(status="dispatched")
        assert len(open_) == 1 and open_[0]["hold_usd"] == 0.80, open_
        assert open_[0]["budget_remaining_usd"] is None and open_[0]["trust_delta"] is None
        assert open_[0]["settled_at"] is None and open_[0]["result"] is None
        expect_error(w.delegate(fast, cap=0.21), 402, "BUDGET_EXCEEDED")
        d = expect_ok(w.delegate(fast, cap=0.20))
        assert money(d["budget_remaining_usd"]) == money(1.00 - 0.80 - 0.01)
    finally:
        t.join(30)
    first = expect_ok(got["r"])
    assert money(first["budget_remaining_usd"]) == money(1.00 - 0.10 - 0.01)
    probe_remaining(w, fast, money(1.00 - 0.10 - 0.01))
