"""Service endpoints, envelope, request ids, logs, routing and shutdown
(issue 2 points 2 and 8)."""
import json
import re
import signal
import threading
import time

import pytest
import requests

from helpers import (Api, agent_body, check_envelope, expect_error, expect_ok,
                     raw_connect, raw_read_response, register_org, request_head,
                     REQ_ID_RE, unique)


def test_healthz(server, backend):
    r = requests.get(server.url + "/healthz", timeout=5)
    data = expect_ok(r, 200)
    assert data["status"] == "ok"
    assert data["db"] == backend


def test_prints_listen_address(server):
    assert server.listen_line is not None, (
        "server did not print 'listening on http://HOST:PORT' with the real port "
        "when started with --listen 127.0.0.1:0")
    assert server.listen_line == f"listening on http://127.0.0.1:{server.port}"


def _parse_metrics(text):
    """Returns {series: value} for every sample line and {name: type}."""
    samples, types = {}, {}
    line_re = re.compile(
        r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?\s+(\S+)(\s+-?\d+)?$')
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            m = re.match(r"^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$", line)
            if m:
                types[m.group(1)] = m.group(2)
            else:
                assert re.match(r"^# (HELP \S+ .*|TYPE .*|.*)$", line), line
            continue
        m = line_re.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        v = m.group(3)
        value = float(v)  # also accepts NaN, +Inf
        samples[m.group(1) + (m.group(2) or "")] = value
    return samples, types


def test_metrics_prometheus_text_and_counts_requests(server):
    r = requests.get(server.url + "/metrics", timeout=5)
    assert r.status_code == 200
    assert r.headers.get("Content-Type", "").startswith("text/plain"), r.headers
    before, types = _parse_metrics(r.text)
    assert before, "no samples in /metrics"
    assert types, "no # TYPE lines in /metrics"
    n = 7
    for _ in range(n):
        assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
    r2 = requests.get(server.url + "/metrics", timeout=5)
    after, _ = _parse_metrics(r2.text)
    grown = {k: after[k] - before.get(k, 0.0) for k in after
             if "request" in k.split("{")[0] and after[k] - before.get(k, 0.0) >= n}
    assert grown, ("no request-counting series grew by >= %d after %d requests; "
                   "series with 'request' in the name: %s" %
                   (n, n, {k: v for k, v in after.items() if "request" in k}))


def test_request_id_header_matches_meta(server):
    _, live, _ = register_org(server)
    a = Api(server, live)
    responses = [
        requests.get(server.url + "/healthz", timeout=5),
        a.get("/v1/orgs/me"),
        a.get("/v1/agents/" + unique("missing")),                   # 404
        requests.get(server.url + "/v1/orgs/me", timeout=5),         # 401
        a.post("/v1/agents/register", {"bogus": 1}),                 # 400
    ]
    ids = set()
    for r in responses:
        body = check_envelope(r)  # asserts X-Request-ID == meta.request_id
        ids.add(body["meta"]["request_id"])
    assert len(ids) == len(responses), "request ids are not unique"


def test_request_ids_unique(server):
    ids = [check_envelope(requests.get(server.url + "/healthz", timeout=5))["meta"]["request_id"]
           for _ in range(30)]
    assert len(set(ids)) == 30


def _find_log_line(server, rid, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        for line in server.logs().splitlines():
            if rid not in line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and rid in json.dumps(obj):
                return obj
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def test_json_log_line_with_request_id(server):
    r = requests.get(server.url + "/healthz", timeout=5)
    rid = check_envelope(r)["meta"]["request_id"]
    obj = _find_log_line(server, rid)
    assert obj is not None, f"no JSON log line carrying {rid}\n{server.tail()}"
    # the request id is a field of its own, not only part of a message
    assert rid in [v for v in obj.values() if isinstance(v, str)] or \
        obj.get("request_id") == rid, obj

    _, live, _ = register_org(server)
    r = Api(server, live).get("/v1/agents/" + unique("missing"))
    expect_error(r, 404, "NOT_FOUND")
    rid = r.json()["meta"]["request_id"]
    assert _find_log_line(server, rid) is not None, f"no JSON log line for error request {rid}"


def test_logs_never_contain_keys_or_secrets(server):
    _, live, test = register_org(server)
    a = Api(server, live)
    body = agent_body(unique("agent"))
    expect_ok(a.post("/v1/agents/register", body), 201)
    expect_ok(a.get("/v1/agents/" + body["agent_id"]))
    expect_ok(Api(server, test).get("/v1/orgs/me"))
    k = expect_ok(a.post("/v1/keys", {"kind": "live", "name": "x"}), 201)["api_key"]
    expect_ok(Api(server, k).get("/v1/keys"))
    time.sleep(0.3)
    logs = server.logs()
    for secret in (live, test, k, body["webhook_secret"]):
        assert secret not in logs, f"secret {secret[:12]}... appears in the server log"
        assert secret[8:60] not in logs, "key body appears in the server log"


def test_unknown_route_404(server):
    _, live, _ = register_org(server)
    expect_error(requests.get(server.url + "/nope", timeout=5), 404, "NOT_FOUND")
    expect_error(Api(server, live).get("/v1/nope"), 404, "NOT_FOUND")
    expect_error(Api(server, live).get("/v1/agents/x/y/z"), 404, "NOT_FOUND")


@pytest.mark.parametrize("method,path,allowed", [
    ("DELETE", "/healthz", {"GET"}),
    ("POST", "/metrics", {"GET"}),
    ("GET", "/v1/orgs/register", {"POST"}),
    ("POST", "/v1/orgs/me", {"GET"}),
    ("PATCH", "/v1/agents/some-agent", {"GET", "PUT", "DELETE"}),
    ("GET", "/v1/agents/register", None),  # may match GET /v1/agents/{id}
    ("PUT", "/v1/keys", {"GET", "POST"}),
    ("GET", "/v1/agents/some-agent/activate", {"POST"}),
])
def test_wrong_method_405(server, method, path, allowed):
    _, live, _ = register_org(server)
    r = Api(server, live).request(method, path)
    if allowed is None:
        # GET /v1/agents/register reads an agent named "register": 404 is right.
        assert r.status_code in (404, 405), r.text
        check_envelope(r)
        return
    expect_error(r, 405, "METHOD_NOT_ALLOWED")
    allow = {m.strip().upper() for m in r.headers.get("Allow", "").split(",") if m.strip()}
    assert allowed <= allow, f"Allow header {r.headers.get('Allow')!r} lacks {allowed}"
    assert method not in allow


def _http_parts(server, key, body):
    head = request_head("POST", "/v1/agents/register", {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "Connection": "close",
    })
    return head


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_shutdown_clean_with_request_in_flight(start_server, backend, sig):
    srv = start_server("--dev", backend=backend)
    _, live, _ = register_org(srv)
    body = json.dumps(agent_body("in-flight-agent")).encode()
    half = len(body) // 2
    s = raw_connect(srv)
    try:
        s.sendall(_http_parts(srv, live, body) + body[:half])
        time.sleep(0.4)
        srv.send_signal(sig)
        time.sleep(0.6)
        assert srv.running, (f"server exited ({srv.proc.returncode}) while a request "
                             f"was in flight\n{srv.tail()}")
        # a new request during shutdown: refused, or 503 UNAVAILABLE
        try:
            r = requests.get(srv.url + "/healthz", timeout=2)
            expect_error(r, 503, "UNAVAILABLE")
        except requests.RequestException:
            pass
        s.sendall(body[half:])
        resp = raw_read_response(s, timeout=10)
    finally:
        s.close()
    assert resp.status == 201, f"in-flight request got {resp.status} {resp.body[:300]!r}"
    env = resp.json()
    assert REQ_ID_RE.match(env["meta"]["request_id"])
    assert env["data"]["agent_id"] == "in-flight-agent"
    assert env["data"]["status"] == "probationary"
    rc = srv.wait(10)
    assert rc == 0, f"exit status {rc} (None: still running 10 s after the signal)\n{srv.tail()}"
    # the write that was answered 201 is durable
    srv2 = start_server.restart_of(srv)
    got = expect_ok(Api(srv2, live).get("/v1/agents/in-flight-agent"))
    assert got["status"] == "probationary"
    assert srv2.stop() == 0


def test_sigterm_idle_exits_zero(start_server, backend):
    srv = start_server("--dev", backend=backend)
    _, live, _ = register_org(srv)
    # an idle keep-alive connection must not hold the shutdown up
    sess = requests.Session()
    sess.headers["Authorization"] = f"Bearer {live}"
    assert sess.get(srv.url + "/v1/orgs/me", timeout=5).status_code == 200
    t0 = time.monotonic()
    rc = srv.stop(signal.SIGTERM, 10)
    assert rc == 0, f"exit status {rc}\n{srv.tail()}"
    assert time.monotonic() - t0 < 10
    sess.close()


def test_concurrent_clients_are_served(server):
    _, live, _ = register_org(server)
    errors = []

    def worker():
        a = Api(server, live)
        try:
            for _ in range(10):
                expect_ok(a.get("/v1/orgs/me"))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_configuration_from_environment(start_server, backend):
    """NEXRA_LISTEN, NEXRA_DB and NEXRA_DEV=1 stand in for the flags."""
    srv = start_server(backend=backend, flags=False, env={"NEXRA_DEV": "1"})
    data = expect_ok(requests.get(srv.url + "/healthz", timeout=5))
    assert data["db"] == backend
    _, live, _ = register_org(srv)  # open sign-up: dev mode
    a = Api(srv, live)
    body = agent_body(unique("envdev"), webhook_url="http://127.0.0.1:9/hook")
    expect_ok(a.post("/v1/agents/register", body), 201)
    assert srv.stop() == 0
    # no --master-key-file: the key is generated next to the SQLite file,
    # else under ./var/ of the working directory
    import os
    if backend == "sqlite":
        assert os.path.exists(os.path.join(os.path.dirname(srv.sqlite_path), "master.key"))
    else:
        assert os.path.exists(os.path.join(srv.workdir, "var", "master.key"))


def test_shutdown_grace_bounds_stalled_clients(start_server):
    srv = start_server("--dev", "--shutdown-grace", "1")
    _, live, _ = register_org(srv)
    body = json.dumps(agent_body("stalled-agent")).encode()
    s = raw_connect(srv)
    try:
        s.sendall(_http_parts(srv, live, body) + body[:50])  # and never the rest
        time.sleep(0.3)
        t0 = time.monotonic()
        srv.send_signal(signal.SIGTERM)
        rc = srv.wait(8)
        elapsed = time.monotonic() - t0
    finally:
        s.close()
    assert rc == 0, f"exit status {rc} (None: still running 8 s after SIGTERM)\n{srv.tail()}"
    assert elapsed < 5, f"took {elapsed:.1f} s to stop with --shutdown-grace 1"


def test_one_log_line_per_request(server):
    _, live, _ = register_org(server)
    a = Api(server, live)
    rids = []
    for path in ("/v1/orgs/me", "/v1/agents", "/v1/keys", "/v1/agents/" + unique("nope"),
                 "/v1/nope"):
        r = a.get(path)
        rids.append(check_envelope(r)["meta"]["request_id"])
    time.sleep(0.3)
    lines = server.logs().splitlines()
    for rid in rids:
        hits = [ln for ln in lines if rid in ln]
        assert len(hits) == 1, f"{rid}: {len(hits)} log lines"
        obj = json.loads(hits[0])
        assert obj.get("request_id") == rid, obj


def test_idle_and_slow_connections_do_not_block(server):
    import socket
    _, live, _ = register_org(server)
    socks = []
    try:
        for _ in range(200):  # half-sent request heads
            s = socket.create_connection((server.host, server.port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        for _ in range(30):  # half-sent bodies
            s = socket.create_connection((server.host, server.port), timeout=5)
            s.sendall(_http_parts(server, live, b"x" * 1000) + b"{")
            socks.append(s)
        t0 = time.monotonic()
        expect_ok(requests.get(server.url + "/healthz", timeout=5))
        expect_ok(Api(server, live).get("/v1/orgs/me"))
        assert time.monotonic() - t0 < 2, "idle connections slowed other clients down"
    finally:
        for s in socks:
            s.close()
