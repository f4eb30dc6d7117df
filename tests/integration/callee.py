"""
A test callee for the delegation suite: a threaded HTTP server on
127.0.0.1:0 that plays every agent Nexra delegates to in a test (and the
caller's callback receiver), records every request it gets, verifies each
one exactly as a real callee would (docs/webhooks.md, the seed's Webhooks
and Delegation tokens sections), and answers with a behaviour the test
chooses.

Agents live under /hook/<agent_id>; `Callee.add_agent` tells the callee an
agent's webhook secret (and what it knows about the delegations it should
get) so each request can be checked on arrival:

- X-Nexra-Signature with the seed's own `verify_webhook_signature`;
- the Standard Webhooks trio webhook-id / webhook-timestamp /
  webhook-signature ("v1," + base64 HMAC-SHA256 of "id.timestamp.body",
  keyed with the secret's bytes, or the base64-decoded rest of a "whsec_"
  secret);
- for delegation webhooks, the scoped JWT in Authorization: Bearer, with
  PyJWT (HS256 pinned, aud = the callee, iss = nexra) and every claim,
  and the body: exactly {delegation_id, capability, task, budget_cap,
  expires_at}, its ids consistent with the token and the headers.

Each request becomes a `Record` whose `errors` list is empty when every
check passed; tests assert on records (`assert_webhook`, `assert_callback`)
rather than trusting the server.

Behaviours (per agent, a queue whose last entry sticks):
    ok(result, cost, tokens, delay)      200 {"result", "cost_usd", "llm_tokens"}
    status(code, body, delay)            any status code
    raw(body, status, ctype, delay)      any body (e.g. not JSON)
    hang()                               never answer (until the callee closes)
    close(delay)                         close the connection without answering
"""
import base64
import hashlib
import hmac
import json
import math
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

from helpers import Api, expect_ok, register_org_data, unique


def verify_webhook_signature(payload_bytes: bytes, secret: str, signature: str) -> bool:
    """The seed's function, verbatim."""
    expected = 'sha256=' + hmac.new(secret.encode(), payload_bytes, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def standard_webhook_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_"):])
    return secret.encode()


def verify_standard_webhook(body: bytes, secret: str, msg_id: str, timestamp: str,
                            signature: str) -> bool:
    """Standard Webhooks: the signature header may list several
    space-separated "v1,<base64>" signatures; one must match."""
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(
        hmac.new(standard_webhook_key(secret), signed, hashlib.sha256).digest()).decode()
    for part in signature.split(" "):
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return True
    return False


WEBHOOK_BODY_KEYS = {"delegation_id", "capability", "task", "budget_cap", "expires_at"}
JWT_CLAIMS = {"iss", "sub", "aud", "org_id", "scope", "budget_cap_usd", "jti", "iat", "nbf",
              "exp"}
CLOCK_SLACK = 15  # seconds between the server's clock reading and ours


# --------------------------------------------------------------------------
# Behaviours

def ok(result=None, cost=0.01, tokens=100, delay=0.0, extra=None):
    body = {"result": {"summary": "done"} if result is None else result, "cost_usd": cost}
    if tokens is not None:
        body["llm_tokens"] = tokens
    if extra:
        body.update(extra)
    return {"kind": "respond", "status": 200, "body": json.dumps(body).encode(),
            "ctype": "application/json", "delay": delay}


def status(code, body=b'{"error": "callee failed"}', delay=0.0):
    return {"kind": "respond", "status": code, "body": body, "ctype": "application/json",
            "delay": delay}


def raw(body, code=200, ctype="text/plain", delay=0.0):
    return {"kind": "respond", "status": code, "body": body, "ctype": ctype, "delay": delay}


def hang():
    return {"kind": "hang"}


def close(delay=0.0):
    return {"kind": "close", "delay": delay}


# --------------------------------------------------------------------------
# Records

class Record:
    def __init__(self, path, method, headers, body, agent_id, role):
        self.path = path
        self.method = method
        self.headers = headers  # lower-cased names
        self.body = body
        self.agent_id = agent_id
        self.role = role
        self.received = time.time()
        self.answered = None  # time the answer was written, if any
        self.json = None
        self.claims = None
        self.jwt_header = None
        self.checks = {}
        self.errors = []

    @property
    def ok(self):
        return not self.errors

    @property
    def delegation_id(self):
        return self.json.get("delegation_id") if isinstance(self.json, dict) else None

    def fail(self, what):
        self.errors.append(what)

    def __repr__(self):
        return (f"<Record {self.method} {self.path} role={self.role} "
                f"delegation={self.delegation_id} errors={self.errors}>")


class _Agent:
    def __init__(self, agent_id, secret, role, org_id, capability, caller):
        self.agent_id = agent_id
        self.secret = secret
        self.role = role
        self.org_id = org_id
        self.capability = capability
        self.caller = caller
        self.behaviours = [ok()] if role == "webhook" else [status(200, b"{}")]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "test-callee"

    def log_message(self, *args):  # quiet
        pass

    def _serve(self):
        self.server.owner._handle(self)

    do_POST = do_GET = do_PUT = do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 4096
    allow_reuse_address = True

    def handle_error(self, request, client_address):  # peers that give up are normal
        pass


class Callee:
    def __init__(self):
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._agents = {}
        self.records = []
        self._stop = threading.Event()
        self._srv = _Server(("127.0.0.1", 0), _Handler)
        self._srv.owner = self
        self.port = self._srv.server_address[1]
        self._thread = threading.Thread(target=self._srv.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def hook_url(self, agent_id):
        return f"{self.url}/hook/{agent_id}"

    def close(self):
        self._stop.set()
        self._srv.shutdown()
        self._srv.server_close()

    # --- configuration -----------------------------------------------------

    def add_agent(self, agent_id, secret, role="webhook", org_id=None, capability=None,
                  caller=None):
        """role "webhook": a callee getting delegations (caller: the caller
        agent id the tokens must name, when known); role "callback": the
        caller's callback receiver (secret: the caller's)."""
        with self._lock:
            self._agents[agent_id] = _Agent(agent_id, secret, role, org_id, capability, caller)

    def behave(self, agent_id, *behaviours):
        """The next requests for agent_id get these answers in order; the
        last one then repeats."""
        assert behaviours
        with self._lock:
            self._agents[agent_id].behaviours = list(behaviours)

    # --- reading what happened ---------------------------------------------

    def requests_for(self, agent_id):
        with self._lock:
            return [r for r in self.records if r.agent_id == agent_id]

    def count(self, agent_id=None):
        with self._lock:
            return sum(1 for r in self.records if agent_id is None or r.agent_id == agent_id)

    def wait_for(self, n, agent_id=None, timeout=10.0):
        """Waits until at least n requests (for agent_id) arrived; returns
        them."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                got = [r for r in self.records if agent_id is None or r.agent_id == agent_id]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"callee: {len(got)} requests for {agent_id or 'any agent'} "
                        f"within {timeout}s, expected {n}")
                self._cv.wait(left)

    # --- the server side ---------------------------------------------------

    def _read_body(self, h):
        te = (h.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = b""
            while True:
                line = h.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += h.rfile.read(size)
                h.rfile.readline()
        n = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(n) if n else b""

    def _handle(self, h):
        body = self._read_body(h)
        headers = {k.lower(): v for k, v in h.headers.items()}
        path = h.path.split("?", 1)[0]
        agent_id = path[len("/hook/"):] if path.startswith("/hook/") else None
        with self._lock:
            agent = self._agents.get(agent_id)
            if agent is not None:
                beh = agent.behaviours[0]
                if len(agent.behaviours) > 1:
                    agent.behaviours.pop(0)
            else:
                beh = status(404, b'{"error": "no such agent"}')
        rec = Record(path, h.command, headers, body, agent_id,
                     agent.role if agent else None)
        try:
            if agent is None:
                rec.fail(f"request for an unknown path {path}")
            elif agent.role == "webhook":
                self._verify_webhook(rec, agent)
            else:
                self._verify_callback(rec, agent)
        except Exception as e:  # noqa: BLE001  (a check that crashed is a failed check)
            rec.fail(f"verification raised {e!r}")
        with self._cv:
            self.records.append(rec)
            self._cv.notify_all()
        self._answer(h, rec, beh)

    def _answer(self, h, rec, beh):
        delay = beh.get("delay") or 0
        if delay and self._stop.wait(delay):
            beh = {"kind": "close"}
        if beh["kind"] == "hang":
            self._stop.wait(3600)
            beh = {"kind": "close"}
        if beh["kind"] == "close":
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        try:
            h.send_response(beh["status"])
            h.send_header("Content-Type", beh["ctype"])
            h.send_header("Content-Length", str(len(beh["body"])))
            h.end_headers()
            h.wfile.write(beh["body"])
            h.wfile.flush()
            rec.answered = time.time()
        except OSError:
            h.close_connection = True

    # --- verification ------------------------------------------------------

    def _verify_signatures(self, rec, secret):
        sig = rec.headers.get("x-nexra-signature")
        rec.checks["nexra_signature"] = bool(
            sig is not None and verify_webhook_signature(rec.body, secret, sig))
        if not rec.checks["nexra_signature"]:
            rec.fail(f"X-Nexra-Signature {sig!r} does not verify")
        wid = rec.headers.get("webhook-id")
        wts = rec.headers.get("webhook-timestamp")
        wsig = rec.headers.get("webhook-signature")
        good = None not in (wid, wts, wsig) and verify_standard_webhook(
            rec.body, secret, wid, wts, wsig)
        rec.checks["standard_signature"] = good
        if not good:
            rec.fail(f"Standard Webhooks signature does not verify (webhook-id {wid!r}, "
                     f"webhook-timestamp {wts!r}, webhook-signature {wsig!r})")
        if wts is not None:
            if not wts.isdigit() or abs(int(wts) - time.time()) > CLOCK_SLACK:
                rec.fail(f"webhook-timestamp {wts!r} is not Unix seconds close to now")
        ctype = rec.headers.get("content-type", "")
        if not ctype.startswith("application/json"):
            rec.fail(f"Content-Type {ctype!r}")
        if rec.method != "POST":
            rec.fail(f"method {rec.method}")
        try:
            rec.json = json.loads(rec.body)
        except ValueError:
            rec.fail(f"body is not JSON: {rec.body[:200]!r}")

    def _verify_callback(self, rec, agent):
        self._verify_signatures(rec, agent.secret)
        d = rec.json
        if not isinstance(d, dict) or not isinstance(d.get("delegation_id"), str):
            rec.fail("callback body is not a delegation object")
            return
        if rec.headers.get("x-nexra-delegation") != d["delegation_id"]:
            rec.fail(f"X-Nexra-Delegation {rec.headers.get('x-nexra-delegation')!r} != "
                     f"{d['delegation_id']!r}")
        if d.get("caller_agent_id") != agent.agent_id:
            rec.fail(f"callback for caller {d.get('caller_agent_id')!r} reached "
                     f"{agent.agent_id!r}")

    def _verify_webhook(self, rec, agent):
        self._verify_signatures(rec, agent.secret)
        b = rec.json
        if not isinstance(b, dict):
            rec.fail("webhook body is not an object")
            return
        if set(b) != WEBHOOK_BODY_KEYS:
            rec.fail(f"webhook body keys {sorted(b)} != {sorted(WEBHOOK_BODY_KEYS)}")
        did = b.get("delegation_id")
        if not (isinstance(did, str) and did.startswith("del_")):
            rec.fail(f"body.delegation_id {did!r}")
        if rec.headers.get("x-nexra-delegation") != did:
            rec.fail(f"X-Nexra-Delegation {rec.headers.get('x-nexra-delegation')!r} != {did!r}")
        if rec.headers.get("webhook-id") != did:
            rec.fail(f"webhook-id {rec.headers.get('webhook-id')!r} != {did!r}")
        if agent.capability and b.get("capability") != agent.capability:
            rec.fail(f"body.capability {b.get('capability')!r} != {agent.capability!r}")
        exp_at = b.get("expires_at")
        if not (isinstance(exp_at, int) and not isinstance(exp_at, bool)):
            rec.fail(f"body.expires_at {exp_at!r} is not an integer")
        cap = b.get("budget_cap")
        if not (isinstance(cap, (int, float)) and not isinstance(cap, bool)):
            rec.fail(f"body.budget_cap {cap!r} is not a number")

        auth = rec.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            rec.fail(f"Authorization {auth[:40]!r} is not a Bearer token")
            rec.checks["jwt"] = False
            return
        tok = auth[len("Bearer "):]
        try:
            rec.jwt_header = jwt.get_unverified_header(tok)
            rec.claims = jwt.decode(
                tok, agent.secret.encode(), algorithms=["HS256"], audience=agent.agent_id,
                issuer="nexra", leeway=CLOCK_SLACK,
                options={"require": sorted(JWT_CLAIMS - {"org_id", "scope",
                                                         "budget_cap_usd"})})
            rec.checks["jwt"] = True
        except jwt.PyJWTError as e:
            rec.checks["jwt"] = False
            rec.fail(f"JWT does not verify: {e!r}")
            return
        if rec.jwt_header != {"alg": "HS256", "typ": "JWT"}:
            rec.fail(f"JWT header {rec.jwt_header}")
        c = rec.claims
        if set(c) != JWT_CLAIMS:
            rec.fail(f"JWT claims {sorted(c)} != {sorted(JWT_CLAIMS)}")
        if c.get("aud") != agent.agent_id:
            rec.fail(f"aud {c.get('aud')!r}")
        if agent.caller is not None and c.get("sub") != agent.caller:
            rec.fail(f"sub {c.get('sub')!r} != caller {agent.caller!r}")
        if agent.org_id is not None and c.get("org_id") != agent.org_id:
            rec.fail(f"org_id {c.get('org_id')!r} != {agent.org_id!r}")
        if c.get("jti") != did:
            rec.fail(f"jti {c.get('jti')!r} != delegation id {did!r}")
        if c.get("scope") != b.get("capability"):
            rec.fail(f"scope {c.get('scope')!r} != capability {b.get('capability')!r}")
        if c.get("budget_cap_usd") != cap:
            rec.fail(f"budget_cap_usd {c.get('budget_cap_usd')!r} != body.budget_cap {cap!r}")
        if c.get("exp") != exp_at:
            rec.fail(f"exp {c.get('exp')!r} != body.expires_at {exp_at!r}")
        now = time.time()
        for k in ("iat", "nbf"):
            if not isinstance(c.get(k), int) or abs(c[k] - now) > CLOCK_SLACK:
                rec.fail(f"{k} {c.get(k)!r} is not close to now ({int(now)})")
        if isinstance(c.get("exp"), int) and isinstance(c.get("iat"), int) and c["exp"] <= c["iat"]:
            rec.fail(f"exp {c['exp']} not after iat {c['iat']}")


# --------------------------------------------------------------------------
# Assertions on records

def assert_webhook(rec, data, *, org_id, task_input, timeout_ms=None):
    """rec is the webhook for the delegation object data: everything the
    callee got must be what the delegation says."""
    assert rec.ok, rec.errors
    assert rec.role == "webhook"
    assert rec.agent_id == data["callee_agent_id"]
    b, c = rec.json, rec.claims
    assert b["delegation_id"] == data["delegation_id"]
    assert b["capability"] == data["capability"]
    assert b["task"] == task_input, (b["task"], task_input)
    assert b["budget_cap"] == data["budget_cap_usd"]
    assert b["expires_at"] == data["expires_at"]
    assert c["sub"] == data["caller_agent_id"]
    assert c["aud"] == data["callee_agent_id"]
    assert c["org_id"] == org_id
    assert c["scope"] == data["capability"]
    assert c["budget_cap_usd"] == data["budget_cap_usd"]
    assert c["jti"] == data["delegation_id"]
    assert c["exp"] == data["expires_at"]
    assert abs(c["iat"] - rec.received) <= CLOCK_SLACK
    if timeout_ms is not None:
        # dispatch time plus timeout_ms, rounded up to the second
        assert math.ceil(timeout_ms / 1000) <= c["exp"] - c["iat"] <= math.ceil(timeout_ms / 1000) + 1, \
            (c, timeout_ms)
        assert abs(c["exp"] - (rec.received + timeout_ms / 1000)) <= 2, (c, rec.received, timeout_ms)


def assert_callback(rec, delegation_id):
    assert rec.ok, rec.errors
    assert rec.role == "callback"
    assert rec.json["delegation_id"] == delegation_id
    assert rec.headers.get("x-nexra-delegation") == delegation_id
    assert rec.headers.get("webhook-id") == f"{delegation_id}.callback", rec.headers
    assert "authorization" not in rec.headers, "a callback carries no delegation token"


# --------------------------------------------------------------------------
# An org set up for delegations

IN_SCHEMA = {
    "type": "object",
    "required": ["company_name"],
    "properties": {
        "company_name": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}
OUT_SCHEMA = {
    "type": "object",
    "required": ["summary"],
    "properties": {"summary": {"type": "string"}},
}
OPEN_POLICY = 'rules:\n  - capability: "*"\n'


def new_secret():
    import secrets
    return "sec-" + secrets.token_hex(20)  # 44 characters


class DelegationOrg:
    """A fresh org with a caller agent, callees served by `callee`, and
    (by default) a policy that allows everything."""

    def __init__(self, server, callee, policy=OPEN_POLICY, caller_capability="other",
                 caller_secret=None):
        self.server = server
        self.callee = callee
        d = register_org_data(server)
        self.org_id = d["org_id"]
        self.live_key = d["api_key"]
        self.test_key = d["test_api_key"]
        self.admin = Api(server, self.live_key)
        self.caller_id = unique("caller")
        self.caller_secret = caller_secret or new_secret()
        self._register(self.caller_id, self.caller_secret, caller_capability, 0.01,
                       description="The calling agent")
        callee.add_agent(self.caller_id, self.caller_secret, role="callback")
        self.api = Api(server, self.live_key, agent_id=self.caller_id)
        self.test = Api(server, self.test_key, agent_id=self.caller_id)
        if policy:
            self.policy(policy)

    def _register(self, agent_id, secret, capability, price, **over):
        body = {
            "agent_id": agent_id,
            "name": over.pop("name", f"Agent {agent_id}"),
            "description": over.pop("description", "Researches companies"),
            "capability_type": capability,
            "webhook_url": over.pop("webhook_url", self.callee.hook_url(agent_id)),
            "webhook_secret": secret,
            "pricing": {"per_call_usd": price},
            "sla": {"p99_latency_ms": over.pop("p99", 3000), "availability": 0.99},
            "input_schema": over.pop("input_schema", IN_SCHEMA),
            "output_schema": over.pop("output_schema", OUT_SCHEMA),
            "is_public": False,
        }
        body.update(over)
        return expect_ok(self.admin.post("/v1/agents/register", body), 201)

    def add_callee(self, agent_id=None, capability="research", price=0.05, secret=None,
                   behaviour=None, **over):
        agent_id = agent_id or unique("callee")
        secret = secret or new_secret()
        self.callee.add_agent(agent_id, secret, org_id=self.org_id, capability=capability,
                              caller=self.caller_id)
        if behaviour is not None:
            self.callee.behave(agent_id, behaviour)
        self._register(agent_id, secret, capability, price, **over)
        return agent_id

    def policy(self, yaml, priority=10, name=None):
        return expect_ok(self.admin.post("/v1/policies", {
            "name": name or unique("pol"), "yaml": yaml, "priority": priority}), 201)

    def body(self, callee=None, input=None, cap=0.25, **extra):
        b = {}
        if callee is not None:
            b["callee_agent_id"] = callee
        b["task"] = {"input": {"company_name": "Acme Corp"} if input is None else input}
        b["budget_cap_usd"] = cap
        b.update(extra)
        return b

    def delegate(self, callee=None, input=None, cap=0.25, api=None, headers=None, **extra):
        return (api or self.api).post("/v1/delegate", self.body(callee, input, cap, **extra),
                                      headers=headers)

    def get(self, delegation_id, api=None):
        return expect_ok((api or self.admin).get(f"/v1/delegations/{delegation_id}"))

    def agent(self, agent_id):
        return expect_ok(self.admin.get(f"/v1/agents/{agent_id}"))

    def list_all(self, api=None, **params):
        """Every delegation the list returns for these filters, following
        the pages."""
        out, offset = [], 0
        while True:
            r = (api or self.admin).get("/v1/delegations",
                                        params=dict(params, limit=200, offset=offset))
            assert r.status_code == 200, r.text[:500]
            body = r.json()
            out += body["data"]
            if not body["meta"].get("has_more"):
                return out
            offset += 200
