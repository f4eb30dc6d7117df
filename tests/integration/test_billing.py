"""Billing delivery (docs/billing.md): the org's Stripe connection, and the
dispatcher that sends each completed delegation's cost to Stripe's meter
events API exactly once in effect, against a fake Stripe (fake_stripe.py)
that checks auth, form encoding, identifiers and idempotency keys."""
import os
import secrets
import sqlite3
import time

import pytest

from callee import DelegationOrg, ok, status
from fake_stripe import FakeStripe, answer
from helpers import Api, expect_error, expect_ok

LEASE_S = 20  # BILLING_LEASE_S


@pytest.fixture
def fake():
    f = FakeStripe()
    try:
        yield f
    finally:
        f.close()


def stripe_server(start_server, fake, backend, *extra, **kw):
    return start_server("--dev", "--stripe-api-base", fake.url, *extra, backend=backend, **kw)


def connect(w, fake, api=None, mode="live"):
    secret = f"sk_{mode}_" + secrets.token_hex(16)
    customer = "cus_" + secrets.token_hex(7)
    fake.add_key(secret, customer)
    d = expect_ok((api or w.admin).put("/v1/billing/stripe", {
        "secret_key": secret, "customer_id": customer, "meter_event_name": "nexra_usage"}))
    assert d["connected"] is True and d["mode"] == mode, d
    return secret, customer


def events(w, status=None, api=None):
    out, offset = [], 0
    while True:
        params = {"limit": 200, "offset": offset}
        if status:
            params["status"] = status
        r = (api or w.admin).get("/v1/billing/events", params=params)
        out += expect_ok(r)
        if not r.json()["meta"].get("has_more"):
            return out
        offset += 200


def wait_for(pred, timeout=30.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def completed(w, n, cid, cost=0.0123):
    ids = []
    for _ in range(n):
        d = expect_ok(w.delegate(cid, cap=0.05))
        assert d["status"] == "completed" and d["usage"]["cost_usd"] == cost, d
        ids.append(d["delegation_id"])
    return ids


# --------------------------------------------------------------------------
# settings

def test_stripe_settings_are_sealed_checked_and_per_mode(start_server, backend, callee, fake):
    srv = stripe_server(start_server, fake, backend)
    w = DelegationOrg(srv, callee)
    admin, test = w.admin, Api(srv, w.test_key)
    empty = expect_ok(admin.get("/v1/billing/stripe"))
    assert empty == {"mode": "live", "connected": False, "secret_key_set": False,
                     "customer_id": None, "meter_event_name": None, "updated_at": None}
    good = {"secret_key": "sk_live_" + "a" * 24, "customer_id": "cus_ABC123",
            "meter_event_name": "nexra_usage"}
    for field, value in [("secret_key", "sk_test_" + "a" * 24), ("secret_key", "pk_live_abc"),
                         ("secret_key", "sk_live_short"), ("secret_key", 5),
                         ("customer_id", "acct_123"), ("customer_id", "cus_a b"),
                         ("meter_event_name", ""), ("meter_event_name", "x" * 101),
                         ("meter_event_name", "bad name")]:
        expect_error(admin.put("/v1/billing/stripe", dict(good, **{field: value})), 400,
                     "VALIDATION_ERROR", field)
    expect_error(admin.put("/v1/billing/stripe", dict(good, extra=1)), 400, "VALIDATION_ERROR")
    for missing in good:
        body = dict(good)
        del body[missing]
        expect_error(admin.put("/v1/billing/stripe", body), 400, "VALIDATION_ERROR", missing)
    # a test Nexra key needs a Stripe test key, and sets the test connection only
    err = expect_error(test.put("/v1/billing/stripe", good), 400, "VALIDATION_ERROR",
                       "secret_key")
    assert "sk_test_" in err["message"], err
    assert expect_ok(admin.get("/v1/billing/stripe"))["connected"] is False  # nothing changed
    tsecret = "sk_test_" + secrets.token_hex(12)
    d = expect_ok(test.put("/v1/billing/stripe", dict(good, secret_key=tsecret)))
    assert d["mode"] == "test" and d["connected"] and d["customer_id"] == "cus_ABC123"
    assert expect_ok(admin.get("/v1/billing/stripe"))["connected"] is False
    secret = "sk_live_" + secrets.token_hex(16)
    r = admin.put("/v1/billing/stripe", dict(good, secret_key=secret))
    d = expect_ok(r)
    assert d["connected"] and d["secret_key_set"] and d["mode"] == "live"
    assert d["customer_id"] == "cus_ABC123" and d["meter_event_name"] == "nexra_usage"
    assert secret not in r.text
    g = admin.get("/v1/billing/stripe")
    assert expect_ok(g) == d and secret not in g.text
    if backend == "sqlite":  # sealed at rest
        raw = open(srv.sqlite_path, "rb").read() + open(srv.sqlite_path + "-wal", "rb").read() \
            if os.path.exists(srv.sqlite_path + "-wal") else open(srv.sqlite_path, "rb").read()
        assert secret.encode() not in raw and tsecret.encode() not in raw
        rows = sqlite3.connect(srv.sqlite_path).execute(
            "SELECT mode, length(secret_sealed) FROM billing_settings WHERE org_id = ?",
            (w.org_id,)).fetchall()
        assert sorted(m for m, _ in rows) == ["live", "test"]
    else:
        dump = srv.pg.psql(srv.pg_dbname, "SELECT encode(secret_sealed, 'escape') FROM billing_settings")
        assert secret not in dump
    # another org sees nothing of it
    w2 = DelegationOrg(srv, callee)
    assert expect_ok(w2.admin.get("/v1/billing/stripe"))["connected"] is False
    # DELETE disconnects the key's mode only; a second DELETE is fine
    assert expect_ok(admin.delete("/v1/billing/stripe"))["connected"] is False
    assert expect_ok(admin.get("/v1/billing/stripe"))["connected"] is False
    assert expect_ok(test.get("/v1/billing/stripe"))["connected"] is True
    assert expect_ok(admin.delete("/v1/billing/stripe"))["connected"] is False
    expect_error(admin.get("/v1/billing/events", params={"status": "lost"}), 400,
                 "VALIDATION_ERROR", "status")


# --------------------------------------------------------------------------
# delivery

def test_every_completed_delegation_reaches_stripe_once_through_errors(start_server, backend,
                                                                      callee, fake):
    """429 with Retry-After, 500 and a dropped answer are retried; every
    event has exactly one effect at Stripe, with the documented form."""
    srv = stripe_server(start_server, fake, backend)
    w = DelegationOrg(srv, callee)
    cid = w.add_callee(price=0.01, behaviour=ok(cost=0.0123))
    bad = w.add_callee(price=0.01, behaviour=status(500))
    fake.push(answer(429, retry_after=2), answer(500), answer(503), answer(429, retry_after=1))
    secret, customer = connect(w, fake)
    ids = completed(w, 12, cid)
    expect_error(w.delegate(bad, cap=0.05), 502, "CALLEE_FAILED")  # failed: never billed
    expect_error(w.delegate(cid, cap=0.001), 402, "BUDGET_EXCEEDED")  # blocked: never billed
    assert fake.wait_effects(ids, 30), (len(fake.effect_ids()), fake.errors)
    assert fake.errors == []
    assert fake.effect_ids() == set(ids)
    by_id = {d["delegation_id"]: d for d in w.list_all()}
    for i in ids:
        form = fake.effects[i]
        assert form["event_name"] == "nexra_usage"
        assert form["payload[stripe_customer_id]"] == customer
        assert form["payload[value]"] == "12300"  # micro-USD
        settled = by_id[i]["settled_at"]
        assert abs(int(form["timestamp"]) - time.mktime(time.strptime(
            settled, "%Y-%m-%dT%H:%M:%SZ")) + time.timezone) <= 1
    retried = [h for h in fake.hits if h.kind == "scheduled"]
    assert [h.status for h in retried] == [429, 500, 503, 429]
    for h in fake.hits:
        assert h.headers["Authorization"] == f"Bearer {secret}"
    sent = wait_for(lambda: len(events(w, "sent")) == 12 and events(w, "sent"), 10)
    assert {e["delegation_id"] for e in sent} == set(ids)
    for e in sent:
        assert e["billing_id"] == "bill_" + e["delegation_id"]
        assert e["status"] == "sent" and e["amount_usd"] == 0.0123 and e["value"] == 12300
        assert e["currency"] == "usd" and e["attempts"] >= 1 and e["sent_at"]
        assert e["caller_agent_id"] == w.caller_id and e["callee_agent_id"] == cid
    tried = [e for e in sent if e["attempts"] > 1]
    assert tried and all(e["last_error"] for e in tried), sent
    assert events(w, "pending") == [] and events(w, "dead") == []
    metrics = srv_metrics(srv)
    assert metrics['nexra_billing_dispatch_total{outcome="sent"}'] == 12
    assert metrics['nexra_billing_dispatch_total{outcome="retry"}'] >= 4
    assert metrics["nexra_billing_request_duration_seconds_count"] >= 16


def srv_metrics(srv):
    import requests
    out = {}
    for line in requests.get(srv.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("nexra_billing"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def test_events_wait_for_a_connection_and_test_keys_send_nothing(start_server, backend, callee,
                                                                fake):
    srv = stripe_server(start_server, fake, backend)
    w = DelegationOrg(srv, callee)
    cid = w.add_callee(price=0.01, behaviour=ok(cost=0.0123))
    ids = completed(w, 3, cid)
    # test keys: simulated, nothing stored, nothing billed, even when connected
    connect(w, fake, api=Api(srv, w.test_key), mode="test")
    for _ in range(3):
        d = expect_ok(w.delegate(cid, cap=0.05, api=w.test))
        assert d["status"] == "simulated"
    time.sleep(1.5)
    pending = events(w, "pending")
    assert {e["delegation_id"] for e in pending} == set(ids)
    assert all(e["attempts"] == 0 and e["last_error"] is None for e in pending), pending
    assert fake.hits == []
    connect(w, fake)
    assert fake.wait_effects(ids, 15)
    assert fake.effect_ids() == set(ids) and fake.errors == []
    # disconnected again: new events wait, delivered ones stay sent
    expect_ok(w.admin.delete("/v1/billing/stripe"))
    more = completed(w, 2, cid)
    time.sleep(1.5)
    assert {e["delegation_id"] for e in events(w, "pending")} == set(more)
    assert len(fake.hits) == 3


def test_a_permanent_error_is_dead_until_retried(start_server, backend, callee, fake):
    srv = stripe_server(start_server, fake, backend)
    w = DelegationOrg(srv, callee)
    cid = w.add_callee(price=0.01, behaviour=ok(cost=0.0123))
    connect(w, fake)
    ids = completed(w, 1, cid)
    fake.fail_identifier(ids[0], 400, "No such customer: 'cus_gone'")
    more = completed(w, 2, cid)
    assert fake.wait_effects(more, 15)
    dead = wait_for(lambda: events(w, "dead"), 15)
    assert [e["delegation_id"] for e in dead] == ids
    assert "No such customer: 'cus_gone'" in dead[0]["last_error"], dead
    assert dead[0]["attempts"] == 1 and dead[0]["next_attempt_at"] is None
    assert ids[0] not in fake.effect_ids()
    time.sleep(1.0)
    assert len(fake.hits_for(ids[0])) == 1  # dead stays dead
    bid = dead[0]["billing_id"]
    # retry: live key only, own org only, dead only
    expect_error(Api(srv, w.test_key).post(f"/v1/billing/events/{bid}/retry"), 403, "FORBIDDEN")
    w2 = DelegationOrg(srv, callee)
    e404 = expect_error(w2.admin.post(f"/v1/billing/events/{bid}/retry"), 404, "NOT_FOUND")
    e404b = expect_error(w2.admin.post("/v1/billing/events/bill_del_" + "0" * 24 + "/retry"),
                         404, "NOT_FOUND")
    assert e404["message"].replace(bid, "X") == e404b["message"].replace(
        "bill_del_" + "0" * 24, "X")
    expect_error(w.admin.post("/v1/billing/events/nope/retry"), 404, "NOT_FOUND")
    sent_bid = "bill_" + more[0]
    wait_for(lambda: any(e["billing_id"] == sent_bid for e in events(w, "sent")), 10)
    expect_error(w.admin.post(f"/v1/billing/events/{sent_bid}/retry"), 409, "CONFLICT")
    fake.heal(ids[0])
    again = expect_ok(w.admin.post(f"/v1/billing/events/{bid}/retry"))
    assert again["status"] == "pending" and again["attempts"] == 1
    assert fake.wait_effects(ids, 15)
    done = wait_for(lambda: [e for e in events(w, "sent") if e["billing_id"] == bid], 10)
    assert done[0]["attempts"] == 2
    assert fake.errors == []
    assert srv_metrics(srv)['nexra_billing_dispatch_total{outcome="dead"}'] == 1


# --------------------------------------------------------------------------
# crashes and several processes

def test_killed_between_stripes_answer_and_the_commit(start_server, backend, callee, fake):
    """SIGKILL right after Stripe answered: the row is still pending under
    the dead process's lease; the next process sends it again when the
    lease runs out, and Stripe replays its first answer (no second effect)."""
    srv = stripe_server(start_server, fake, backend)
    w = DelegationOrg(srv, callee)
    cid = w.add_callee(price=0.01, behaviour=ok(cost=0.0123))
    ids = completed(w, 3, cid)
    killed = []

    def kill_once(hit):
        if not killed and hit.kind == "effect":
            killed.append(hit.identifier)
            srv.kill()

    fake.on_answer = kill_once
    connect(w, fake)
    assert wait_for(lambda: killed and srv.proc.poll() is not None, 15)
    fake.on_answer = None
    srv2 = start_server.restart_of(srv)
    w.admin = Api(srv2, w.live_key)
    assert fake.wait_effects(ids, LEASE_S + 15), fake.effect_ids()
    assert wait_for(lambda: len(events(w, "sent")) == 3, LEASE_S + 15)
    assert fake.errors == []
    assert fake.effect_ids() == set(ids)
    replays = [h for h in fake.hits if h.kind == "replay"]
    assert replays and all(h.identifier in killed or h.identifier in ids for h in replays)
    assert killed[0] in {h.identifier for h in replays}, "the killed one was sent again"
    assert all(len([h for h in fake.hits_for(i) if h.kind == "effect"]) == 1 for i in ids)


def test_two_processes_on_postgres_never_send_an_event_twice(start_server, callee, fake,
                                                             request):
    if "postgres" not in os.environ.get("NEXRA_TEST_BACKENDS", "sqlite,postgres"):
        pytest.skip("PostgreSQL not selected")
    a = stripe_server(start_server, fake, "postgres")
    b = stripe_server(start_server, fake, "postgres", db=a.db,
                      env={"NEXRA_MASTER_KEY": open(a.master_key_path).read().strip()})
    w = DelegationOrg(a, callee)
    cid = w.add_callee(price=0.01, behaviour=ok(cost=0.0123))
    from concurrent.futures import ThreadPoolExecutor
    n = 400

    def one(i):
        srv = a if i % 2 else b
        r = Api(srv, w.live_key, agent_id=w.caller_id).post("/v1/delegate", w.body(cid, cap=0.05))
        return expect_ok(r)["delegation_id"]

    with ThreadPoolExecutor(16) as ex:
        ids = list(ex.map(one, range(n)))
    assert fake.hits == []  # nothing is sent before the org connects
    connect(w, fake)  # both dispatchers now find 400 due events at once
    assert fake.wait_effects(ids, 60), (len(fake.effect_ids()), a.pg.psql(
        a.pg_dbname, "SELECT state, attempts, lease_until, lease_owner, next_attempt_at, "
        "extract(epoch from now())::bigint FROM billing_events WHERE state <> 'sent' LIMIT 5"))
    assert fake.errors == []
    per_id = {}
    for h in fake.hits:
        per_id[h.identifier] = per_id.get(h.identifier, 0) + 1
    assert per_id == {i: 1 for i in ids}, "every event was sent exactly once"
    assert wait_for(lambda: len(events(w, "sent")) == n, 10)
    sa = srv_metrics(a)['nexra_billing_dispatch_total{outcome="sent"}']
    sb = srv_metrics(b)['nexra_billing_dispatch_total{outcome="sent"}']
    assert sa + sb == n and sa > 0 and sb > 0, (sa, sb)  # both dispatchers took a share


def test_sigkill_during_a_stream_of_2000_delegations_loses_and_doubles_nothing(
        start_server, backend, callee, fake):
    """nexra serve is SIGKILLed again and again while 2,000 delegations
    stream in (and their events go out): each logical delegation is driven
    with an Idempotency-Key until it completes, and in the end Stripe has
    exactly the 2,000 completed delegations, each with one effect."""
    import random
    import threading
    import requests
    from concurrent.futures import ThreadPoolExecutor

    n, workers = 2000, 12
    # the org sends far more than its plan's 1,000 requests a minute here
    srv = stripe_server(start_server, fake, backend, "--rate-limits", "starter=off,growth=off")
    w = DelegationOrg(srv, callee)
    cid = w.add_callee(price=0.01, behaviour=ok(cost=0.0123))
    fake.push(answer(500), answer(429, retry_after=1))
    connect(w, fake)
    cur = {"srv": srv}
    lock = threading.Lock()
    done, later = {}, []
    stop_killing = threading.Event()
    kills = []

    def attempt(i, gen):
        """One try: 'done', 'again' (same key), 'later' (an orphan still
        open under this key) or 'new' (the key's delegation did not complete)."""
        s = cur["srv"]
        try:
            r = requests.post(s.url + "/v1/delegate", json=w.body(cid, cap=0.05, timeout_ms=1000),
                              headers={"Authorization": f"Bearer {w.live_key}",
                                       "X-Agent-ID": w.caller_id,
                                       "Idempotency-Key": f"k{i}-{gen}"}, timeout=10)
        except requests.RequestException:
            return "again"
        if r.status_code == 200:
            d = r.json()["data"]
            assert d["status"] == "completed", d
            with lock:
                done[i] = d["delegation_id"]
            return "done"
        if r.status_code == 409:
            return "later"
        if r.status_code in (502, 504):  # settled failed / timed_out by a kill: not billed
            return "new"
        return "again"  # 503 while stopping and the like

    def drive(i, gen=0, patient=False):
        while True:
            res = attempt(i, gen)
            if res == "done":
                return
            if res == "new":
                gen += 1
            elif res == "later":
                if not patient:
                    with lock:
                        later.append((i, gen))
                    return
                time.sleep(0.5)
            else:
                time.sleep(0.05)

    def killer():
        while not stop_killing.is_set():
            time.sleep(random.uniform(0.6, 1.4))
            if stop_killing.is_set():
                return
            s = cur["srv"]
            s.kill()
            kills.append(time.time())
            cur["srv"] = start_server.restart_of(s)

    kt = threading.Thread(target=killer)
    kt.start()
    try:
        with ThreadPoolExecutor(workers) as ex:
            futs = [ex.submit(drive, i) for i in range(n)]
            for k, f in enumerate(futs):
                f.result()
                if k == int(n * 0.9):
                    stop_killing.set()
    finally:
        stop_killing.set()
        kt.join()
    # keys whose delegation was open in a killed process: the sweeper of
    # the live one settles them timed_out, then a new key takes over
    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(lambda ig: drive(ig[0], ig[1], patient=True), list(later)))
    assert len(kills) >= 3, kills
    assert sorted(done) == list(range(n))
    ids = set(done.values())
    assert len(ids) == n
    w.admin = Api(cur["srv"], w.live_key)
    stored = {d["delegation_id"] for d in w.list_all(status="completed")}
    assert stored == ids, "only the answered ones completed"
    assert fake.wait_effects(ids, LEASE_S + 30), len(ids - fake.effect_ids())
    assert fake.errors == []
    assert fake.effect_ids() == ids  # 2,000 distinct identifiers, none missing, none extra
    assert all(len([h for h in fake.hits_for(i) if h.kind == "effect"]) == 1 for i in ids)
    assert wait_for(lambda: len(events(w, "sent")) == n, LEASE_S + 15)
    assert events(w, "pending") == [] and events(w, "dead") == []
    replays = sum(1 for h in fake.hits if h.kind == "replay")
    print(f"{backend}: {len(kills)} kills, {len(fake.hits)} requests at Stripe, "
          f"{replays} idempotent replays, {len(later)} keys left open by a kill")
