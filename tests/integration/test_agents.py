"""The agent registry (issue 2 point 7), its validation table (point 8:
each bad input is a 400 naming the field and writes nothing) and X-Agent-ID
(point 5)."""
import concurrent.futures
import json
import re
import time

import pytest

from helpers import (AGENT_FIELDS, DELETE, Api, agent_body, check_envelope,
                     expect_error, expect_ok, is_rfc3339z, mutate, register_agent,
                     register_org, unique)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
PLACEHOLDER_SECRET = "replace-with-32-char-secret"  # from the seed, 27 chars
assert len(PLACEHOLDER_SECRET) == 27


def new_org_client(server, plan="growth"):
    _, live, _ = register_org(server, plan)
    return Api(server, live)


def assert_nothing_written(client, agent_id=None):
    if isinstance(agent_id, str) and agent_id and "/" not in agent_id and agent_id != "register":
        expect_error(client.get(f"/v1/agents/{agent_id}"), 404, "NOT_FOUND")
    assert expect_ok(client.get("/v1/agents")) == [], "a rejected request wrote an agent"


# --- register -----------------------------------------------------------

def test_register_agent(server):
    a = new_org_client(server)
    agent_id = unique("research-agent")
    body = agent_body(agent_id)
    r = a.post("/v1/agents/register", body)
    d = expect_ok(r, 201)
    assert d["agent_id"] == agent_id
    assert d["status"] == "probationary"
    assert UUID_RE.match(d["embedding_id"]), d  # embedded at registration (test_discover.py)
    assert is_rfc3339z(d["registered_at"]), d["registered_at"]
    assert body["webhook_secret"] not in r.text

    got = expect_ok(a.get(f"/v1/agents/{agent_id}"))
    assert set(got) == AGENT_FIELDS, set(got) ^ AGENT_FIELDS
    for f in ("agent_id", "name", "description", "capability_type", "webhook_url",
              "pricing", "sla", "input_schema", "output_schema", "is_public"):
        assert got[f] == body[f], f
    assert got["status"] == "probationary"
    assert got["trust_score"] == 0.5
    assert got["embedding_id"] == d["embedding_id"]
    assert got["registered_at"] == d["registered_at"]
    assert is_rfc3339z(got["updated_at"])


def test_register_seed_sdk_example(server):
    """The seed's 'Register your first agent' fields (plus the secret the
    REST contract requires)."""
    a = new_org_client(server)
    body = {
        "agent_id": "research-agent-v2",
        "name": "Competitive Research Agent",
        "description": "Researches competitors and company background",
        "capability_type": "research",
        "webhook_url": "https://your-agent.com/execute",
        "webhook_secret": "x" * 32,
        "pricing": {"per_call_usd": 0.15},
        "sla": {"p99_latency_ms": 3000, "availability": 0.99},
        "input_schema": {"type": "object", "properties": {"company_name": {"type": "string"}},
                         "required": ["company_name"]},
        "output_schema": {"type": "object", "properties": {"summary": {"type": "string"},
                                                           "sources": {"type": "array"}}},
    }
    d = expect_ok(a.post("/v1/agents/register", body), 201)
    assert d["status"] == "probationary"
    got = expect_ok(a.get("/v1/agents/research-agent-v2"))
    assert got["is_public"] is False
    assert got["input_schema"] == body["input_schema"]


def test_register_duplicate_conflict(server):
    a = new_org_client(server)
    agent_id, body, _ = register_agent(a)
    before = expect_ok(a.get(f"/v1/agents/{agent_id}"))
    again = agent_body(agent_id, name="Other name", capability_type="analysis")
    expect_error(a.post("/v1/agents/register", again), 409, "CONFLICT")
    after = expect_ok(a.get(f"/v1/agents/{agent_id}"))
    assert after == before, "a 409 register changed the agent"
    assert len(expect_ok(a.get("/v1/agents"))) == 1


def test_concurrent_duplicate_register_exactly_one_wins(server):
    a = new_org_client(server)
    agent_id = unique("race")
    bodies = [agent_body(agent_id, name=f"n{i}") for i in range(12)]

    def go(b):
        c = Api(server, a.key)
        r = c.post("/v1/agents/register", b)
        check_envelope(r)
        return r.status_code

    with concurrent.futures.ThreadPoolExecutor(12) as ex:
        codes = list(ex.map(go, bodies))
    assert sorted(codes) == [201] + [409] * 11, codes
    assert len(expect_ok(a.get("/v1/agents"))) == 1


def test_concurrent_registers_all_stored(server):
    a = new_org_client(server)
    ids = [f"conc-{i:02d}" for i in range(24)]

    def go(agent_id):
        c = Api(server, a.key)
        return c.post("/v1/agents/register", agent_body(agent_id)).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(go, ids))
    assert codes == [201] * len(ids)
    listed = expect_ok(a.get("/v1/agents", params={"limit": 200}))
    assert sorted(x["agent_id"] for x in listed) == ids


# Each case: id, dotted path in the body, new value (DELETE removes), the
# expected details.field.
BAD_INPUTS = [
    ("agent_id-missing", "agent_id", DELETE, "agent_id"),
    ("agent_id-empty", "agent_id", "", "agent_id"),
    ("agent_id-129", "agent_id", "a" * 129, "agent_id"),
    ("agent_id-leading-dash", "agent_id", "-agent", "agent_id"),
    ("agent_id-leading-dot", "agent_id", ".agent", "agent_id"),
    ("agent_id-space", "agent_id", "my agent", "agent_id"),
    ("agent_id-slash", "agent_id", "my/agent", "agent_id"),
    ("agent_id-unicode", "agent_id", "agént", "agent_id"),
    ("agent_id-int", "agent_id", 123, "agent_id"),
    ("agent_id-null", "agent_id", None, "agent_id"),
    ("name-missing", "name", DELETE, "name"),
    ("name-empty", "name", "", "name"),
    ("name-201", "name", "n" * 201, "name"),
    ("name-int", "name", 7, "name"),
    ("name-null", "name", None, "name"),
    ("description-missing", "description", DELETE, "description"),
    ("description-empty", "description", "", "description"),
    ("description-4001", "description", "d" * 4001, "description"),
    ("description-array", "description", ["x"], "description"),
    ("capability_type-missing", "capability_type", DELETE, "capability_type"),
    ("capability_type-unknown", "capability_type", "email_send", "capability_type"),
    ("capability_type-case", "capability_type", "Research", "capability_type"),
    ("capability_type-empty", "capability_type", "", "capability_type"),
    ("capability_type-int", "capability_type", 1, "capability_type"),
    ("capability_type-null", "capability_type", None, "capability_type"),
    ("capability_type-array", "capability_type", ["research"], "capability_type"),
    ("webhook_url-missing", "webhook_url", DELETE, "webhook_url"),
    ("webhook_url-ftp", "webhook_url", "ftp://example.com/hook", "webhook_url"),
    ("webhook_url-no-host", "webhook_url", "https://", "webhook_url"),
    ("webhook_url-empty-host", "webhook_url", "https:///hook", "webhook_url"),
    ("webhook_url-no-scheme", "webhook_url", "example.com/hook", "webhook_url"),
    ("webhook_url-garbage", "webhook_url", "not a url", "webhook_url"),
    ("webhook_url-userinfo", "webhook_url", "https://user:pw@example.com/hook", "webhook_url"),
    ("webhook_url-user", "webhook_url", "https://user@example.com/hook", "webhook_url"),
    ("webhook_url-2049", "webhook_url", "https://example.com/" + "a" * 2029, "webhook_url"),
    ("webhook_url-int", "webhook_url", 5, "webhook_url"),
    ("webhook_url-null", "webhook_url", None, "webhook_url"),
    ("webhook_url-empty", "webhook_url", "", "webhook_url"),
    ("webhook_secret-missing", "webhook_secret", DELETE, "webhook_secret"),
    ("webhook_secret-27-placeholder", "webhook_secret", PLACEHOLDER_SECRET, "webhook_secret"),
    ("webhook_secret-31", "webhook_secret", "s" * 31, "webhook_secret"),
    ("webhook_secret-20-multibyte-chars", "webhook_secret", "é" * 20, "webhook_secret"),
    ("webhook_secret-257", "webhook_secret", "s" * 257, "webhook_secret"),
    ("webhook_secret-empty", "webhook_secret", "", "webhook_secret"),
    ("webhook_secret-int", "webhook_secret", 12345, "webhook_secret"),
    ("webhook_secret-null", "webhook_secret", None, "webhook_secret"),
    ("pricing-missing", "pricing", DELETE, "pricing"),
    ("pricing-string", "pricing", "0.15", "pricing"),
    ("pricing-array", "pricing", [0.15], "pricing"),
    ("pricing-null", "pricing", None, "pricing"),
    ("pricing-number", "pricing", 0.15, "pricing"),
    ("per_call_usd-missing", "pricing.per_call_usd", DELETE, "pricing.per_call_usd"),
    ("per_call_usd-negative", "pricing.per_call_usd", -0.01, "pricing.per_call_usd"),
    ("per_call_usd-negative-int", "pricing.per_call_usd", -1, "pricing.per_call_usd"),
    ("per_call_usd-7-decimals", "pricing.per_call_usd", 0.1234567, "pricing.per_call_usd"),
    ("per_call_usd-1e-7", "pricing.per_call_usd", 0.0000001, "pricing.per_call_usd"),
    ("per_call_usd-string", "pricing.per_call_usd", "0.15", "pricing.per_call_usd"),
    ("per_call_usd-string-nan", "pricing.per_call_usd", "NaN", "pricing.per_call_usd"),
    ("per_call_usd-null", "pricing.per_call_usd", None, "pricing.per_call_usd"),
    ("per_call_usd-bool", "pricing.per_call_usd", True, "pricing.per_call_usd"),
    ("per_call_usd-over-1M", "pricing.per_call_usd", 1000000.01, "pricing.per_call_usd"),
    ("per_call_usd-huge", "pricing.per_call_usd", 1e300, "pricing.per_call_usd"),
    ("pricing-unknown-field", "pricing.currency", "usd", "pricing.currency"),
    ("sla-missing", "sla", DELETE, "sla"),
    ("sla-string", "sla", "fast", "sla"),
    ("sla-null", "sla", None, "sla"),
    ("p99-missing", "sla.p99_latency_ms", DELETE, "sla.p99_latency_ms"),
    ("p99-zero", "sla.p99_latency_ms", 0, "sla.p99_latency_ms"),
    ("p99-negative", "sla.p99_latency_ms", -5, "sla.p99_latency_ms"),
    ("p99-float", "sla.p99_latency_ms", 1.5, "sla.p99_latency_ms"),
    ("p99-string", "sla.p99_latency_ms", "3000", "sla.p99_latency_ms"),
    ("p99-too-big", "sla.p99_latency_ms", 86400001, "sla.p99_latency_ms"),
    ("p99-null", "sla.p99_latency_ms", None, "sla.p99_latency_ms"),
    ("p99-bool", "sla.p99_latency_ms", True, "sla.p99_latency_ms"),
    ("availability-missing", "sla.availability", DELETE, "sla.availability"),
    ("availability-1.5", "sla.availability", 1.5, "sla.availability"),
    ("availability-neg", "sla.availability", -0.1, "sla.availability"),
    ("availability-2", "sla.availability", 2, "sla.availability"),
    ("availability-string", "sla.availability", "0.99", "sla.availability"),
    ("availability-null", "sla.availability", None, "sla.availability"),
    ("sla-unknown-field", "sla.p50_latency_ms", 10, "sla.p50_latency_ms"),
    ("input_schema-missing", "input_schema", DELETE, "input_schema"),
    ("input_schema-array", "input_schema", [{"type": "object"}], "input_schema"),
    ("input_schema-string", "input_schema", "object", "input_schema"),
    ("input_schema-null", "input_schema", None, "input_schema"),
    ("input_schema-int", "input_schema", 5, "input_schema"),
    ("input_schema-bool", "input_schema", True, "input_schema"),
    ("input_schema-over-64KiB", "input_schema", {"description": "x" * (64 * 1024)}, "input_schema"),
    ("output_schema-missing", "output_schema", DELETE, "output_schema"),
    ("output_schema-array", "output_schema", [], "output_schema"),
    ("output_schema-string", "output_schema", "{}", "output_schema"),
    ("output_schema-null", "output_schema", None, "output_schema"),
    ("output_schema-over-64KiB", "output_schema", {"description": "x" * (64 * 1024)}, "output_schema"),
    ("is_public-string", "is_public", "yes", "is_public"),
    ("is_public-int", "is_public", 1, "is_public"),
    ("is_public-string-false", "is_public", "false", "is_public"),
    ("unknown-field", "owner", "me", "owner"),
    ("unknown-field-secret-typo", "webhook_secrets", "x" * 40, "webhook_secrets"),
]


@pytest.mark.parametrize("path,value,field", [c[1:] for c in BAD_INPUTS],
                         ids=[c[0] for c in BAD_INPUTS])
def test_register_bad_input(server, path, value, field):
    a = new_org_client(server)
    agent_id = unique("bad")
    body = mutate(agent_body(agent_id), path, value)
    r = a.post("/v1/agents/register", body)
    err = expect_error(r, 400, "VALIDATION_ERROR", field=field)
    leaf = field.split(".")[-1]
    assert leaf in err["message"], f"message does not name the field {field!r}: {err}"
    if path == "webhook_secret" and isinstance(value, str) and 0 < len(value) < 32:
        assert "32" in err["message"], f"secret message does not say 32: {err}"
    assert_nothing_written(a, agent_id if path != "agent_id" else None)


def _raw_register(client, text):
    return client.request("POST", "/v1/agents/register", data=text.encode(),
                          headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("raw_value", ["NaN", "-NaN", "Infinity", "-Infinity", "1e400",
                                       "0x10", ".5", "01", "+1", "1.", "- 1"])
def test_register_per_call_usd_non_json_numbers(server, raw_value):
    a = new_org_client(server)
    agent_id = unique("nan")
    text = json.dumps(agent_body(agent_id, pricing={"per_call_usd": 12345.5}))
    assert "12345.5" in text
    text = text.replace("12345.5", raw_value)
    r = _raw_register(a, text)
    expect_error(r, 400, "VALIDATION_ERROR")
    assert_nothing_written(a, agent_id)


@pytest.mark.parametrize("raw", ["[]", '"agent"', "null", "42", "true"])
def test_register_body_not_an_object(server, raw):
    a = new_org_client(server)
    expect_error(_raw_register(a, raw), 400, "VALIDATION_ERROR")
    assert_nothing_written(a)


def test_register_empty_body(server):
    a = new_org_client(server)
    r = a.request("POST", "/v1/agents/register", data=b"",
                  headers={"Content-Type": "application/json"})
    expect_error(r, 400, "VALIDATION_ERROR")
    assert_nothing_written(a)


# Values at the edge of each rule that must be accepted and read back as sent.
GOOD_EDGES = [
    ("agent_id-128", "agent_id", "a" * 128),
    ("agent_id-charset", "agent_id", "Ab.9_x:y-z"),
    ("agent_id-digit-first", "agent_id", "9lives"),
    ("name-200", "name", "n" * 200),
    ("name-unicode", "name", "Agent 名前 über"),
    ("name-200-multibyte-chars", "name", "é" * 200),
    ("description-4000", "description", "d" * 4000),
    ("description-4000-multibyte-chars", "description", "é" * 4000),
    ("name-100-cjk-chars", "name", "名" * 100),
    ("webhook_url-port-query", "webhook_url", "https://example.com:8443/a/b?c=d&e=f"),
    ("webhook_url-2048", "webhook_url", "https://example.com/" + "a" * 2028),
    ("webhook_url-ip", "webhook_url", "https://93.184.216.34/hook"),
    ("secret-32", "webhook_secret", "s" * 32),
    ("secret-256", "webhook_secret", "s" * 256),
    ("secret-200-multibyte-chars", "webhook_secret", "é" * 200),
    ("per_call_usd-zero", "pricing.per_call_usd", 0),
    ("per_call_usd-micro", "pricing.per_call_usd", 0.000001),
    ("per_call_usd-6-decimals", "pricing.per_call_usd", 0.123456),
    ("per_call_usd-1M", "pricing.per_call_usd", 1000000),
    ("per_call_usd-max-decimals", "pricing.per_call_usd", 999999.999999),
    ("per_call_usd-int", "pricing.per_call_usd", 2),
    ("p99-1", "sla.p99_latency_ms", 1),
    ("p99-max", "sla.p99_latency_ms", 86400000),
    ("availability-0", "sla.availability", 0),
    ("availability-1", "sla.availability", 1),
    ("availability-1.0", "sla.availability", 1.0),
    ("availability-fraction", "sla.availability", 0.999999),
    ("input_schema-empty", "input_schema", {}),
    ("input_schema-60KiB", "input_schema", {"description": "x" * (60 * 1024)}),
    ("output_schema-nested", "output_schema",
     {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "number"}}}}),
    ("is_public-true", "is_public", True),
    ("is_public-omitted", "is_public", DELETE),
] + [(f"capability_type-{c}", "capability_type", c) for c in
     ("research", "analysis", "generation", "enrichment", "validation", "execution", "other")]


@pytest.mark.parametrize("path,value", [c[1:] for c in GOOD_EDGES], ids=[c[0] for c in GOOD_EDGES])
def test_register_accepts_edge_values(server, path, value):
    a = new_org_client(server)
    body = mutate(agent_body(unique("edge")), path, value)
    agent_id = body["agent_id"]
    d = expect_ok(a.post("/v1/agents/register", body), 201)
    assert d["agent_id"] == agent_id
    got = expect_ok(a.get(f"/v1/agents/{agent_id}"))
    cur_got, cur_sent = got, body
    parts = path.split(".")
    for p in parts[:-1]:
        cur_got, cur_sent = cur_got[p], cur_sent[p]
    if value is DELETE:
        assert got["is_public"] is False
    elif path == "webhook_secret":
        assert "webhook_secret" not in got
    else:
        assert cur_got[parts[-1]] == value, f"{path}: sent {value!r}, read back {cur_got[parts[-1]]!r}"


def test_webhook_http_and_loopback_allowed_in_dev(server):
    a = new_org_client(server)
    for url in ("http://127.0.0.1:9/hook", "http://localhost:8080/x", "https://127.0.0.1/x",
                "http://10.1.2.3/hook", "http://example.com/hook"):
        agent_id = unique("dev")
        d = expect_ok(a.post("/v1/agents/register", agent_body(agent_id, webhook_url=url)), 201)
        assert d["agent_id"] == agent_id
        assert expect_ok(a.get(f"/v1/agents/{agent_id}"))["webhook_url"] == url


def test_webhook_url_rules_outside_dev(start_server):
    srv = start_server("--signup", "open")
    a = new_org_client(srv)
    for url in ("http://example.com/hook", "http://127.0.0.1:9/hook", "https://127.0.0.1/hook",
                "https://127.1.2.3/hook", "https://10.0.0.1/hook", "https://192.168.1.1/hook",
                "https://172.16.5.4/hook", "https://169.254.169.254/latest", "https://[::1]/hook",
                "https://0.0.0.0/hook", "https://[fd00::1]/hook", "https://localhost/hook",
                "https://LOCALHOST/hook", "https://localhost./hook", "https://foo.localhost/hook",
                "https://2130706433/hook", "https://0x7f.1/hook", "https://127.1/hook",
                "https://[::ffff:127.0.0.1]/hook", "https://[fe80::1]/hook"):
        agent_id = unique("nodev")
        r = a.post("/v1/agents/register", agent_body(agent_id, webhook_url=url))
        err = expect_error(r, 400, "VALIDATION_ERROR", field="webhook_url")
        assert "webhook_url" in err["message"], err
        assert_nothing_written(a, agent_id)
    d = expect_ok(a.post("/v1/agents/register", agent_body("public-ok")), 201)
    assert d["status"] == "probationary"
    # PUT applies the same rule
    r = a.put("/v1/agents/public-ok", agent_body("public-ok", webhook_url="http://example.com/h"))
    expect_error(r, 400, "VALIDATION_ERROR", field="webhook_url")
    assert expect_ok(a.get("/v1/agents/public-ok"))["webhook_url"] == "https://example.com/hook"


def test_placeholder_secret_message(server):
    a = new_org_client(server)
    body = agent_body("research-agent-v2", webhook_secret=PLACEHOLDER_SECRET)
    err = expect_error(a.post("/v1/agents/register", body), 400, "VALIDATION_ERROR",
                       field="webhook_secret")
    assert "32" in err["message"], err
    assert_nothing_written(a, "research-agent-v2")
    body["webhook_secret"] = PLACEHOLDER_SECRET + "-padded!"  # 35 chars
    expect_ok(a.post("/v1/agents/register", body), 201)


def test_secret_never_returned(server):
    a = new_org_client(server)
    secret = "TopSecretValue-" + "q" * 30
    agent_id, body, _ = register_agent(a, webhook_secret=secret)
    texts = []
    r = a.get(f"/v1/agents/{agent_id}")
    expect_ok(r)
    texts.append(r.text)
    r = a.get("/v1/agents")
    expect_ok(r)
    texts.append(r.text)
    secret2 = "AnotherSecret-" + "z" * 30
    r = a.put(f"/v1/agents/{agent_id}", dict(body, webhook_secret=secret2))
    expect_ok(r)
    texts.append(r.text)
    r = a.delete(f"/v1/agents/{agent_id}")
    expect_ok(r)
    texts.append(r.text)
    r = a.post(f"/v1/agents/{agent_id}/activate")
    expect_ok(r)
    texts.append(r.text)
    r = a.get(f"/v1/agents/{agent_id}")
    texts.append(r.text)
    for t in texts:
        assert secret not in t and secret2 not in t
        assert "webhook_secret" not in t
        data = json.loads(t)["data"]
        for obj in (data if isinstance(data, list) else [data]):
            assert not any("secret" in k for k in obj), obj


# --- update -------------------------------------------------------------

def test_put_updates_and_keeps_status_and_registration(server):
    a = new_org_client(server)
    agent_id, body, reg = register_agent(a)
    before = expect_ok(a.get(f"/v1/agents/{agent_id}"))
    time.sleep(1.05)
    new = agent_body(agent_id, name="Renamed", description="New description",
                     capability_type="analysis", webhook_url="https://example.org/new",
                     pricing={"per_call_usd": 1.25},
                     sla={"p99_latency_ms": 1200, "availability": 0.5},
                     input_schema={"type": "object", "required": ["x"]},
                     output_schema={"type": "string"}, is_public=True)
    got = expect_ok(a.put(f"/v1/agents/{agent_id}", new))
    assert set(got) == AGENT_FIELDS
    for f in ("name", "description", "capability_type", "webhook_url", "pricing", "sla",
              "input_schema", "output_schema", "is_public"):
        assert got[f] == new[f], f
    assert got["status"] == "probationary"
    assert got["registered_at"] == before["registered_at"] == reg["registered_at"]
    assert got["trust_score"] == before["trust_score"]
    assert got["updated_at"] > before["updated_at"], "updated_at did not move"
    assert expect_ok(a.get(f"/v1/agents/{agent_id}")) == got

    # a paused agent stays paused through an update
    expect_ok(a.delete(f"/v1/agents/{agent_id}"))
    got = expect_ok(a.put(f"/v1/agents/{agent_id}", dict(new, name="Again")))
    assert got["status"] == "paused" and got["name"] == "Again"
    assert got["registered_at"] == reg["registered_at"]


def test_put_without_agent_id_in_body(server):
    a = new_org_client(server)
    agent_id, body, _ = register_agent(a)
    new = dict(body, name="No id in body")
    del new["agent_id"]
    got = expect_ok(a.put(f"/v1/agents/{agent_id}", new))
    assert got["agent_id"] == agent_id and got["name"] == "No id in body"


def test_put_omitted_is_public_resets_default(server):
    a = new_org_client(server)
    agent_id, body, _ = register_agent(a, is_public=True)
    new = dict(body)
    del new["is_public"]
    got = expect_ok(a.put(f"/v1/agents/{agent_id}", new))
    assert got["is_public"] is False, "PUT replaces the definition: omitted is_public is false"


def test_put_mismatched_agent_id(server):
    a = new_org_client(server)
    agent_id, body, _ = register_agent(a)
    before = expect_ok(a.get(f"/v1/agents/{agent_id}"))
    r = a.put(f"/v1/agents/{agent_id}", dict(body, agent_id="someone-else", name="X"))
    expect_error(r, 400, "VALIDATION_ERROR", field="agent_id")
    assert expect_ok(a.get(f"/v1/agents/{agent_id}")) == before
    expect_error(a.get("/v1/agents/someone-else"), 404, "NOT_FOUND")


def test_put_unknown_agent(server):
    a = new_org_client(server)
    r = a.put("/v1/agents/ghost", agent_body("ghost"))
    expect_error(r, 404, "NOT_FOUND")
    expect_error(a.get("/v1/agents/ghost"), 404, "NOT_FOUND")
    assert expect_ok(a.get("/v1/agents")) == []


@pytest.mark.parametrize("path,value,field", [
    ("pricing.per_call_usd", -1, "pricing.per_call_usd"),
    ("sla.availability", 1.5, "sla.availability"),
    ("webhook_secret", PLACEHOLDER_SECRET, "webhook_secret"),
    ("capability_type", "email_send", "capability_type"),
    ("input_schema", [], "input_schema"),
    ("name", DELETE, "name"),
    ("extra", 1, "extra"),
], ids=["price", "availability", "secret", "capability", "schema", "name-missing", "unknown"])
def test_put_bad_input_changes_nothing(server, path, value, field):
    a = new_org_client(server)
    agent_id, body, _ = register_agent(a)
    before = expect_ok(a.get(f"/v1/agents/{agent_id}"))
    new = mutate(dict(body, name="Changed"), path, value)
    expect_error(a.put(f"/v1/agents/{agent_id}", new), 400, "VALIDATION_ERROR", field=field)
    assert expect_ok(a.get(f"/v1/agents/{agent_id}")) == before


# --- list ---------------------------------------------------------------

def test_list_filters_and_pagination(server):
    a = new_org_client(server)
    specs = [("a-1", "research"), ("a-2", "analysis"), ("a-3", "research"),
             ("a-4", "other"), ("a-5", "research")]
    for agent_id, cap in specs:
        register_agent(a, agent_id, capability_type=cap)
    r = a.get("/v1/agents")
    body = check_envelope(r)
    assert [x["agent_id"] for x in body["data"]] == [s[0] for s in specs]
    assert body["meta"]["has_more"] is False
    assert body["meta"]["limit"] == 50 and body["meta"]["offset"] == 0
    for x in body["data"]:
        assert set(x) == AGENT_FIELDS
        assert "webhook_secret" not in x

    r = a.get("/v1/agents", params={"limit": 2})
    body = check_envelope(r)
    assert [x["agent_id"] for x in body["data"]] == ["a-1", "a-2"]
    assert body["meta"]["has_more"] is True and body["meta"]["limit"] == 2
    r = a.get("/v1/agents", params={"limit": 2, "offset": 2})
    body = check_envelope(r)
    assert [x["agent_id"] for x in body["data"]] == ["a-3", "a-4"]
    assert body["meta"]["has_more"] is True and body["meta"]["offset"] == 2
    r = a.get("/v1/agents", params={"limit": 2, "offset": 4})
    body = check_envelope(r)
    assert [x["agent_id"] for x in body["data"]] == ["a-5"]
    assert body["meta"]["has_more"] is False
    r = a.get("/v1/agents", params={"limit": 5})
    assert check_envelope(r)["meta"]["has_more"] is False
    r = a.get("/v1/agents", params={"offset": 99})
    body = check_envelope(r)
    assert body["data"] == [] and body["meta"]["has_more"] is False
    assert len(expect_ok(a.get("/v1/agents", params={"limit": 200}))) == 5
    assert len(expect_ok(a.get("/v1/agents", params={"limit": 1}))) == 1

    res = expect_ok(a.get("/v1/agents", params={"capability_type": "research"}))
    assert [x["agent_id"] for x in res] == ["a-1", "a-3", "a-5"]
    res = expect_ok(a.get("/v1/agents", params={"capability_type": "validation"}))
    assert res == []

    expect_ok(a.delete("/v1/agents/a-3"))
    res = expect_ok(a.get("/v1/agents", params={"status": "paused"}))
    assert [x["agent_id"] for x in res] == ["a-3"]
    res = expect_ok(a.get("/v1/agents", params={"status": "probationary"}))
    assert [x["agent_id"] for x in res] == ["a-1", "a-2", "a-4", "a-5"]
    assert expect_ok(a.get("/v1/agents", params={"status": "active"})) == []
    res = expect_ok(a.get("/v1/agents", params={"status": "probationary",
                                                "capability_type": "research"}))
    assert [x["agent_id"] for x in res] == ["a-1", "a-5"]
    r = a.get("/v1/agents", params={"status": "probationary", "limit": 3})
    body = check_envelope(r)
    assert [x["agent_id"] for x in body["data"]] == ["a-1", "a-2", "a-4"]
    assert body["meta"]["has_more"] is True


@pytest.mark.parametrize("params,field", [
    ({"limit": "0"}, "limit"),
    ({"limit": "201"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"limit": "abc"}, "limit"),
    ({"limit": "1.5"}, "limit"),
    ({"limit": ""}, "limit"),
    ({"limit": "10abc"}, "limit"),
    ({"limit": "99999999999999999999999"}, "limit"),
    ({"offset": "-1"}, "offset"),
    ({"offset": "abc"}, "offset"),
    ({"status": "deleted"}, "status"),
    ({"status": "PAUSED"}, "status"),
    ({"capability_type": "email_send"}, "capability_type"),
])
def test_list_bad_query(server, params, field):
    a = new_org_client(server)
    err = expect_error(a.get("/v1/agents", params=params), 400, "VALIDATION_ERROR", field=field)
    assert field in err["message"], err


# --- pause / activate -----------------------------------------------------

def test_delete_pauses_and_activate_restores(server):
    a = new_org_client(server)
    agent_id, _, reg = register_agent(a)
    d = expect_ok(a.delete(f"/v1/agents/{agent_id}"))
    assert set(d) == AGENT_FIELDS
    assert d["status"] == "paused" and d["agent_id"] == agent_id
    assert expect_ok(a.get(f"/v1/agents/{agent_id}"))["status"] == "paused"
    d2 = expect_ok(a.delete(f"/v1/agents/{agent_id}"))  # idempotent
    assert d2["status"] == "paused"
    d3 = expect_ok(a.post(f"/v1/agents/{agent_id}/activate"))
    assert set(d3) == AGENT_FIELDS
    assert d3["status"] == "probationary"
    assert d3["registered_at"] == reg["registered_at"]
    d4 = expect_ok(a.post(f"/v1/agents/{agent_id}/activate"))  # idempotent
    assert d4["status"] == "probationary"
    assert expect_ok(a.get(f"/v1/agents/{agent_id}"))["status"] == "probationary"
    # the agent remains in the registry while paused
    expect_ok(a.delete(f"/v1/agents/{agent_id}"))
    assert [x["agent_id"] for x in expect_ok(a.get("/v1/agents"))] == [agent_id]


def test_pause_activate_unknown_agent(server):
    a = new_org_client(server)
    expect_error(a.delete("/v1/agents/ghost"), 404, "NOT_FOUND")
    expect_error(a.post("/v1/agents/ghost/activate"), 404, "NOT_FOUND")
    expect_error(a.get("/v1/agents/ghost"), 404, "NOT_FOUND")


def test_activate_with_empty_json_body(server):
    a = new_org_client(server)
    agent_id, _, _ = register_agent(a)
    expect_ok(a.delete(f"/v1/agents/{agent_id}"))
    d = expect_ok(a.post(f"/v1/agents/{agent_id}/activate", {}))
    assert d["status"] == "probationary"


def test_test_key_can_use_registry(server):
    _, live, test = register_org(server)
    t = Api(server, test)
    agent_id, _, _ = register_agent(t)
    assert expect_ok(Api(server, live).get(f"/v1/agents/{agent_id}"))["agent_id"] == agent_id


# --- X-Agent-ID -----------------------------------------------------------

def test_x_agent_id(server):
    _, live, test = register_org(server)
    a = Api(server, live)
    agent_id, _, _ = register_agent(a)
    for key in (live, test):
        me = expect_ok(Api(server, key, agent_id=agent_id).get("/v1/orgs/me"))
        assert me["org_id"]
    expect_ok(Api(server, live, agent_id=agent_id).get("/v1/agents"))

    expect_ok(a.delete(f"/v1/agents/{agent_id}"))
    as_paused = Api(server, live, agent_id=agent_id)
    e1 = expect_error(as_paused.get("/v1/orgs/me"), 403, "FORBIDDEN")
    expect_error(as_paused.get("/v1/agents"), 403, "FORBIDDEN")
    # a rejected agent-initiated write writes nothing
    expect_error(as_paused.post("/v1/agents/register", agent_body("by-paused")), 403, "FORBIDDEN")
    expect_error(a.get("/v1/agents/by-paused"), 404, "NOT_FOUND")

    expect_error(Api(server, live, agent_id="no-such-agent").get("/v1/orgs/me"),
                 403, "FORBIDDEN")
    assert e1["message"]

    expect_ok(a.post(f"/v1/agents/{agent_id}/activate"))
    expect_ok(Api(server, live, agent_id=agent_id).get("/v1/orgs/me"))

    _, other_live, _ = register_org(server)
    expect_error(Api(server, other_live, agent_id=agent_id).get("/v1/orgs/me"), 403, "FORBIDDEN")


def test_list_orders_by_registration_time_then_id(server):
    a = new_org_client(server)
    register_agent(a, "z-first")
    time.sleep(1.05)
    register_agent(a, "b-second")
    register_agent(a, "a-second")
    got = [x["agent_id"] for x in expect_ok(a.get("/v1/agents"))]
    if got != ["z-first", "a-second", "b-second"]:
        regs = {x["agent_id"]: x["registered_at"] for x in expect_ok(a.get("/v1/agents"))}
        assert regs["a-second"] != regs["b-second"] and got == ["z-first", "b-second", "a-second"], \
            f"not ordered by registered_at then agent_id: {got} {regs}"


@pytest.mark.parametrize("field", ["input_schema", "output_schema"])
@pytest.mark.parametrize("schema,where", [
    ({"type": "strng"}, "/type"),
    ({"properties": {"a": {"minLength": -1}}}, "/properties/a/minLength"),
    ({"required": "company_name"}, "/required"),
    ({"$ref": "http://example.com/remote.json"}, "$ref"),
])
def test_register_refuses_schemas_that_are_not_draft7(server, field, schema, where):
    """Issue 10: a schema is checked against the draft-7 meta-schema (and
    compiled, remote refs never fetched) at registration."""
    _, key, _ = register_org(server)
    c = Api(server, key)
    agent_id = unique("schema")
    e = expect_error(c.post("/v1/agents/register", agent_body(agent_id, **{field: schema})),
                     400, "VALIDATION_ERROR", field)
    assert "JSON Schema" in e["message"] and where in e["message"], e["message"]
    expect_error(c.get(f"/v1/agents/{agent_id}"), 404, "NOT_FOUND")
