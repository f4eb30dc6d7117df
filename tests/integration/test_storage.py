"""Storage (issue 2 point 3, 4, 7): persistence across restarts on both
backends, secrets sealed at rest, API keys stored only as hashes."""
import base64
import hashlib
import os
import signal
import stat

from helpers import (Api, agent_body, expect_error, expect_ok, register_agent,
                     register_org_data, unique)


def test_restart_persistence(start_server, backend):
    srv = start_server("--dev", backend=backend)
    d = register_org_data(srv)
    a = Api(srv, d["api_key"])
    agent_id, body, reg = register_agent(a, unique("persist"), is_public=True)
    paused_id, _, _ = register_agent(a, unique("paused"))
    expect_ok(a.delete(f"/v1/agents/{paused_id}"))
    k = expect_ok(a.post("/v1/keys", {"kind": "live", "name": "kept"}), 201)
    gone = expect_ok(a.post("/v1/keys", {"kind": "test", "name": "gone"}), 201)
    expect_ok(a.delete(f"/v1/keys/{gone['key_id']}"))
    before_agent = expect_ok(a.get(f"/v1/agents/{agent_id}"))
    before_keys = expect_ok(a.get("/v1/keys"))
    before_me = expect_ok(a.get("/v1/orgs/me"))
    a.close()

    assert srv.stop(signal.SIGTERM, 10) == 0, srv.tail()
    srv2 = start_server.restart_of(srv)
    a2 = Api(srv2, d["api_key"])
    assert expect_ok(a2.get(f"/v1/agents/{agent_id}")) == before_agent
    assert expect_ok(a2.get(f"/v1/agents/{paused_id}"))["status"] == "paused"
    assert expect_ok(a2.get("/v1/keys")) == before_keys
    assert expect_ok(a2.get("/v1/orgs/me")) == before_me
    expect_ok(Api(srv2, k["api_key"]).get("/v1/orgs/me"))
    expect_ok(Api(srv2, d["test_api_key"]).get("/v1/orgs/me"))
    expect_error(Api(srv2, gone["api_key"]).get("/v1/orgs/me"), 401, "UNAUTHORIZED")
    expect_error(a2.post("/v1/agents/register", agent_body(agent_id)), 409, "CONFLICT")
    # migrations are idempotent: a second restart is fine too
    assert srv2.stop(signal.SIGTERM, 10) == 0, srv2.tail()
    srv3 = start_server.restart_of(srv2)
    assert expect_ok(Api(srv3, d["api_key"]).get(f"/v1/agents/{agent_id}")) == before_agent
    assert srv3.stop(signal.SIGTERM, 10) == 0


def test_master_key_file_created_private(start_server):
    srv = start_server("--dev")
    p = srv.master_key_path
    assert os.path.exists(p), "no master key generated at --master-key-file"
    st = os.stat(p)
    assert st.st_size > 0
    assert stat.S_IMODE(st.st_mode) & 0o077 == 0, f"master key mode {oct(st.st_mode)}"
    with open(p, "rb") as f:
        first = f.read()
    # kept across restarts
    assert srv.stop() == 0
    start_server.restart_of(srv)
    with open(p, "rb") as f:
        assert f.read() == first, "master key changed on restart"


def _digest_forms(key):
    dig = hashlib.sha256(key.encode()).digest()
    return [dig.hex(), dig.hex().upper(), base64.b64encode(dig).decode(),
            base64.b64encode(dig).decode().rstrip("="), dig.decode("latin-1")]


def test_secrets_not_stored_in_plaintext(server):
    d = register_org_data(server)
    a = Api(server, d["api_key"])
    secret = "PlainTextCanary-" + os.urandom(12).hex()  # 40 chars
    agent_id, body, _ = register_agent(a, unique("sealed"), webhook_secret=secret)
    secret2 = "SecondCanary-" + os.urandom(12).hex()
    expect_ok(a.put(f"/v1/agents/{agent_id}", dict(body, webhook_secret=secret2)))
    k = expect_ok(a.post("/v1/keys", {"kind": "live", "name": "x"}), 201)
    dump = server.db_text_dump()
    assert agent_id in dump, "sanity: the dump does not contain the agent row"
    for s in (secret, secret2):
        assert s not in dump, f"webhook secret stored in plaintext ({server.backend})"
        assert s.encode().hex() not in dump
    for key in (d["api_key"], d["test_api_key"], k["api_key"]):
        assert key not in dump, f"API key stored in plaintext ({server.backend})"
        assert key[8:60] not in dump, "API key body stored"
        assert key[8:] not in dump
        assert any(form in dump for form in _digest_forms(key)), \
            f"no SHA-256 of the key found in the database ({server.backend})"
