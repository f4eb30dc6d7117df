"""Request bounds and parsing (issue 2 point 8) and the seed's Installation
curl commands ("How it is shown")."""
import json
import shlex
import shutil
import subprocess

import pytest
import requests

from helpers import (Api, agent_body, check_envelope, expect_error, expect_ok,
                     raw_connect, raw_read_response, raw_send_parts, readable,
                     register_org, request_head, REQ_ID_RE, unique)

MIB = 1024 * 1024


def new_org_client(server):
    _, live, _ = register_org(server)
    return Api(server, live)


def padded_agent_body(agent_id, total):
    """A register body of exactly `total` bytes (description padded)."""
    body = agent_body(agent_id, description="")
    base = len(json.dumps(body).encode())
    body["description"] = "d" * (total - base)
    raw = json.dumps(body).encode()
    assert len(raw) == total
    return raw


def assert_raw_error(resp, status, code):
    assert resp.status == status, f"{resp.status} {resp.body[:300]!r}"
    env = resp.json()
    assert REQ_ID_RE.match(env["meta"]["request_id"])
    assert env["error"]["code"] == code, env
    assert isinstance(env["error"]["details"], dict)
    assert resp.headers.get("x-request-id") == env["meta"]["request_id"]


def _send_with_length(server, key, raw, declared=None, wait_first=0.0):
    s = raw_connect(server)
    try:
        head = request_head("POST", "/v1/agents/register", {
            "Authorization": f"Bearer {key}", "Content-Type": "application/json",
            "Content-Length": str(declared if declared is not None else len(raw)),
            "Connection": "close"})
        s.sendall(head)
        answered_early = readable(s, wait_first) if wait_first else False
        if not answered_early:
            parts = [raw[i:i + 65536] for i in range(0, len(raw), 65536)]
            raw_send_parts(s, parts)
        return raw_read_response(s, timeout=15), answered_early
    finally:
        s.close()


def test_body_over_1mib_with_content_length(server):
    a = new_org_client(server)
    raw = padded_agent_body("too-big", MIB + 1)
    resp, _ = _send_with_length(server, a.key, raw)
    assert_raw_error(resp, 413, "PAYLOAD_TOO_LARGE")
    expect_error(a.get("/v1/agents/too-big"), 404, "NOT_FOUND")
    assert expect_ok(requests.get(server.url + "/healthz", timeout=5))["status"] == "ok"


def test_body_over_1mib_rejected_before_reading(server):
    a = new_org_client(server)
    raw = padded_agent_body("too-big-early", 8 * MIB)
    resp, early = _send_with_length(server, a.key, raw, wait_first=3.0)
    assert_raw_error(resp, 413, "PAYLOAD_TOO_LARGE")
    assert early, "413 was not sent on the Content-Length alone (server waited for the body)"


def test_body_exactly_1mib_not_too_large(server):
    a = new_org_client(server)
    raw = padded_agent_body("exactly-1mib", MIB)
    resp, _ = _send_with_length(server, a.key, raw)
    # the description is far over 4000 chars: a 400, but not a 413
    assert resp.status == 400, f"{resp.status} {resp.body[:300]!r}"
    env = resp.json()
    assert env["error"]["code"] == "VALIDATION_ERROR"
    assert env["error"]["details"].get("field") == "description"


def _send_chunked(server, key, raw, chunk=65536):
    s = raw_connect(server)
    try:
        head = request_head("POST", "/v1/agents/register", {
            "Authorization": f"Bearer {key}", "Content-Type": "application/json",
            "Transfer-Encoding": "chunked", "Connection": "close"})
        parts = [head]
        for i in range(0, len(raw), chunk):
            piece = raw[i:i + chunk]
            parts.append(b"%x\r\n" % len(piece) + piece + b"\r\n")
        parts.append(b"0\r\n\r\n")
        raw_send_parts(s, parts)
        return raw_read_response(s, timeout=15)
    finally:
        s.close()


def test_body_over_1mib_chunked(server):
    a = new_org_client(server)
    raw = padded_agent_body("too-big-chunked", MIB + 4096)
    resp = _send_chunked(server, a.key, raw)
    assert_raw_error(resp, 413, "PAYLOAD_TOO_LARGE")
    expect_error(a.get("/v1/agents/too-big-chunked"), 404, "NOT_FOUND")
    assert expect_ok(requests.get(server.url + "/healthz", timeout=5))["status"] == "ok"


def test_chunked_body_within_limit_accepted(server):
    a = new_org_client(server)
    raw = json.dumps(agent_body("chunked-ok")).encode()
    resp = _send_chunked(server, a.key, raw, chunk=50)
    assert resp.status == 201, f"{resp.status} {resp.body[:300]!r}"
    assert resp.json()["data"]["agent_id"] == "chunked-ok"
    expect_ok(a.get("/v1/agents/chunked-ok"))


@pytest.mark.parametrize("raw", [
    b"{", b'{"agent_id": ', b'{"agent_id": "x",}', b"nul", b"{'agent_id': 'x'}",
    b'{"agent_id": "x"} trailing', b'{"agent_id": "x"}{}', b'{"agent_id": "\xff\xfe"}',
    b'{"agent_id": "a\x00b"}', b'{"agent_id": "\\ud800"}',
], ids=["open-brace", "truncated", "trailing-comma", "bad-literal", "single-quotes",
        "trailing-garbage", "two-values", "invalid-utf8", "raw-nul", "lone-surrogate"])
def test_malformed_json(server, raw):
    a = new_org_client(server)
    r = a.request("POST", "/v1/agents/register", data=raw,
                  headers={"Content-Type": "application/json"})
    expect_error(r, 400, "VALIDATION_ERROR")
    assert expect_ok(a.get("/v1/agents")) == []


def test_malformed_json_other_routes(server):
    a = new_org_client(server)
    agent_id = unique("ag")
    expect_ok(a.post("/v1/agents/register", agent_body(agent_id)), 201)
    hdr = {"Content-Type": "application/json"}
    for method, path in (("PUT", f"/v1/agents/{agent_id}"), ("POST", "/v1/keys")):
        r = a.request(method, path, data=b'{"name": ', headers=hdr)
        expect_error(r, 400, "VALIDATION_ERROR")
    r = requests.post(server.url + "/v1/orgs/register", data=b"{,}", headers=hdr, timeout=5)
    expect_error(r, 400, "VALIDATION_ERROR")
    assert len(expect_ok(a.get("/v1/keys"))) == 2


def nested_schema(depth):
    """An object nested `depth` levels deep (depth 1 == {})."""
    s = "{}"
    for _ in range(depth - 1):
        s = '{"a":' + s + "}"
    return s


def register_with_total_depth(client, agent_id, total_depth):
    """Registers an agent whose whole body is nested total_depth deep: the
    body object is level 1, input_schema level 2."""
    body = json.dumps(agent_body(agent_id, input_schema={"__X__": 1}))
    text = body.replace('{"__X__": 1}', nested_schema(total_depth - 1))
    return client.request("POST", "/v1/agents/register", data=text.encode(),
                          headers={"Content-Type": "application/json"})


DEPTH_WORDS = ("depth", "deep", "nest")


def test_json_depth_65_rejected(server):
    a = new_org_client(server)
    r = register_with_total_depth(a, "deep-65", 65)
    err = expect_error(r, 400, "VALIDATION_ERROR")
    assert any(w in err["message"].lower() for w in DEPTH_WORDS), \
        f"message does not say the body is too deep: {err}"
    expect_error(a.get("/v1/agents/deep-65"), 404, "NOT_FOUND")


def test_json_depth_64_not_rejected_for_depth(server):
    a = new_org_client(server)
    r = register_with_total_depth(a, "deep-64", 64)
    check_envelope(r)
    if r.status_code == 400:
        msg = r.json()["error"]["message"].lower()
        assert not any(w in msg for w in DEPTH_WORDS), f"64 levels rejected for depth: {r.text}"
    else:
        assert r.status_code == 201, r.text


def test_json_depth_arrays_and_extreme_nesting(server):
    a = new_org_client(server)
    for text in ("[" * 65 + "]" * 65, "[" * 100000, '{"a":' * 50000):
        r = a.request("POST", "/v1/agents/register", data=text.encode(),
                      headers={"Content-Type": "application/json"})
        expect_error(r, 400, "VALIDATION_ERROR")
    assert expect_ok(requests.get(server.url + "/healthz", timeout=5))["status"] == "ok"
    assert expect_ok(a.get("/v1/agents")) == []


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", "application/xml",
                                   "application/jsonx", "text/json"])
def test_wrong_content_type_415(server, ctype):
    a = new_org_client(server)
    body = json.dumps(agent_body("ctype-agent")).encode()
    r = a.request("POST", "/v1/agents/register", data=body, headers={"Content-Type": ctype})
    expect_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    expect_error(a.get("/v1/agents/ctype-agent"), 404, "NOT_FOUND")
    r = a.request("POST", "/v1/keys", data=b"{}", headers={"Content-Type": ctype})
    expect_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert len(expect_ok(a.get("/v1/keys"))) == 2


def test_json_content_type_with_charset_accepted(server):
    a = new_org_client(server)
    body = json.dumps(agent_body("charset-agent")).encode()
    r = a.request("POST", "/v1/agents/register", data=body,
                  headers={"Content-Type": "application/json; charset=utf-8"})
    expect_ok(r, 201)


def test_server_survives_garbage_requests(server):
    import socket
    for payload in (b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x00\x01\x02" * 100,
                    b"POST /v1/agents/register HTTP/1.1\r\nContent-Length: -5\r\n\r\n"):
        s = socket.create_connection((server.host, server.port), timeout=5)
        try:
            s.sendall(payload)
            s.settimeout(3)
            try:
                s.recv(4096)
            except (socket.timeout, ConnectionResetError):
                pass
        finally:
            s.close()
    assert expect_ok(requests.get(server.url + "/healthz", timeout=5))["status"] == "ok"


# --- the seed's Installation section, verbatim --------------------------

SEED_INSTALL = r"""
# 1) Create org and receive API key (returned once)
curl -X POST http://localhost:8000/v1/orgs/register \
  -H "Content-Type: application/json" \
  -d '{"name":"Acme AI","plan":"growth"}'

# 2) Use API key on authenticated call
curl http://localhost:8000/v1/orgs/me \
  -H "Authorization: Bearer nx_live_..."

# 3) First write call
curl -X POST http://localhost:8000/v1/agents/register \
  -H "Authorization: Bearer nx_live_..." \
  -H "Content-Type: application/json" \
  -d '{"agent_id":"research-agent-v2","name":"Research Agent","description":"Researches competitors and market positioning","capability_type":"research","input_schema":{"type":"object"},"output_schema":{"type":"object"},"pricing":{"per_call_usd":0.15},"sla":{"p99_latency_ms":3000,"availability":0.99},"webhook_url":"https://your-agent.com/execute","webhook_secret":"replace-with-32-char-secret","is_public":false}'
"""


def seed_commands():
    cmds = []
    for block in SEED_INSTALL.strip().split("\n\n"):
        lines = [ln for ln in block.splitlines() if not ln.startswith("#")]
        cmds.append(shlex.split(" ".join(ln.rstrip("\\").strip() for ln in lines)))
    return cmds


def run_curl(argv, server, key=None, replace=None):
    argv = [a.replace("http://localhost:8000", server.url) for a in argv]
    if key:
        argv = [a.replace("nx_live_...", key) for a in argv]
    if replace:
        argv = [a.replace(*replace) for a in argv]
    if shutil.which("curl"):
        p = subprocess.run(argv + ["-sS", "-i"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=20)
        assert p.returncode == 0, p.stderr.decode()
        out = p.stdout.decode()
        head, _, body = out.replace("\r\n", "\n").partition("\n\n")
        status = int(head.split()[1])
        return status, json.loads(body)
    # no curl: the same request with requests
    method = "POST" if "-X" in argv else "GET"
    url = next(a for a in argv if a.startswith("http"))
    hdrs = dict(argv[i + 1].split(": ", 1) for i, a in enumerate(argv) if a == "-H")
    data = next((argv[i + 1] for i, a in enumerate(argv) if a == "-d"), None)
    if data is not None and method == "GET":
        method = "POST"
    r = requests.request(method, url, headers=hdrs, data=data, timeout=20)
    return r.status_code, r.json()


def test_seed_installation_curl_verbatim(server):
    c1, c2, c3 = seed_commands()
    status, env = run_curl(c1, server)
    assert status == 201, env
    d = env["data"]
    assert d["name"] == "Acme AI" and d["plan"] == "growth"
    assert d["api_key"].startswith("nx_live_") and d["org_id"].startswith("org_")
    key = d["api_key"]

    status, env = run_curl(c2, server, key)
    assert status == 200, env
    assert env["data"]["org_id"] == d["org_id"]
    assert REQ_ID_RE.match(env["meta"]["request_id"])

    status, env = run_curl(c3, server, key)
    assert status == 400, env
    assert env["error"]["code"] == "VALIDATION_ERROR"
    assert env["error"]["details"].get("field") == "webhook_secret"
    assert "32" in env["error"]["message"], env
    a = Api(server, key)
    expect_error(a.get("/v1/agents/research-agent-v2"), 404, "NOT_FOUND")

    status, env = run_curl(c3, server, key,
                           replace=("replace-with-32-char-secret",
                                    "0123456789abcdef0123456789abcdef"))
    assert status == 201, env
    assert env["data"]["agent_id"] == "research-agent-v2"
    assert env["data"]["status"] == "probationary"
    assert "registered_at" in env["data"] and "embedding_id" in env["data"]
    got = expect_ok(a.get("/v1/agents/research-agent-v2"))
    assert got["name"] == "Research Agent" and got["pricing"] == {"per_call_usd": 0.15}
    assert got["sla"] == {"p99_latency_ms": 3000, "availability": 0.99}
