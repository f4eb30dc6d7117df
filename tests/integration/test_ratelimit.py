"""Per-org rate limits (issue 2 point 6): exact under concurrency, 429 with
Retry-After and the RateLimit-* headers."""
import concurrent.futures
import threading

import requests

from helpers import (HTTP_TIMEOUT, Api, check_envelope, expect_error, expect_ok,
                     flip_char, register_org, unique)


def _int_header(r, name):
    v = r.headers.get(name)
    assert v is not None, f"missing {name} header: {dict(r.headers)}"
    assert v.strip().isdigit(), f"{name}: {v!r} is not a non-negative integer"
    return int(v)


def fire(server, key, n, threads=16, path="/v1/orgs/me"):
    local = threading.local()

    def one(_):
        s = getattr(local, "s", None)
        if s is None:
            s = local.s = requests.Session()
            s.headers["Authorization"] = f"Bearer {key}"
        return s.get(server.url + path, timeout=HTTP_TIMEOUT)

    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        return list(ex.map(one, range(n)))


def test_starter_limit_exact_under_concurrency(server):
    _, live, _ = register_org(server, "starter")
    rs = fire(server, live, 100)
    codes = [r.status_code for r in rs]
    assert codes.count(200) == 100, f"{codes.count(200)} of 100 succeeded: {sorted(set(codes))}"
    remaining = []
    for r in rs:
        check_envelope(r)
        assert _int_header(r, "RateLimit-Limit") == 100
        remaining.append(_int_header(r, "RateLimit-Remaining"))
    assert sorted(remaining) == list(range(100)), \
        f"RateLimit-Remaining values are not exactly 0..99: {sorted(remaining)}"

    r = Api(server, live).get("/v1/orgs/me")
    err = expect_error(r, 429, "RATE_LIMITED")
    assert err["message"]
    retry = _int_header(r, "Retry-After")
    assert 1 <= retry <= 60, retry
    assert _int_header(r, "RateLimit-Limit") == 100
    assert _int_header(r, "RateLimit-Remaining") == 0
    assert 1 <= _int_header(r, "RateLimit-Reset") <= 60
    assert r.headers.get("RateLimit-Policy", "").replace(" ", "") == "100;w=60"

    # another org is unaffected
    _, other, _ = register_org(server, "starter")
    r = Api(server, other).get("/v1/orgs/me")
    expect_ok(r)
    assert _int_header(r, "RateLimit-Remaining") == 99


def test_overload_burst_admits_exactly_the_limit(server):
    _, live, _ = register_org(server, "starter")
    rs = fire(server, live, 140, threads=16)
    codes = [r.status_code for r in rs]
    assert codes.count(200) == 100 and codes.count(429) == 40, \
        f"200: {codes.count(200)}, 429: {codes.count(429)}, other: {set(codes) - {200, 429}}"
    for r in rs:
        check_envelope(r)
        if r.status_code == 429:
            assert r.json()["error"]["code"] == "RATE_LIMITED"
            assert _int_header(r, "Retry-After") >= 1


def test_remaining_decreases(server):
    _, live, _ = register_org(server, "starter")
    a = Api(server, live)
    seen = []
    for _ in range(4):
        r = a.get("/v1/orgs/me")
        expect_ok(r)
        assert _int_header(r, "RateLimit-Limit") == 100
        assert r.headers.get("RateLimit-Policy", "").replace(" ", "") == "100;w=60"
        reset = _int_header(r, "RateLimit-Reset")
        assert 1 <= reset <= 60, reset
        seen.append(_int_header(r, "RateLimit-Remaining"))
    assert seen == [99, 98, 97, 96], seen


def test_growth_headers_and_errors_are_counted(server):
    _, live, _ = register_org(server, "growth")
    a = Api(server, live)
    r = a.get("/v1/orgs/me")
    expect_ok(r)
    assert _int_header(r, "RateLimit-Limit") == 1000
    assert _int_header(r, "RateLimit-Remaining") == 999
    assert r.headers.get("RateLimit-Policy", "").replace(" ", "") == "1000;w=60"
    # every authenticated response carries the headers, errors included
    r = a.get("/v1/agents/" + unique("missing"))
    expect_error(r, 404, "NOT_FOUND")
    assert _int_header(r, "RateLimit-Remaining") == 998
    r = a.post("/v1/agents/register", {"nope": 1})
    expect_error(r, 400, "VALIDATION_ERROR")
    assert _int_header(r, "RateLimit-Remaining") == 997


def test_live_and_test_keys_share_the_org_budget(server):
    _, live, test = register_org(server, "starter")
    assert [r.status_code for r in fire(server, live, 60, threads=8)].count(200) == 60
    assert [r.status_code for r in fire(server, test, 40, threads=8)].count(200) == 40
    expect_error(Api(server, test).get("/v1/orgs/me"), 429, "RATE_LIMITED")
    expect_error(Api(server, live).get("/v1/keys"), 429, "RATE_LIMITED")


def test_unauthorized_requests_not_counted(server):
    _, live, _ = register_org(server, "starter")
    a = Api(server, live)
    k = expect_ok(a.post("/v1/keys", {"kind": "live"}), 201)        # 1
    expect_ok(a.delete(f"/v1/keys/{k['key_id']}"))                  # 2
    bad = [k["api_key"], flip_char(live, 62), live[:-1]]
    for key in bad * 3:
        r = requests.get(server.url + "/v1/orgs/me",
                         headers={"Authorization": f"Bearer {key}"}, timeout=5)
        expect_error(r, 401, "UNAUTHORIZED")
    r = a.get("/v1/orgs/me")                                         # 3
    expect_ok(r)
    assert _int_header(r, "RateLimit-Remaining") == 97


def test_rate_limits_flag(start_server):
    srv = start_server("--dev", "--rate-limits", "starter=5,growth=7")
    _, s_live, _ = register_org(srv, "starter")
    _, g_live, _ = register_org(srv, "growth")
    me = expect_ok(Api(srv, s_live).get("/v1/orgs/me"))
    assert me["rate_limit"] == {"limit": 5, "window_seconds": 60}
    codes = [r.status_code for r in fire(srv, s_live, 10, threads=4)]
    assert codes.count(200) == 4 and codes.count(429) == 6, codes
    codes = [r.status_code for r in fire(srv, g_live, 10, threads=4)]
    assert codes.count(200) == 7 and codes.count(429) == 3, codes
    r = Api(srv, g_live).get("/v1/orgs/me")
    expect_error(r, 429, "RATE_LIMITED")
    assert _int_header(r, "RateLimit-Limit") == 7
