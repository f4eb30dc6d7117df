"""Storage (issue 2 point 3, 4, 7): persistence across restarts on both
backends, secrets sealed at rest, API keys stored only as hashes."""
import base64
import hashlib
import os
import shutil
import signal
import stat
import time

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
    assert first.strip().decode(errors="replace") not in srv.logs(), "master key logged"
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


def test_two_processes_share_one_database(start_server, backend):
    """keys.md: a revoked key fails on the next request in every server
    process; agents written by one process are read by the other."""
    s1 = start_server("--dev", backend=backend)
    s2 = start_server("--dev", backend=backend, db=s1.db, start=False)
    shutil.copyfile(s1.master_key_path, s2.master_key_path)
    s2.start()
    d = register_org_data(s1)
    a1, a2 = Api(s1, d["api_key"]), Api(s2, d["api_key"])
    agent_id, _, _ = register_agent(a1, unique("shared"))
    assert expect_ok(a2.get(f"/v1/agents/{agent_id}"))["agent_id"] == agent_id
    expect_ok(a2.delete(f"/v1/agents/{agent_id}"))
    assert expect_ok(a1.get(f"/v1/agents/{agent_id}"))["status"] == "paused"
    k = expect_ok(a1.post("/v1/keys", {"kind": "live"}), 201)
    k2 = Api(s2, k["api_key"])
    expect_ok(k2.get("/v1/orgs/me"))
    expect_ok(a1.delete(f"/v1/keys/{k['key_id']}"))
    expect_error(k2.get("/v1/orgs/me"), 401, "UNAUTHORIZED")
    expect_error(a2.post("/v1/agents/register", agent_body(agent_id)), 409, "CONFLICT")
    assert s2.stop() == 0
    assert s1.stop() == 0


def test_bad_master_key_refuses_to_start(start_server):
    srv = start_server("--dev", start=False)
    with open(srv.master_key_path, "w") as f:
        f.write("not a key\n")
    os.chmod(srv.master_key_path, 0o600)
    srv._spawn("127.0.0.1:0")
    rc = srv.wait(10)
    assert rc not in (None, 0), "server started with a garbage master key file"
    srv2 = start_server("--dev", start=False, env={"NEXRA_MASTER_KEY": "abc123"})
    srv2._spawn("127.0.0.1:0")
    rc = srv2.wait(10)
    assert rc not in (None, 0), "server started with a malformed NEXRA_MASTER_KEY"


def test_master_key_from_environment(start_server):
    key = os.urandom(32).hex()
    srv = start_server("--dev", env={"NEXRA_MASTER_KEY": key})
    d = register_org_data(srv)
    register_agent(Api(srv, d["api_key"]), unique("envkey"))
    assert srv.stop() == 0
    srv2 = start_server.restart_of(srv)
    expect_ok(Api(srv2, d["api_key"]).get("/v1/orgs/me"))


def test_concurrent_first_start_runs_migrations_once(start_server, backend):
    """Several processes starting at once on a fresh database all come up."""
    import threading
    first = start_server("--dev", backend=backend, start=False)
    others = [start_server("--dev", backend=backend, db=first.db, start=False)
              for _ in range(2)]
    errors = []

    def go(s):
        try:
            s.start()
        except BaseException as e:  # noqa: BLE001  (pytest.fail raises BaseException)
            errors.append(f"{e}")

    threads = [threading.Thread(target=go, args=(s,)) for s in [first] + others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    d = register_org_data(first)
    for s in others:
        expect_ok(Api(s, d["api_key"]).get("/v1/orgs/me"))


def test_sqlite_wal_and_clean_close(start_server):
    import sqlite3
    srv = start_server("--dev")
    d = register_org_data(srv)
    register_agent(Api(srv, d["api_key"]), unique("wal"))
    con = sqlite3.connect(srv.sqlite_path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    finally:
        con.close()
    assert srv.stop() == 0
    # a cleanly closed database leaves no un-checkpointed WAL behind
    wal = srv.sqlite_path + "-wal"
    assert not os.path.exists(wal) or os.path.getsize(wal) == 0, \
        f"{os.path.getsize(wal)} bytes left in the WAL: database not closed cleanly"


def test_postgres_outage(start_server):
    """Malformed and bad-checksum keys are refused without the database; a
    database failure is a 500 INTERNAL logged with the request id, and the
    server recovers when the database is back."""
    import json
    from helpers import flip_char
    srv = start_server("--dev", backend="postgres")
    d = register_org_data(srv)
    a = Api(srv, d["api_key"])
    expect_ok(a.get("/v1/orgs/me"))
    pg, db = srv.pg, srv.pg_dbname
    pg.psql("nexra", f"ALTER DATABASE {db} ALLOW_CONNECTIONS false")
    try:
        pg.psql("nexra", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         f"WHERE datname = '{db}'")
        for bad in (flip_char(d["api_key"], 62), d["api_key"][:-1], "nx_live_x"):
            r = Api(srv, bad).get("/v1/orgs/me")
            expect_error(r, 401, "UNAUTHORIZED")
        r = a.get("/v1/orgs/me")
        assert r.status_code in (500, 503), r.text
        err = expect_error(r, r.status_code, "INTERNAL" if r.status_code == 500 else "UNAVAILABLE")
        assert "postgres" not in err["message"].lower(), "database error text leaked to client"
        rid = r.json()["meta"]["request_id"]
        lines = [ln for ln in srv.logs().splitlines() if rid in ln]
        assert lines and json.loads(lines[0]).get("request_id") == rid
    finally:
        pg.psql("nexra", f"ALTER DATABASE {db} ALLOW_CONNECTIONS true")
    ok = False
    for _ in range(20):
        if a.get("/v1/orgs/me").status_code == 200:
            ok = True
            break
        time.sleep(0.2)
    assert ok, "server did not recover after the database came back"
    assert srv.stop() == 0
