"""Policies API (issue 3 point 1, 2): upload with versions, read, list,
patch, delete-as-disable, YAML errors with line and column that store
nothing, tenancy, and test keys that may not change policies."""
import re

import pytest

from helpers import Api, expect_error, expect_ok, register_org_data, unique

POL_ID_RE = re.compile(r"^pol_[0-9a-f]{16}$")
POLICY_FIELDS = {"policy_id", "name", "version", "priority", "enabled",
                 "created_at", "updated_at"}

SEED_YAML = """rules:
  - capability: research
    max_budget_usd: 0.50
    min_trust_score: 0.85
    hitl_required: false

  - capability: email_send
    max_budget_usd: 0.10
    min_trust_score: 0.90
    hitl_required: true
"""


@pytest.fixture
def org(server):
    d = register_org_data(server)
    return dict(d=d, live=Api(server, d["api_key"]), test=Api(server, d["test_api_key"]))


def upload(client, name=None, yaml=SEED_YAML, status=201, **extra):
    body = {"name": name or unique("pol"), "yaml": yaml}
    body.update(extra)
    return expect_ok(client.post("/v1/policies", body), status)


def test_upload_creates_then_versions(org):
    c = org["live"]
    name = unique("prod-policy")
    p1 = upload(c, name, priority=10, enabled=True)
    assert set(p1) == POLICY_FIELDS
    assert POL_ID_RE.match(p1["policy_id"])
    assert (p1["name"], p1["version"], p1["priority"], p1["enabled"]) == (name, 1, 10, True)
    p2 = upload(c, name, yaml="rules:\n  - capability: research\n", priority=5)
    assert p2["policy_id"] == p1["policy_id"]
    assert p2["version"] == 2 and p2["priority"] == 5
    got = expect_ok(c.get(f"/v1/policies/{p1['policy_id']}"))
    assert got["version"] == 2
    assert got["yaml"] == "rules:\n  - capability: research\n"
    assert [v["version"] for v in got["versions"]] == [1, 2]
    old = expect_ok(c.get(f"/v1/policies/{p1['policy_id']}/versions/1"))
    assert old["yaml"] == SEED_YAML and old["version"] == 1
    expect_error(c.get(f"/v1/policies/{p1['policy_id']}/versions/3"), 404, "NOT_FOUND")


def test_list_orders_by_priority_then_creation(org):
    c = org["live"]
    a = upload(c, priority=20)
    b = upload(c, priority=1)
    d = upload(c, priority=20)
    rows = expect_ok(c.get("/v1/policies"))
    assert [r["policy_id"] for r in rows] == [b["policy_id"], a["policy_id"], d["policy_id"]]
    page = c.get("/v1/policies?limit=2&offset=1").json()
    assert [r["policy_id"] for r in page["data"]] == [a["policy_id"], d["policy_id"]]
    assert page["meta"]["has_more"] is False
    assert all("yaml" not in r for r in rows)


def test_patch_and_delete_keep_history(org):
    c = org["live"]
    p = upload(c, priority=3)
    pid = p["policy_id"]
    q = expect_ok(c.request("PATCH", f"/v1/policies/{pid}", {"enabled": False}))
    assert q["enabled"] is False and q["priority"] == 3 and q["version"] == 1
    q = expect_ok(c.request("PATCH", f"/v1/policies/{pid}", {"priority": 7, "enabled": True}))
    assert q["enabled"] is True and q["priority"] == 7
    d = expect_ok(c.delete(f"/v1/policies/{pid}"))
    assert d["enabled"] is False
    got = expect_ok(c.get(f"/v1/policies/{pid}"))
    assert got["enabled"] is False and got["yaml"] == SEED_YAML
    assert expect_ok(c.get(f"/v1/policies/{pid}/versions/1"))["yaml"] == SEED_YAML


@pytest.mark.parametrize("body,field", [
    ({}, "body"),
    ({"enabled": "yes"}, "enabled"),
    ({"priority": 1.5}, "priority"),
    ({"priority": 10**9}, "priority"),
    ({"color": "red"}, "color"),
])
def test_patch_bad_input(org, body, field):
    c = org["live"]
    p = upload(c)
    expect_error(c.request("PATCH", f"/v1/policies/{p['policy_id']}", body), 400,
                 "VALIDATION_ERROR", field)
    assert expect_ok(c.get(f"/v1/policies/{p['policy_id']}"))["updated_at"] == p["updated_at"]


@pytest.mark.parametrize("yaml,line,key", [
    ("rules:\n  - capability: research\n    min_trust_score: 1.5\n", 3, "rules[0].min_trust_score"),
    ("rules:\n  - capability: research\n    max_budget_usd: -1\n", 3, "rules[0].max_budget_usd"),
    ("rules:\n  - capability: research\n    max_budget_usd: 0.1234567\n", 3, "rules[0].max_budget_usd"),
    ("rules:\n  - capability: research\n    colour: blue\n", 3, "rules[0].colour"),
    ("rules:\n  - capability: research\n    hitl_required: 3\n", 3, "rules[0].hitl_required"),
    ("rules: [\n", 2, None),
])
def test_upload_bad_yaml_is_400_with_position_and_stores_nothing(org, yaml, line, key):
    c = org["live"]
    e = expect_error(c.post("/v1/policies", {"name": unique("bad"), "yaml": yaml}), 400,
                     "VALIDATION_ERROR", "yaml")
    assert e["details"]["line"] == line
    assert re.search(rf"{line}:\d+", e["message"]), e["message"]
    if key:
        assert key in e["message"] and e["details"]["key"] == key
    assert expect_ok(c.get("/v1/policies")) == []


@pytest.mark.parametrize("body,field", [
    ({"yaml": SEED_YAML}, "name"),
    ({"name": "x"}, "yaml"),
    ({"name": "", "yaml": SEED_YAML}, "name"),
    ({"name": "x", "yaml": SEED_YAML, "priority": "1"}, "priority"),
    ({"name": "x", "yaml": SEED_YAML, "enabled": 1}, "enabled"),
    ({"name": "x", "yaml": SEED_YAML, "extra": 1}, "extra"),
])
def test_upload_bad_fields(org, body, field):
    c = org["live"]
    expect_error(c.post("/v1/policies", body), 400, "VALIDATION_ERROR", field)
    assert expect_ok(c.get("/v1/policies")) == []


def test_test_keys_cannot_change_policies(org):
    p = upload(org["live"])
    t = org["test"]
    expect_error(t.post("/v1/policies", {"name": "x", "yaml": SEED_YAML}), 403, "FORBIDDEN")
    expect_error(t.request("PATCH", f"/v1/policies/{p['policy_id']}", {"enabled": False}),
                 403, "FORBIDDEN")
    expect_error(t.delete(f"/v1/policies/{p['policy_id']}"), 403, "FORBIDDEN")
    assert expect_ok(t.get(f"/v1/policies/{p['policy_id']}"))["enabled"] is True


def test_other_orgs_policies_read_as_missing(server, org):
    p = upload(org["live"])
    b = register_org_data(server)
    cb = Api(server, b["api_key"])
    missing = "pol_0123456789abcdef"
    for method, path, body in [
        ("GET", "/v1/policies/{}", None),
        ("GET", "/v1/policies/{}/versions/1", None),
        ("PATCH", "/v1/policies/{}", {"enabled": False}),
        ("DELETE", "/v1/policies/{}", None),
    ]:
        kw = {} if body is None else {"json_body": body}
        theirs = cb.request(method, path.format(p["policy_id"]), **kw)
        none = cb.request(method, path.format(missing), **kw)
        assert theirs.status_code == none.status_code == 404
        assert theirs.json()["error"] == none.json()["error"]
    assert expect_ok(cb.get("/v1/policies")) == []
    assert expect_ok(org["live"].get(f"/v1/policies/{p['policy_id']}"))["enabled"] is True
