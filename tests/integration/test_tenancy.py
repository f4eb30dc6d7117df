"""Tenancy (issue 2 point 9): org B's keys against every org A route answer
exactly like a missing object, and change nothing of org A."""
import json

import pytest

from helpers import (Api, agent_body, expect_error, expect_ok, register_agent,
                     register_org_data, unique)


@pytest.fixture
def orgs(server):
    """Org A with an agent and an extra live key; org B with its own agent."""
    a = register_org_data(server)
    b = register_org_data(server)
    ca, cb = Api(server, a["api_key"]), Api(server, b["api_key"])
    a_agent, a_body, _ = register_agent(ca, unique("a-agent"))
    a_extra = expect_ok(ca.post("/v1/keys", {"kind": "live", "name": "extra"}), 201)
    b_agent, _, _ = register_agent(cb, unique("b-agent"))
    return dict(a=a, b=b, ca=ca, cb=cb, a_agent=a_agent, a_body=a_body,
                a_extra=a_extra, b_agent=b_agent)


# (method, path template, needs body); {id} is substituted by the target id.
AGENT_ROUTES = [
    ("GET", "/v1/agents/{id}", False),
    ("PUT", "/v1/agents/{id}", True),
    ("DELETE", "/v1/agents/{id}", False),
    ("POST", "/v1/agents/{id}/activate", False),
]
KEY_TARGETS = ["live_key_id", "test_key_id", "extra_key_id"]


def _snapshot(o):
    ca = o["ca"]
    agent = expect_ok(ca.get(f"/v1/agents/{o['a_agent']}"))
    keys = expect_ok(ca.get("/v1/keys"))
    return agent, keys


def _assert_a_unchanged(o, before):
    agent, keys = _snapshot(o)
    assert agent == before[0], "org B's request changed org A's agent"
    assert agent["status"] != "paused"
    assert keys == before[1], "org B's request changed org A's keys"
    assert all(k["revoked_at"] is None for k in keys)
    expect_ok(Api(o["ca"].server, o["a_extra"]["api_key"]).get("/v1/orgs/me"))
    expect_ok(Api(o["ca"].server, o["a"]["test_api_key"]).get("/v1/orgs/me"))


def _same_error(r_other, r_missing):
    assert r_other.status_code == r_missing.status_code == 404, \
        (r_other.status_code, r_other.text, r_missing.status_code, r_missing.text)
    e1 = expect_error(r_other, 404, "NOT_FOUND")
    e2 = expect_error(r_missing, 404, "NOT_FOUND")
    assert e1 == e2, f"another org's object answers differently from a missing one: {e1} vs {e2}"
    for h in ("Content-Type", "Allow"):
        assert r_other.headers.get(h) == r_missing.headers.get(h), h


@pytest.mark.parametrize("key_kind", ["live", "test"])
@pytest.mark.parametrize("method,path,needs_body", AGENT_ROUTES,
                         ids=[f"{m} {p}" for m, p, _ in AGENT_ROUTES])
def test_cross_org_agent_routes(server, orgs, method, path, needs_body, key_kind):
    o = orgs
    before = _snapshot(o)
    b_key = o["b"]["api_key"] if key_kind == "live" else o["b"]["test_api_key"]
    cb = Api(server, b_key)
    missing = unique("missing")
    kw_other = {"json_body": agent_body(o["a_agent"])} if needs_body else {}
    kw_missing = {"json_body": agent_body(missing)} if needs_body else {}
    r_other = cb.request(method, path.format(id=o["a_agent"]), **kw_other)
    r_missing = cb.request(method, path.format(id=missing), **kw_missing)
    _same_error(r_other, r_missing)
    _assert_a_unchanged(o, before)


@pytest.mark.parametrize("target", KEY_TARGETS)
def test_cross_org_key_revoke(server, orgs, target):
    o = orgs
    before = _snapshot(o)
    ids = {"live_key_id": o["a"]["live_key_id"], "test_key_id": o["a"]["test_key_id"],
           "extra_key_id": o["a_extra"]["key_id"]}
    cb = o["cb"]
    r_other = cb.delete(f"/v1/keys/{ids[target]}")
    r_missing = cb.delete("/v1/keys/key_00000000deadbeef")
    _same_error(r_other, r_missing)
    _assert_a_unchanged(o, before)
    # B's own keys untouched too
    assert all(k["revoked_at"] is None for k in expect_ok(cb.get("/v1/keys")))


def test_cross_org_lists_show_only_own_objects(server, orgs):
    o = orgs
    cb = o["cb"]
    for params in ({}, {"status": "probationary"}, {"capability_type": "research"},
                   {"limit": 200}):
        agents = expect_ok(cb.get("/v1/agents", params=params))
        assert [x["agent_id"] for x in agents] == [o["b_agent"]], params
    r = cb.get("/v1/agents")
    assert o["a_agent"] not in r.text
    keys = expect_ok(cb.get("/v1/keys"))
    assert {k["key_id"] for k in keys} == {o["b"]["live_key_id"], o["b"]["test_key_id"]}
    r = cb.get("/v1/keys")
    for kid in (o["a"]["live_key_id"], o["a"]["test_key_id"], o["a_extra"]["key_id"]):
        assert kid not in r.text
    me = expect_ok(cb.get("/v1/orgs/me"))
    assert me["org_id"] == o["b"]["org_id"]


def test_same_agent_id_in_two_orgs(server, orgs):
    o = orgs
    before = _snapshot(o)
    cb = o["cb"]
    body = agent_body(o["a_agent"], name="B's namesake", capability_type="other")
    d = expect_ok(cb.post("/v1/agents/register", body), 201)
    assert d["agent_id"] == o["a_agent"]
    assert expect_ok(cb.get(f"/v1/agents/{o['a_agent']}"))["name"] == "B's namesake"
    _assert_a_unchanged(o, before)
    # pausing B's namesake leaves A's agent alone
    expect_ok(cb.delete(f"/v1/agents/{o['a_agent']}"))
    _assert_a_unchanged(o, before)


def test_cross_org_x_agent_id(server, orgs):
    o = orgs
    for key in (o["b"]["api_key"], o["b"]["test_api_key"]):
        missing = unique("missing")
        r_other = Api(server, key, agent_id=o["a_agent"]).get("/v1/orgs/me")
        r_missing = Api(server, key, agent_id=missing).get("/v1/orgs/me")
        e1 = expect_error(r_other, 403, "FORBIDDEN")
        e2 = expect_error(r_missing, 403, "FORBIDDEN")
        # the same answer, up to the echoed id
        assert json.dumps(e1).replace(o["a_agent"], "ID") == \
            json.dumps(e2).replace(missing, "ID"), (e1, e2)
        expect_error(Api(server, key, agent_id=o["a_agent"]).get("/v1/agents"), 403, "FORBIDDEN")
    expect_ok(Api(server, o["b"]["api_key"], agent_id=o["b_agent"]).get("/v1/orgs/me"))
    expect_ok(Api(server, o["a"]["api_key"], agent_id=o["a_agent"]).get("/v1/orgs/me"))
    expect_error(Api(server, o["a"]["api_key"], agent_id=o["b_agent"]).get("/v1/orgs/me"),
                 403, "FORBIDDEN")


def test_cross_org_paused_agent_activate(server, orgs):
    """B cannot re-activate A's paused agent either."""
    o = orgs
    expect_ok(o["ca"].delete(f"/v1/agents/{o['a_agent']}"))
    r = o["cb"].post(f"/v1/agents/{o['a_agent']}/activate")
    r_missing = o["cb"].post(f"/v1/agents/{unique('missing')}/activate")
    _same_error(r, r_missing)
    assert expect_ok(o["ca"].get(f"/v1/agents/{o['a_agent']}"))["status"] == "paused"
