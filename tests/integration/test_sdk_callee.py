"""The SDK's callee helper: the seed's signature function, the delegation
token checks (tokens forged here with PyJWT, independently of the SDK),
the http.server handler refusing what does not verify, and, against the
real server, a callee whose secret no longer matches failing the
delegation."""
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

import jwt
import pytest

import sdkorg  # noqa: F401  (puts sdk/python on the path)
from sdkorg import Org

import nexra_sdk as nx
from nexra_sdk import (WebhookServer, parse_webhook, verify_delegation_token,
                       verify_standard_webhook, verify_webhook_signature)

SECRET = "s" * 40
AGENT = "research-agent-v2"


def claims(**over):
    now = int(time.time())
    c = {"iss": "nexra", "sub": "sales-agent", "aud": AGENT, "org_id": "org_x",
         "scope": "research", "budget_cap_usd": 0.25, "jti": "del_1", "iat": now,
         "nbf": now, "exp": now + 30}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def token(secret=SECRET, alg="HS256", **over):
    return jwt.encode(claims(**over), secret, algorithm=alg)


def test_seed_signature_function():
    body = b'{"delegation_id":"del_7f3a2b9c"}'
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert verify_webhook_signature(body, SECRET, sig)
    assert not verify_webhook_signature(body + b" ", SECRET, sig)
    assert not verify_webhook_signature(body, SECRET + "x", sig)
    assert not verify_webhook_signature(body, SECRET, sig.upper())
    assert not verify_webhook_signature(body, SECRET, None)


def test_standard_webhook_signature():
    import base64
    body, ts = b"{}", str(int(time.time()))
    mac = base64.b64encode(hmac.new(SECRET.encode(), f"del_1.{ts}.".encode() + body,
                                    hashlib.sha256).digest()).decode()
    assert verify_standard_webhook(body, SECRET, "del_1", ts, "v0,x v1," + mac)
    assert not verify_standard_webhook(body, SECRET, "del_2", ts, "v1," + mac)
    old = str(int(ts) - 600)
    mac_old = base64.b64encode(hmac.new(SECRET.encode(), f"del_1.{old}.".encode() + body,
                                        hashlib.sha256).digest()).decode()
    assert not verify_standard_webhook(body, SECRET, "del_1", old, "v1," + mac_old)


def test_token_checks():
    c = verify_delegation_token(token(), SECRET, AGENT)
    assert c["sub"] == "sales-agent" and c["jti"] == "del_1"
    refused = {
        "wrong key": token(secret="t" * 40),
        "other audience": token(aud="someone-else"),
        "other issuer": token(iss="evil"),
        "expired": token(exp=int(time.time()) - 5),
        "not yet valid": token(nbf=int(time.time()) + 60),
        "no exp": token(exp=None),
        "HS512": token(alg="HS512"),
        "alg none": jwt.encode(claims(), None, algorithm="none"),
        "not a jwt": "abc",
        "tampered claims": token().split(".")[0] + "." + token(aud="x").split(".")[1] + "."
        + token().split(".")[2],
    }
    for what, tok in refused.items():
        with pytest.raises(nx.InvalidToken):
            verify_delegation_token(tok, SECRET, AGENT)
            pytest.fail(what)
    assert verify_delegation_token(token(exp=int(time.time()) - 5), SECRET, AGENT,
                                   leeway=10)["aud"] == AGENT


def signed_request(body, secret=SECRET, tok=None, did="del_1"):
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    h = {"Content-Type": "application/json", "X-Nexra-Signature": sig,
         "X-Nexra-Delegation": did}
    if tok is not False:
        h["Authorization"] = "Bearer " + (tok or token())
    return h


def post(url, body, headers):
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_handler_serves_and_refuses():
    calls = []

    def fn(d):
        calls.append(d)
        if d.task.get("boom"):
            raise RuntimeError("bug in the agent")
        return {"result": {"summary": d.task["company"]}, "cost_usd": 0.1}
    body = json.dumps({"delegation_id": "del_1", "capability": "research",
                       "task": {"company": "Acme"}, "budget_cap": 0.25,
                       "expires_at": int(time.time()) + 30}).encode()
    refusals = []
    with WebhookServer(fn, SECRET, AGENT, on_error=refusals.append) as srv:
        assert post(srv.url, body, signed_request(body)) == \
            (200, {"result": {"summary": "Acme"}, "cost_usd": 0.1})
        d = calls[0]
        assert d.delegation_id == "del_1" and d.caller_agent_id == "sales-agent"
        assert 0 < d.seconds_left <= 30
        for headers in (signed_request(body, secret="t" * 40),        # bad signature
                        signed_request(body, tok=False),               # no token
                        signed_request(body, tok=token(jti="del_2")),  # token of another
                        signed_request(body, tok=token(scope="email_send")),
                        signed_request(body, did="del_9"),             # header mismatch
                        signed_request(body, tok=token(aud="other"))):
            status, _ = post(srv.url, body, headers)
            assert status == 401
        assert len(calls) == 1 and len(refusals) == 6
        bad = b"not json"
        assert post(srv.url, bad, signed_request(bad))[0] == 400
        boom = json.dumps({"delegation_id": "del_1", "capability": "research",
                           "task": {"boom": True}}).encode()
        assert post(srv.url, boom, signed_request(boom)) == (500, {"error": "handler failed"})
    # parse_webhook takes any header mapping (Flask/FastAPI style)
    h = {k.lower(): v for k, v in signed_request(body).items()}
    assert parse_webhook(body, h, SECRET, AGENT).task == {"company": "Acme"}


def test_stale_secret_fails_the_delegation(server):
    org = Org(server.url)
    try:
        c = org.callee()
        org.admin.update_agent(
            c.agent_id, name="n", description="d", capability_type="research",
            webhook_url=c.server.url, webhook_secret="rotated-" + "x" * 32,
            pricing={"per_call_usd": 0.05}, sla={"p99_latency_ms": 3000, "availability": 0.9},
            input_schema=sdkorg.IN_SCHEMA, output_schema=sdkorg.OUT_SCHEMA)
        with pytest.raises(nx.CalleeFailed) as ei:
            org.client.delegate(c.agent_id, {"company": "Acme"}, 0.25)
        assert ei.value.delegation["status"] == "failed"
        assert c.received == [] and isinstance(c.refused[0], nx.InvalidWebhook)
    finally:
        org.close()
