"""Notifications (docs/notifications.md): channels an org configures (Slack
incoming webhook, email over SMTP, signed generic webhook), every new
pending approval sent to every channel exactly once with its summary, a
failing channel retried with backoff while delegations keep flowing, and
the monthly budget alert sent exactly once when concurrent delegations
cross alert_threshold. Against local receivers (notify_receivers.py) and
the real server, on SQLite and PostgreSQL (and two processes on one
PostgreSQL)."""
import json
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from callee import DelegationOrg, ok
from helpers import Api, expect_error, expect_ok, register_org_data
from notify_receivers import HttpReceiver, SmtpServer, wait_for

PUBLIC = "https://nexra.example"
HITL_POLICY = ("rules:\n  - capability: analysis\n    hitl_required: true\n"
               "    hitl_timeout_seconds: 900\n  - capability: research\n")
SECRET = "whsec_" + "c2VjcmV0LWZvci1ub3RpZmljYXRpb24tdGVzdHMtMTIzNDU2Nzg="
PLAIN_SECRET = "s3cr3t-for-the-generic-webhook-channel!"
CH_ID_RE = re.compile(r"^nch_[0-9a-f]{16}$")
DLV_ID_RE = re.compile(r"^ntd_[0-9a-f]{24}$")


@pytest.fixture
def receivers():
    http, smtp = HttpReceiver(), SmtpServer()
    try:
        yield http, smtp
    finally:
        http.close()
        smtp.close()


def notify_server(start_server, backend, smtp, db=None, start=True):
    return start_server("--dev", "--smtp-url", smtp.url, "--smtp-from", "nexra@example.com",
                        "--public-url", PUBLIC + "/", "--notify-retry", "1",
                        backend=backend, db=db, start=start)


def add_channel(api, **body):
    return expect_ok(api.post("/v1/notifications/channels", body), 201)


def deliveries(api, **params):
    out, offset = [], 0
    while True:
        r = api.get("/v1/notifications/deliveries", params=dict(params, limit=200, offset=offset))
        page = expect_ok(r)
        out += page
        if len(page) < 200:
            return out
        offset += 200


def stays(pred, seconds=2.5):
    """pred holds now and still after `seconds` (no late duplicates)."""
    assert pred()
    time.sleep(seconds)
    assert pred()


# --------------------------------------------------------------------------
# Channels

def test_channel_validation_crud_and_isolation(server):
    a = register_org_data(server)
    api, test = Api(server, a["api_key"]), Api(server, a["test_api_key"])
    other = Api(server, register_org_data(server)["api_key"])
    post = lambda body: api.post("/v1/notifications/channels", body)  # noqa: E731

    expect_error(post({}), 400, "VALIDATION_ERROR", field="kind")
    expect_error(post({"kind": "sms", "url": "http://127.0.0.1:1/x"}), 400, "VALIDATION_ERROR",
                 field="kind")
    expect_error(post({"kind": "slack"}), 400, "VALIDATION_ERROR", field="url")
    expect_error(post({"kind": "slack", "url": "ftp://example.com/x"}), 400,
                 "VALIDATION_ERROR", field="url")
    expect_error(post({"kind": "slack", "url": "https:///nohost"}), 400, "VALIDATION_ERROR",
                 field="url")
    expect_error(post({"kind": "slack", "url": "https://u:p@example.com/x"}), 400,
                 "VALIDATION_ERROR", field="url")
    expect_error(post({"kind": "slack", "url": "https://example.com/x", "email": "a@b.co"}),
                 400, "VALIDATION_ERROR", field="email")
    expect_error(post({"kind": "email"}), 400, "VALIDATION_ERROR", field="email")
    for bad in ["no-at", "a@b", "a@@b.co", "a b@c.co", "a@b.co\r\nRCPT TO:<x@y.z>", ".a@b.co",
                "a..b@c.co", "a@-b.co", "\u00e9@b.co", "<a@b.co>"]:
        expect_error(post({"kind": "email", "email": bad}), 400, "VALIDATION_ERROR",
                     field="email")
    expect_error(post({"kind": "webhook", "url": "https://example.com/h"}), 400,
                 "VALIDATION_ERROR", field="secret")
    expect_error(post({"kind": "webhook", "url": "https://example.com/h", "secret": "x" * 31}),
                 400, "VALIDATION_ERROR", field="secret")
    expect_error(post({"kind": "webhook", "url": "https://example.com/h",
                       "secret": "whsec_" + "!" * 40}), 400, "VALIDATION_ERROR", field="secret")
    expect_error(post({"kind": "webhook", "url": "https://example.com/h",
                       "secret": "has a space in it and is long enough"}), 400,
                 "VALIDATION_ERROR", field="secret")
    expect_error(post({"kind": "email", "email": "a@b.co", "name": "n" * 101}), 400,
                 "VALIDATION_ERROR", field="name")
    expect_error(post({"kind": "email", "email": "a@b.co", "extra": 1}), 400,
                 "VALIDATION_ERROR", field="extra")
    # test keys read, never change where an org's data goes
    expect_error(test.post("/v1/notifications/channels", {"kind": "email", "email": "a@b.co"}),
                 403, "FORBIDDEN")
    assert expect_ok(api.get("/v1/notifications/channels")) == []

    slack = add_channel(api, kind="slack", name="ops", url="https://hooks.example.com/T1/B2/tok3n")
    mail = add_channel(api, kind="email", email="ops@example.com")
    hook = add_channel(api, kind="webhook", url="https://example.com/nexra", secret=PLAIN_SECRET)
    assert CH_ID_RE.match(slack["channel_id"]) and slack["name"] == "ops"
    assert slack["url"] == "https://hooks.example.com/..."  # the token is a credential
    assert mail["email"] == "ops@example.com" and hook["url"] == "https://example.com/nexra"
    listed = expect_ok(test.get("/v1/notifications/channels"))
    assert {c["channel_id"] for c in listed} == {slack["channel_id"], mail["channel_id"],
                                                  hook["channel_id"]}
    text = json.dumps(listed)
    assert "tok3n" not in text and PLAIN_SECRET not in text and "secret" not in text.replace(
        "has_secret", "")

    # other orgs see nothing and cannot delete
    assert expect_ok(other.get("/v1/notifications/channels")) == []
    expect_error(other.delete(f"/v1/notifications/channels/{mail['channel_id']}"), 404,
                 "NOT_FOUND")
    expect_error(test.delete(f"/v1/notifications/channels/{mail['channel_id']}"), 403,
                 "FORBIDDEN")
    expect_error(api.delete("/v1/notifications/channels/nch_nope"), 404, "NOT_FOUND")
    gone = expect_ok(api.delete(f"/v1/notifications/channels/{mail['channel_id']}"))
    assert gone["channel_id"] == mail["channel_id"]
    expect_error(api.delete(f"/v1/notifications/channels/{mail['channel_id']}"), 404,
                 "NOT_FOUND")
    assert len(expect_ok(api.get("/v1/notifications/channels"))) == 2

    # a sane limit per org
    for i in range(18):
        add_channel(api, kind="email", email=f"ops{i}@example.com")
    err = expect_error(post({"kind": "email", "email": "one-more@example.com"}), 409, "CONFLICT")
    assert "20" in err["message"]
    expect_error(api.get("/v1/notifications/deliveries", params={"status": "lost"}), 400,
                 "VALIDATION_ERROR", field="status")


def test_non_dev_channels_need_https_and_public_hosts(start_server):
    srv = start_server("--signup", "open")
    api = Api(srv, register_org_data(srv)["api_key"])
    for url in ["http://hooks.example.com/x", "https://127.0.0.1/x", "https://10.0.0.1/x",
                "https://localhost/x", "https://169.254.169.254/latest"]:
        expect_error(api.post("/v1/notifications/channels", {"kind": "slack", "url": url}),
                     400, "VALIDATION_ERROR", field="url")
    add_channel(api, kind="slack", url="https://hooks.example.com/services/x")


# --------------------------------------------------------------------------
# Every pending approval reaches every channel once

def test_every_pending_approval_reaches_every_channel_once(start_server, backend, callee,
                                                           receivers):
    http, smtp = receivers
    srv = notify_server(start_server, backend, smtp)
    w = DelegationOrg(srv, callee, policy=HITL_POLICY)
    gated = w.add_callee(capability="analysis")
    free = w.add_callee(capability="research", behaviour=ok(cost=0.01))
    # an approval older than the channels is not sent to them
    old = expect_ok(w.delegate(gated, cap=0.05), 202)["delegation_id"]
    time.sleep(1.1)
    add_channel(w.admin, kind="slack", url=http.url("/slack/T1/B1/abc"))
    add_channel(w.admin, kind="email", email="approvers@example.com")
    hook = add_channel(w.admin, kind="webhook", url=http.url("/hook"), secret=SECRET)
    add_channel(w.admin, kind="webhook", url=http.url("/hook-plain"), secret=PLAIN_SECRET)
    # another org's channel hears nothing of this org
    w2 = DelegationOrg(srv, callee, policy=HITL_POLICY)
    add_channel(w2.admin, kind="slack", url=http.url("/slack/other"))

    ids = [expect_ok(w.delegate(gated, cap=0.30, input={"company_name": f"Acme {i}"}), 202)
           ["delegation_id"] for i in range(3)]
    expect_ok(w.delegate(free, cap=0.10))  # allowed: nothing to approve

    def all_arrived():
        return (len(http.got("/slack/T1/B1/abc")) >= 3 and len(http.got("/hook")) >= 3 and
                len(http.got("/hook-plain")) >= 3 and len(smtp.to("approvers@example.com")) >= 3)
    wait_for(all_arrived, 60, what="3 approvals on each of 4 channels")
    stays(lambda: len(http.got("/slack/T1/B1/abc")) == 3 and len(http.got("/hook")) == 3
          and len(http.got("/hook-plain")) == 3 and len(smtp.to("approvers@example.com")) == 3)
    assert http.got("/slack/other") == []

    # Slack: {"text"} with the whole summary and the links
    texts = [r.json()["text"] for r in http.got("/slack/T1/B1/abc")]
    for d in ids:
        t = next(x for x in texts if d in x)
        assert w.caller_id in t and gated in t and "analysis" in t
        assert "Budget cap: 0.3 USD" in t, t
        assert "rules[0] (analysis)" in t and "Expires: 20" in t, t
        assert "company_name" in t and "Acme" in t
        assert f"{PUBLIC}/v1/delegations/{d}/approve" in t
        assert f"{PUBLIC}/v1/delegations/{d}/reject" in t
    assert not any(old in x for x in texts)

    # the webhook: signed exactly like a delegation webhook, the event as JSON
    for path, secret in (("/hook", SECRET), ("/hook-plain", PLAIN_SECRET)):
        recs = http.got(path)
        assert all(r.signed_by(secret) for r in recs)
        assert not any(r.signed_by("another-secret-that-is-long-enough!!") for r in recs)
        events = {r.json()["delegation_id"]: r for r in recs}
        assert set(events) == set(ids)
        rec = events[ids[0]]
        ev = rec.json()
        assert rec.headers["x-nexra-event"] == "approval_requested"
        assert DLV_ID_RE.match(rec.headers["webhook-id"])
        assert rec.headers["x-nexra-delivery"] == rec.headers["webhook-id"]
        assert ev["event"] == "approval_requested" and ev["org_id"] == w.org_id
        assert ev["caller_agent_id"] == w.caller_id and ev["callee_agent_id"] == gated
        assert ev["capability"] == "analysis" and ev["budget_cap_usd"] == 0.3
        assert ev["rule_index"] == 0 and ev["rule_capability"] == "analysis"
        assert ev["policy_ref"]
        assert json.loads(ev["task_input"]) == {"company_name": "Acme 0"}
        assert ev["task_input_truncated"] is False
        assert ev["approve_path"] == f"/v1/delegations/{ids[0]}/approve"
        assert ev["approve_url"] == PUBLIC + ev["approve_path"]
        assert ev["reject_url"] == f"{PUBLIC}/v1/delegations/{ids[0]}/reject"
        created = w.get(ids[0])["created_at"]
        assert ev["created_at"] == created and ev["expires_at"] > created

    # email: to the address, from --smtp-from, a readable subject and body
    mails = smtp.to("approvers@example.com")
    assert all(m.mail_from == "nexra@example.com" for m in mails)
    for d in ids:
        m = next(m for m in mails if d in m.text)
        assert m.subject == f"[Nexra] Approval needed: {w.caller_id} -> {gated} (analysis)"
        assert f"{PUBLIC}/v1/delegations/{d}/approve" in m.text

    # what the operator sees
    sent = deliveries(w.admin, status="sent")
    assert len(sent) == 12
    assert {d["delegation_id"] for d in sent} == set(ids)
    assert all(d["attempts"] == 1 and d["last_error"] is None and d["sent_at"] for d in sent)
    assert {d["channel_id"] for d in sent if d["channel_kind"] == "webhook"} >= {
        hook["channel_id"]}
    assert deliveries(w.admin, status="pending") == [] and deliveries(w.admin, status="dead") == []
    assert deliveries(w2.admin) == []
    metrics = srv_metrics(srv)
    assert metrics["nexra_notification_sends_total{result=\"sent\"}"] >= 12


def srv_metrics(srv):
    import requests
    out = {}
    for line in requests.get(srv.url + "/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def test_a_failing_channel_is_retried_and_never_blocks_delegations(start_server, backend,
                                                                  callee, receivers):
    http, smtp = receivers
    srv = notify_server(start_server, backend, smtp)
    w = DelegationOrg(srv, callee, policy=HITL_POLICY)
    gated = w.add_callee(capability="analysis")
    free = w.add_callee(capability="research", behaviour=ok(cost=0.01))
    http.fail_first("/flaky", 3)
    flaky = add_channel(w.admin, kind="webhook", url=http.url("/flaky"), secret=PLAIN_SECRET)
    add_channel(w.admin, kind="slack", url=http.url("/steady"))
    d = expect_ok(w.delegate(gated, cap=0.20), 202)["delegation_id"]
    # the steady channel is not held up by the flaky one
    wait_for(lambda: http.got("/steady"), 60, what="the steady channel")
    wait_for(lambda: http.attempts("/flaky") >= 2, 60, what="a retry")
    pend = [x for x in deliveries(w.admin) if x["channel_id"] == flaky["channel_id"]]
    if pend[0]["status"] == "pending":
        assert pend[0]["last_error"] == "HTTP 500 from the receiver"
        assert pend[0]["next_attempt_at"] is not None
    # delegations keep flowing meanwhile
    for _ in range(5):
        assert expect_ok(w.delegate(free, cap=0.05))["status"] == "completed"
    wait_for(lambda: http.got("/flaky"), 60, what="the flaky channel's delivery")
    stays(lambda: len(http.got("/flaky")) == 1 and len(http.got("/steady")) == 1)
    assert http.got("/flaky")[0].json()["delegation_id"] == d
    done = [x for x in deliveries(w.admin) if x["channel_id"] == flaky["channel_id"]]
    assert len(done) == 1 and done[0]["status"] == "sent" and done[0]["attempts"] == 4, done
    assert done[0]["last_error"] is None


def test_a_send_cut_by_a_graceful_stop_is_retried_after_restart(start_server, backend, callee,
                                                                receivers):
    http, smtp = receivers
    srv = notify_server(start_server, backend, smtp)
    w = DelegationOrg(srv, callee, policy=HITL_POLICY)
    gated = w.add_callee(capability="analysis")
    http.hang("/slow")
    add_channel(w.admin, kind="webhook", url=http.url("/slow"), secret=PLAIN_SECRET)
    d = expect_ok(w.delegate(gated, cap=0.20), 202)["delegation_id"]
    wait_for(lambda: http.attempts("/slow") >= 1, 60, what="the send to start")
    assert srv.stop() == 0  # in-flight sends cancelled cleanly (and no leak under ASan)
    http.release("/slow")
    srv2 = start_server.restart_of(srv)
    wait_for(lambda: http.got("/slow"), 60, what="the retried delivery")
    stays(lambda: len(http.got("/slow")) == 1)
    assert http.got("/slow")[0].json()["delegation_id"] == d
    row = deliveries(Api(srv2, w.live_key))[0]
    assert row["status"] == "sent" and row["attempts"] == 2, row


def test_an_unreachable_smtp_server_is_retried_not_lost(start_server, backend, callee,
                                                       receivers):
    http, smtp = receivers
    dead_smtp = SmtpServer()
    dead_smtp.close()  # nothing listens on its port any more
    srv = start_server("--dev", "--smtp-url", dead_smtp.url, "--notify-retry", "1",
                       backend=backend)
    w = DelegationOrg(srv, callee, policy=HITL_POLICY)
    gated = w.add_callee(capability="analysis")
    add_channel(w.admin, kind="email", email="ops@example.com")
    expect_ok(w.delegate(gated, cap=0.20), 202)
    got = wait_for(lambda: [x for x in deliveries(w.admin) if x["attempts"] >= 2], 60,
                   what="a second SMTP attempt")
    assert got[0]["status"] == "pending" and got[0]["last_error"].startswith("smtp:"), got


# --------------------------------------------------------------------------
# Budget alerts

def alert_policy(monthly="1.00", threshold="0.5"):
    return (f"organization:\n  monthly_budget_usd: {monthly}\n  alert_threshold: {threshold}\n"
            "rules:\n  - capability: \"*\"\n")


def test_budget_alert_fires_exactly_once_under_concurrent_delegations(start_server, backend,
                                                                      callee, receivers):
    http, smtp = receivers
    srv = notify_server(start_server, backend, smtp)
    w = DelegationOrg(srv, callee, policy=alert_policy())
    cid = w.add_callee(behaviour=ok(cost=0.05), price=0.05)
    add_channel(w.admin, kind="slack", url=http.url("/alerts"))
    add_channel(w.admin, kind="email", email="finance@example.com")
    # below the threshold: 0.20 of 1.00
    for _ in range(4):
        expect_ok(w.delegate(cid, cap=0.05))
    time.sleep(2.5)
    assert http.got("/alerts") == []
    # 16 at once take spend to 1.00, across 0.50
    with ThreadPoolExecutor(16) as ex:
        rs = list(ex.map(lambda _: w.delegate(cid, cap=0.05), range(16)))
    assert sorted(r.status_code for r in rs) == [200] * 16
    wait_for(lambda: http.got("/alerts") and smtp.to("finance@example.com"), 60,
             what="the budget alert")
    # more spending, same month: no second alert
    expect_error(w.delegate(cid, cap=0.05), 402, "BUDGET_EXCEEDED")
    stays(lambda: len(http.got("/alerts")) == 1 and len(smtp.to("finance@example.com")) == 1,
          3.0)
    t = http.got("/alerts")[0].json()["text"]
    assert "Budget alert" in t and w.org_id in t and "of the 1 USD monthly budget" in t, t
    assert "Alert threshold: 50%" in t
    m = smtp.to("finance@example.com")[0]
    assert m.subject.startswith("[Nexra] Budget alert for 20")
    alerts = [x for x in deliveries(w.admin) if x["event"] == "budget_alert"]
    assert len(alerts) == 2 and all(x["status"] == "sent" for x in alerts)
    ev = alerts[0]["payload"]
    assert ev["alert_threshold"] == 0.5 and ev["monthly_budget_usd"] == 1
    assert ev["used_usd"] >= 0.5 and ev["period"] == alerts[0]["period"]


def test_no_alert_without_a_threshold(start_server, backend, callee, receivers):
    http, smtp = receivers
    srv = notify_server(start_server, backend, smtp)
    w = DelegationOrg(srv, callee, policy="organization:\n  monthly_budget_usd: 0.20\n"
                                          "rules:\n  - capability: \"*\"\n")
    cid = w.add_callee(behaviour=ok(cost=0.05), price=0.05)
    add_channel(w.admin, kind="slack", url=http.url("/alerts"))
    for _ in range(4):
        expect_ok(w.delegate(cid, cap=0.05))
    time.sleep(2.5)
    assert http.got("/alerts") == [] and deliveries(w.admin) == []


# --------------------------------------------------------------------------
# Two processes on one PostgreSQL

@pytest.mark.skipif("postgres" not in os.environ.get("NEXRA_TEST_BACKENDS", "sqlite,postgres"),
                    reason="NEXRA_TEST_BACKENDS excludes postgres")
def test_two_processes_send_each_notification_once(start_server, callee, receivers):
    http, smtp = receivers
    s1 = notify_server(start_server, "postgres", smtp)
    s2 = notify_server(start_server, "postgres", smtp, db=s1.db, start=False)
    shutil.copyfile(s1.master_key_path, s2.master_key_path)  # channel secrets are sealed
    s2.start()
    w = DelegationOrg(s1, callee, policy=HITL_POLICY.replace(
        "rules:", "organization:\n  monthly_budget_usd: 100\n  alert_threshold: 0.001\nrules:"))
    gated = w.add_callee(capability="analysis")
    add_channel(w.admin, kind="slack", url=http.url("/both"))
    add_channel(w.admin, kind="webhook", url=http.url("/both-hook"), secret=PLAIN_SECRET)
    apis = [Api(s, w.live_key, agent_id=w.caller_id) for s in (s1, s2)]
    body = w.body(gated, cap=0.05)
    with ThreadPoolExecutor(8) as ex:
        rs = list(ex.map(lambda i: apis[i % 2].post("/v1/delegate", body), range(20)))
    ids = {expect_ok(r, 202)["delegation_id"] for r in rs}
    assert len(ids) == 20
    wait_for(lambda: len(http.got("/both")) >= 21 and len(http.got("/both-hook")) >= 21, 60,
             what="20 approvals and one alert on each channel")
    stays(lambda: len(http.got("/both")) == 21 and len(http.got("/both-hook")) == 21, 3.0)
    hooks = [r.json() for r in http.got("/both-hook")]
    assert {e["delegation_id"] for e in hooks if e["event"] == "approval_requested"} == ids
    assert sum(e["event"] == "budget_alert" for e in hooks) == 1
