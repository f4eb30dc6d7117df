"""Orgs, API keys, authentication and sign-up modes (issue 2 points 4, 5)."""
import time

import pytest
import requests

from helpers import (ANY_KEY_RE, KEY_ID_RE, KEY_LIST_FIELDS, KEY_RE, Api,
                     check_envelope, expect_error, expect_ok, flip_char,
                     is_rfc3339z, key_checksum_ok, make_key, register_org_data,
                     unique)


def test_register_org_returns_keys_once(server):
    name = unique("Acme AI")
    d = register_org_data(server, "growth", name)
    assert d["org_id"].startswith("org_") and len(d["org_id"]) > 4
    assert d["name"] == name
    assert d["plan"] == "growth"
    assert d["api_key"].startswith("nx_live_") and len(d["api_key"]) == 67
    assert d["test_api_key"].startswith("nx_test_") and len(d["test_api_key"]) == 67
    assert KEY_RE.match(d["api_key"]) and KEY_RE.match(d["test_api_key"])
    assert d["api_key"][8:] != d["test_api_key"][8:]
    assert KEY_ID_RE.match(d["live_key_id"]) and KEY_ID_RE.match(d["test_key_id"])
    assert d["live_key_id"] != d["test_key_id"]
    assert is_rfc3339z(d["created_at"]), d["created_at"]


def test_issued_keys_follow_documented_checksum(server):
    d = register_org_data(server)
    for k in (d["api_key"], d["test_api_key"]):
        assert key_checksum_ok(k), f"checksum of {k[:16]}... does not follow docs/keys.md"
        # the 52-char body encodes 256 bits: its final 4 pad bits are zero
        assert k[59] in "aq", f"52nd body char {k[59]!r} has non-zero pad bits"
        # 7-char checksum of 32 bits: final 3 pad bits zero
        assert "abcdefghijklmnopqrstuvwxyz234567".index(k[66]) % 8 == 0


def test_two_orgs_get_distinct_ids_and_keys(server):
    a = register_org_data(server)
    b = register_org_data(server, name=a["name"])  # names need not be unique
    assert a["org_id"] != b["org_id"]
    assert a["api_key"] != b["api_key"]


@pytest.mark.parametrize("plan", ["starter", "growth"])
def test_register_plans(server, plan):
    d = register_org_data(server, plan)
    me = expect_ok(Api(server, d["api_key"]).get("/v1/orgs/me"))
    assert me["plan"] == plan
    assert me["rate_limit"] == {"limit": 100 if plan == "starter" else 1000,
                                "window_seconds": 60}


@pytest.mark.parametrize("body,field", [
    ({"name": "x", "plan": "enterprise"}, "plan"),
    ({"name": "x", "plan": "Growth"}, "plan"),
    ({"name": "x", "plan": 1}, "plan"),
    ({"name": "x", "plan": None}, "plan"),
    ({"name": "x"}, "plan"),
    ({"plan": "growth"}, "name"),
    ({"name": "", "plan": "growth"}, "name"),
    ({"name": "n" * 201, "plan": "growth"}, "name"),
    ({"name": 42, "plan": "growth"}, "name"),
    ({"name": ["x"], "plan": "growth"}, "name"),
    ({"name": "x", "plan": "growth", "admin": True}, "admin"),
], ids=["bad-plan", "plan-case", "plan-int", "plan-null", "plan-missing",
        "name-missing", "name-empty", "name-201", "name-int", "name-array", "unknown-field"])
def test_register_org_bad_input(server, body, field):
    r = requests.post(server.url + "/v1/orgs/register", json=body, timeout=10)
    err = expect_error(r, 400, "VALIDATION_ERROR", field=field)
    assert field in err["message"], f"message does not name the field: {err}"


def test_register_org_name_boundary(server):
    d = register_org_data(server, name="n" * 200)
    assert d["name"] == "n" * 200


def test_names_count_characters_not_bytes(server):
    d = register_org_data(server, name="é" * 150)  # 150 characters, 300 bytes
    assert d["name"] == "é" * 150
    k = expect_ok(Api(server, d["api_key"]).post("/v1/keys", {"name": "é" * 80}), 201)
    assert k["name"] == "é" * 80


@pytest.mark.parametrize("raw", [b"[]", b'"org"', b"null", b"{", b""])
def test_register_org_not_an_object(server, raw):
    r = requests.post(server.url + "/v1/orgs/register", data=raw,
                      headers={"Content-Type": "application/json"}, timeout=10)
    expect_error(r, 400, "VALIDATION_ERROR")


def test_orgs_me(server):
    d = register_org_data(server, "growth")
    me = expect_ok(Api(server, d["api_key"]).get("/v1/orgs/me"))
    assert me["org_id"] == d["org_id"]
    assert me["name"] == d["name"]
    assert me["plan"] == "growth"
    assert me["created_at"] == d["created_at"]
    assert me["rate_limit"] == {"limit": 1000, "window_seconds": 60}
    assert me["key"]["key_id"] == d["live_key_id"]
    assert me["key"]["kind"] == "live"
    assert "name" in me["key"]
    assert "api_key" not in me and d["api_key"] not in str(me)
    me_t = expect_ok(Api(server, d["test_api_key"]).get("/v1/orgs/me"))
    assert me_t["org_id"] == d["org_id"]
    assert me_t["key"] == {**me_t["key"], "key_id": d["test_key_id"], "kind": "test"}


def test_create_keys(server):
    d = register_org_data(server)
    a = Api(server, d["api_key"])
    k = expect_ok(a.post("/v1/keys", {"kind": "test", "name": "ci runner"}), 201)
    assert KEY_ID_RE.match(k["key_id"])
    assert k["kind"] == "test" and k["name"] == "ci runner"
    assert k["api_key"].startswith("nx_test_") and len(k["api_key"]) == 67
    assert key_checksum_ok(k["api_key"])
    assert k["prefix"] == k["api_key"][:16]
    assert is_rfc3339z(k["created_at"])
    me = expect_ok(Api(server, k["api_key"]).get("/v1/orgs/me"))
    assert me["org_id"] == d["org_id"]
    assert me["key"] == {"key_id": k["key_id"], "kind": "test", "name": "ci runner"}

    k2 = expect_ok(a.post("/v1/keys", {}), 201)
    assert k2["kind"] == "live" and k2["api_key"].startswith("nx_live_")
    assert k2["name"] in ("", None)
    expect_ok(Api(server, k2["api_key"]).get("/v1/orgs/me"))
    k3 = expect_ok(a.post("/v1/keys", {"kind": "live", "name": "n" * 100}), 201)
    assert k3["name"] == "n" * 100


@pytest.mark.parametrize("body,field", [
    ({"kind": "admin"}, "kind"),
    ({"kind": 1}, "kind"),
    ({"name": "n" * 101}, "name"),
    ({"name": 5}, "name"),
    ({"kind": "live", "scope": "all"}, "scope"),
])
def test_create_key_bad_input(server, body, field):
    d = register_org_data(server)
    a = Api(server, d["api_key"])
    expect_error(a.post("/v1/keys", body), 400, "VALIDATION_ERROR", field=field)
    keys = expect_ok(a.get("/v1/keys"))
    assert len(keys) == 2, "a rejected key creation wrote a key"


def test_list_keys_never_shows_secrets(server):
    d = register_org_data(server)
    a = Api(server, d["api_key"])
    time.sleep(1.05)  # distinct created_at second for "newest first"
    k = expect_ok(a.post("/v1/keys", {"kind": "live", "name": "second"}), 201)
    for client in (a, Api(server, d["test_api_key"])):  # test keys may read
        r = client.get("/v1/keys")
        keys = expect_ok(r)
        assert not ANY_KEY_RE.search(r.text), "GET /v1/keys shows a full API key"
        for secret in (d["api_key"], d["test_api_key"], k["api_key"]):
            assert secret not in r.text and secret[8:60] not in r.text
        assert "api_key" not in r.text and "hash" not in r.text.lower()
        assert {x["key_id"] for x in keys} == {d["live_key_id"], d["test_key_id"], k["key_id"]}
        for x in keys:
            assert set(x) == KEY_LIST_FIELDS, x
            assert x["revoked_at"] is None
            assert len(x["prefix"]) == 16 and x["prefix"].startswith("nx_")
            assert is_rfc3339z(x["created_at"])
        assert keys[0]["key_id"] == k["key_id"], "keys are not listed newest first"
        byid = {x["key_id"]: x for x in keys}
        assert byid[k["key_id"]]["prefix"] == k["api_key"][:16]
        assert byid[d["live_key_id"]]["prefix"] == d["api_key"][:16]
        assert byid[d["live_key_id"]]["kind"] == "live"
        assert byid[d["test_key_id"]]["kind"] == "test"


def test_list_keys_pagination(server):
    d = register_org_data(server)
    a = Api(server, d["api_key"])
    for i in range(3):
        expect_ok(a.post("/v1/keys", {"name": f"k{i}"}), 201)
    r = a.get("/v1/keys", params={"limit": 2})
    body = check_envelope(r)
    assert r.status_code == 200 and len(body["data"]) == 2
    assert body["meta"]["has_more"] is True
    assert body["meta"]["limit"] == 2 and body["meta"]["offset"] == 0
    r = a.get("/v1/keys", params={"limit": 2, "offset": 4})
    body = check_envelope(r)
    assert len(body["data"]) == 1 and body["meta"]["has_more"] is False
    expect_error(a.get("/v1/keys", params={"limit": 0}), 400, "VALIDATION_ERROR", field="limit")


def test_revoke_is_immediate_and_idempotent(server):
    d = register_org_data(server)
    a = Api(server, d["api_key"])
    k = expect_ok(a.post("/v1/keys", {"kind": "live", "name": "temp"}), 201)
    kapi = Api(server, k["api_key"])
    expect_ok(kapi.get("/v1/orgs/me"))  # warm keep-alive connection, any cache
    rv = expect_ok(a.delete(f"/v1/keys/{k['key_id']}"))
    assert rv["key_id"] == k["key_id"]
    assert is_rfc3339z(rv["revoked_at"])
    err = expect_error(kapi.get("/v1/orgs/me"), 401, "UNAUTHORIZED")
    expect_error(kapi.get("/v1/keys"), 401, "UNAUTHORIZED")
    time.sleep(1.05)
    rv2 = expect_ok(a.delete(f"/v1/keys/{k['key_id']}"))
    assert rv2 == rv, "revoking again changed revoked_at"
    listed = {x["key_id"]: x for x in expect_ok(a.get("/v1/keys"))}
    assert listed[k["key_id"]]["revoked_at"] == rv["revoked_at"]
    assert listed[d["live_key_id"]]["revoked_at"] is None
    # one message for every kind of bad key
    err_missing = expect_error(requests.get(server.url + "/v1/orgs/me", timeout=5),
                               401, "UNAUTHORIZED")
    assert err["message"] == err_missing["message"]


def test_revoke_test_key(server):
    d = register_org_data(server)
    a = Api(server, d["api_key"])
    expect_ok(a.delete(f"/v1/keys/{d['test_key_id']}"))
    expect_error(Api(server, d["test_api_key"]).get("/v1/orgs/me"), 401, "UNAUTHORIZED")
    expect_ok(a.get("/v1/orgs/me"))


def test_cannot_revoke_last_live_key(server):
    d = register_org_data(server)
    a = Api(server, d["api_key"])
    expect_error(a.delete(f"/v1/keys/{d['live_key_id']}"), 409, "CONFLICT")
    expect_ok(a.get("/v1/orgs/me"))
    listed = {x["key_id"]: x for x in expect_ok(a.get("/v1/keys"))}
    assert listed[d["live_key_id"]]["revoked_at"] is None
    # with a second live key the first can go; then the second is the last
    k = expect_ok(a.post("/v1/keys", {"kind": "live"}), 201)
    b = Api(server, k["api_key"])
    expect_ok(b.delete(f"/v1/keys/{d['live_key_id']}"))
    expect_error(a.get("/v1/orgs/me"), 401, "UNAUTHORIZED")
    expect_error(b.delete(f"/v1/keys/{k['key_id']}"), 409, "CONFLICT")
    expect_ok(b.get("/v1/orgs/me"))
    # test keys do not count as live keys
    t = expect_ok(b.post("/v1/keys", {"kind": "test"}), 201)
    assert t["kind"] == "test"
    expect_error(b.delete(f"/v1/keys/{k['key_id']}"), 409, "CONFLICT")


def test_test_key_cannot_manage_keys(server):
    d = register_org_data(server)
    t = Api(server, d["test_api_key"])
    expect_error(t.post("/v1/keys", {"kind": "test", "name": "x"}), 403, "FORBIDDEN")
    expect_error(t.post("/v1/keys", {"kind": "live"}), 403, "FORBIDDEN")
    expect_error(t.delete(f"/v1/keys/{d['live_key_id']}"), 403, "FORBIDDEN")
    expect_error(t.delete(f"/v1/keys/{d['test_key_id']}"), 403, "FORBIDDEN")
    keys = expect_ok(t.get("/v1/keys"))
    assert len(keys) == 2 and all(k["revoked_at"] is None for k in keys)
    expect_ok(t.get("/v1/orgs/me"))


def test_revoke_unknown_key_404(server):
    d = register_org_data(server)
    a = Api(server, d["api_key"])
    expect_error(a.delete("/v1/keys/key_0123456789abcdef"), 404, "NOT_FOUND")
    r = a.delete("/v1/keys/not-a-key-id")
    assert r.status_code in (400, 404), r.text
    check_envelope(r)


def _bad_auth_headers(valid):
    unknown = make_key("live")
    return {
        "missing": {},
        "empty": {"Authorization": ""},
        "basic-scheme": {"Authorization": "Basic bnhfbGl2ZV86eA=="},
        "token-scheme": {"Authorization": f"Token {valid}"},
        "bearer-only": {"Authorization": "Bearer"},
        "bearer-space": {"Authorization": "Bearer "},
        "no-scheme": {"Authorization": valid},
        "short": {"Authorization": "Bearer nx_live_abc"},
        "truncated": {"Authorization": f"Bearer {valid[:-1]}"},
        "extra-char": {"Authorization": f"Bearer {valid}a"},
        "bad-prefix": {"Authorization": f"Bearer nx_prod_{valid[8:]}"},
        "uppercase": {"Authorization": f"Bearer {valid[:8]}{valid[8:].upper()}"},
        "bad-alphabet": {"Authorization": f"Bearer {valid[:20]}1{valid[21:]}"},
        "flipped-checksum": {"Authorization": f"Bearer {flip_char(valid, 62)}"},
        "flipped-last": {"Authorization": f"Bearer {flip_char(valid, 66)}"},
        "flipped-body": {"Authorization": f"Bearer {flip_char(valid, 30)}"},
        "live-as-test": {"Authorization": f"Bearer nx_test_{valid[8:]}"},
        "unknown-wellformed": {"Authorization": f"Bearer {unknown}"},
        "unknown-test-wellformed": {"Authorization": f"Bearer {make_key('test')}"},
    }


def test_unauthorized_variants(server):
    d = register_org_data(server)
    valid = d["api_key"]
    assert key_checksum_ok(make_key())
    messages = set()
    for name, hdrs in _bad_auth_headers(valid).items():
        for method, path in (("GET", "/v1/orgs/me"), ("GET", "/v1/agents"),
                             ("POST", "/v1/keys")):
            r = requests.request(method, server.url + path, headers=hdrs, timeout=10,
                                 json={} if method == "POST" else None)
            assert r.status_code == 401, f"{name}: {method} {path} -> {r.status_code} {r.text}"
            err = expect_error(r, 401, "UNAUTHORIZED")
            messages.add(err["message"])
    assert len(messages) == 1, f"401 messages differ (leak which check failed): {messages}"
    # the valid key still works and no key was created by the attempts
    a = Api(server, valid)
    expect_ok(a.get("/v1/orgs/me"))
    assert len(expect_ok(a.get("/v1/keys"))) == 2


def test_register_needs_no_key_but_other_routes_do(server):
    r = requests.get(server.url + "/v1/keys", timeout=5)
    expect_error(r, 401, "UNAUTHORIZED")
    r = requests.post(server.url + "/v1/agents/register", json={}, timeout=5)
    expect_error(r, 401, "UNAUTHORIZED")


# --- sign-up modes -----------------------------------------------------

def _register(srv, token=None):
    hdrs = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.post(srv.url + "/v1/orgs/register",
                         json={"name": unique("org"), "plan": "starter"},
                         headers=hdrs, timeout=10)


def test_signup_closed(start_server):
    srv = start_server("--signup", "closed")
    expect_error(_register(srv), 403, "FORBIDDEN")
    srv2 = start_server("--dev", "--signup", "closed", env={"NEXRA_ADMIN_TOKEN": "secret"})
    expect_error(_register(srv2), 403, "FORBIDDEN")
    expect_error(_register(srv2, "secret"), 403, "FORBIDDEN")


def test_signup_admin(start_server):
    srv = start_server("--signup", "admin", env={"NEXRA_ADMIN_TOKEN": "secret"})
    expect_error(_register(srv), 403, "FORBIDDEN")
    expect_error(_register(srv, "wrong"), 403, "FORBIDDEN")
    expect_error(_register(srv, "secre"), 403, "FORBIDDEN")
    expect_error(_register(srv, "secretsecret"), 403, "FORBIDDEN")
    d = expect_ok(_register(srv, "secret"), 201)
    assert d["api_key"].startswith("nx_live_")
    expect_ok(Api(srv, d["api_key"]).get("/v1/orgs/me"))


def test_admin_token_never_logged(start_server):
    token = "AdminTok-" + unique("zz")
    srv = start_server("--signup", "admin", env={"NEXRA_ADMIN_TOKEN": token})
    expect_ok(_register(srv, token), 201)
    expect_error(_register(srv, token + "x"), 403, "FORBIDDEN")
    time.sleep(0.2)
    assert token not in srv.logs(), "the admin token appears in the server log"


def test_signup_default_non_dev_without_token_refused(start_server):
    srv = start_server()
    expect_error(_register(srv), 403, "FORBIDDEN")
    expect_error(_register(srv, ""), 403, "FORBIDDEN")
    expect_error(_register(srv, "anything"), 403, "FORBIDDEN")


def test_signup_default_non_dev_is_admin_mode(start_server):
    srv = start_server(env={"NEXRA_ADMIN_TOKEN": "secret"})
    expect_error(_register(srv), 403, "FORBIDDEN")
    expect_ok(_register(srv, "secret"), 201)


def test_signup_open_non_dev(start_server):
    srv = start_server("--signup", "open")
    expect_ok(_register(srv), 201)


def test_signup_default_dev_is_open(server):
    expect_ok(_register(server), 201)


def test_bad_signup_flag_refused(nexra_bin, tmp_path):
    import subprocess
    try:
        p = subprocess.run([nexra_bin, "serve", "--listen", "127.0.0.1:0", "--db",
                            f"sqlite:{tmp_path}/x.db", "--signup", "sometimes"],
                           cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("serve accepted --signup sometimes and kept running")
    assert p.returncode != 0, "serve accepted --signup sometimes"
