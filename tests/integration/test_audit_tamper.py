"""The audit log under attack and at scale (docs/audit.md):

- tampering with a real SQLite database file (a byte changed, a row
  deleted, rows reordered, a row inserted, the log truncated, entries and
  their stored leaf hashes rewritten together) and with export files (lines
  reordered, inserted, cut, re-signed with another key): each is caught by
  `nexra audit verify` and by the outside verifier, naming the first bad
  entry;
- concurrent appends from many requests, and from two servers on one
  PostgreSQL, leave one linear log whose proofs verify;
- an export of 1,000,000 entries streams with the server's memory flat."""
import base64
import json
import os
import secrets
import sqlite3
import subprocess
import threading
import time

import pytest
import requests

from audit_verify import checkpoint_message
from audit_verify import verify as py_verify, Bad
from callee import DelegationOrg, ok, status
from helpers import Api, expect_ok
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_audit import (export, entries_of, leaf_hash, mth, public_key, verify_consistency,
                        verify_inclusion, h)


def build(server, callee, n=8):
    w = DelegationOrg(server, callee)
    cid = w.add_callee(price=0.05)
    for i in range(n):
        callee.behave(cid, ok(cost=0.01) if i % 3 else status(500))
        w.api.post("/v1/delegate", w.body(cid))
    return w


def cli_verify(nexra_bin, path, pk, old=None):
    argv = [nexra_bin, "audit", "verify", str(path), "--public-key", pk]
    if old:
        argv += ["--checkpoint", str(old)]
    r = subprocess.run(argv, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def fetch(api, tmp_path, name, fmt="jsonl"):
    p = tmp_path / name
    p.write_bytes(export(api, fmt))
    return p


def expect_caught(nexra_bin, tmp_path, api, pk, oldf, old, event, words, fmt="jsonl"):
    """A fresh export of the tampered database fails verification (both
    formats with the CLI, JSONL with the outside verifier) naming `event`."""
    f = fetch(api, tmp_path, f"after.{fmt}", fmt)
    rc, out = cli_verify(nexra_bin, f, pk, oldf)
    assert rc == 1, out
    assert words in out, out
    if event:
        assert f"first bad entry: event {event} " in out, out
    if fmt == "jsonl":
        with pytest.raises(Bad) as e:
            py_verify(str(f), pk, old)
        if event:
            assert str(event) in str(e.value), e.value
    return out


@pytest.fixture
def tamper_env(start_server, callee, tmp_path):
    srv = start_server("--dev", backend="sqlite")
    w = build(srv, callee)
    api = w.admin
    pk, _ = public_key(api)
    old = expect_ok(api.get("/v1/audit/checkpoint"))
    assert old["tree_size"] == 8
    oldf = tmp_path / "old.json"
    oldf.write_text(json.dumps(old))
    f = fetch(api, tmp_path, "before.jsonl")
    db = sqlite3.connect(srv.sqlite_path, timeout=10, isolation_level=None)
    yield srv, w, api, pk, old, oldf, f, db
    db.close()


def sql(db, *stmts):
    db.execute("BEGIN IMMEDIATE")
    for s in stmts:
        db.execute(s[0], s[1:]) if isinstance(s, tuple) else db.execute(s)
    db.execute("COMMIT")


def test_clean_log_verifies(tamper_env, nexra_bin, tmp_path):
    srv, w, api, pk, old, oldf, f, db = tamper_env
    for fmt in ("jsonl", "csv"):
        rc, out = cli_verify(nexra_bin, fetch(api, tmp_path, "x." + fmt, fmt), pk, oldf)
        assert rc == 0 and "OK 8 entries" in out, out


def test_db_byte_changed(tamper_env, nexra_bin, tmp_path):
    srv, w, api, pk, old, oldf, f, db = tamper_env
    # one byte of one column of entry 3: the cost, 0.01 -> 0.02 USD
    sql(db, ("UPDATE audit_log SET cost_micros = cost_micros + 10000 WHERE org_id = ? "
             "AND event_id = 3", w.org_id))
    expect_caught(nexra_bin, tmp_path, api, pk, oldf, old, 3, "entry 3 was changed")
    expect_caught(nexra_bin, tmp_path, api, pk, oldf, old, 3, "entry 3 was changed", "csv")


def test_db_row_deleted(tamper_env, nexra_bin, tmp_path):
    srv, w, api, pk, old, oldf, f, db = tamper_env
    sql(db, ("DELETE FROM audit_log WHERE org_id = ? AND event_id = 4", w.org_id))
    expect_caught(nexra_bin, tmp_path, api, pk, oldf, old, 4, "entry 4 is missing")


def test_db_rows_reordered(tamper_env, nexra_bin, tmp_path):
    srv, w, api, pk, old, oldf, f, db = tamper_env
    o = w.org_id
    sql(db, ("UPDATE audit_log SET event_id = -2 WHERE org_id = ? AND event_id = 2", o),
        ("UPDATE audit_log SET event_id = 2 WHERE org_id = ? AND event_id = 5", o),
        ("UPDATE audit_log SET event_id = 5 WHERE org_id = ? AND event_id = -2", o))
    expect_caught(nexra_bin, tmp_path, api, pk, oldf, old, 2, "entry 2 was changed")


def test_db_row_inserted(tamper_env, nexra_bin, tmp_path):
    srv, w, api, pk, old, oldf, f, db = tamper_env
    o = w.org_id
    stmts = [(f"UPDATE audit_log SET event_id = -event_id WHERE org_id = ? AND event_id >= 3", o),
             (f"UPDATE audit_log SET event_id = 1 - event_id WHERE org_id = ? AND event_id < 0",
              o),
             ("INSERT INTO audit_log SELECT org_id, 3, 'del_forged', ts, caller_id, callee_id, "
              "policy_ref, decision, status, 0, budget_remaining_micros, trust_before, "
              "trust_after, approval FROM audit_log WHERE org_id = ? AND event_id = 2", o)]
    sql(db, *stmts)
    expect_caught(nexra_bin, tmp_path, api, pk, oldf, old, 3, "entry 3 was changed")


def test_db_entry_and_leaf_rewritten(tamper_env, nexra_bin, tmp_path):
    """An attacker who also rewrites the stored leaf hash: the export's
    leaf hashes match, but not the signed root, nor the old checkpoint."""
    srv, w, api, pk, old, oldf, f, db = tamper_env
    o = w.org_id
    sql(db, ("UPDATE audit_log SET caller_id = 'mallory' WHERE org_id = ? AND event_id = 6", o))
    line = [l for l in fetch(api, tmp_path, "mid.jsonl").read_bytes().split(b"\n")
            if l.startswith(b'{"entry":') and b'"event_id":6,' in l][0]
    forged = leaf_hash(line[9:line.rfind(b',"leaf_hash":')])
    sql(db, ("UPDATE audit_nodes SET hash = ? WHERE level = 0 AND idx = 5 AND tree_id = "
             "(SELECT tree_id FROM audit_trees WHERE org_id = ?)", forged, o))
    out = expect_caught(nexra_bin, tmp_path, api, pk, None, None, 0,
                        "do not hash to the signed root")
    assert "FAIL" in out


def test_db_truncated(tamper_env, nexra_bin, tmp_path):
    """Rows deleted from the end and the tree rolled back to match: the
    server signs the shorter log, and only the old checkpoint shows it."""
    srv, w, api, pk, old, oldf, f, db = tamper_env
    o = w.org_id
    sql(db, ("DELETE FROM audit_log WHERE org_id = ? AND event_id > 5", o),
        ("UPDATE orgs SET audit_seq = 5 WHERE org_id = ?", o),
        ("UPDATE audit_trees SET size = 5 WHERE org_id = ?", o),
        ("DELETE FROM audit_nodes WHERE tree_id = (SELECT tree_id FROM audit_trees WHERE "
         "org_id = ?) AND ((idx + 1) << level) > 5", o))
    after = fetch(api, tmp_path, "short.jsonl")
    rc, out = cli_verify(nexra_bin, after, pk)  # alone it is a consistent, signed log
    assert rc == 0, out
    expect_caught(nexra_bin, tmp_path, api, pk, oldf, old, 6, "truncated")


def test_file_tampering(tamper_env, nexra_bin, tmp_path):
    srv, w, api, pk, old, oldf, f, db = tamper_env
    lines = f.read_bytes().split(b"\n")[:-1]  # header, 8 entries, checkpoint

    def check(name, new_lines, event, words, with_old=True):
        p = tmp_path / name
        p.write_bytes(b"\n".join(new_lines) + b"\n")
        rc, out = cli_verify(nexra_bin, p, pk, oldf if with_old else None)
        assert rc == 1 and words in out, out
        if event:
            assert f"first bad entry: event {event} " in out, out
        with pytest.raises(Bad):
            py_verify(str(p), pk, old if with_old else None)

    # any single byte of an entry: here a digit of entry 7's cost
    l7 = lines[7]
    i = l7.index(b'"cost_usd":') + len(b'"cost_usd":')
    flipped = l7[:i] + bytes([l7[i] ^ 1]) + l7[i + 1:]
    check("byte.jsonl", lines[:7] + [flipped] + lines[8:], 7, "entry 7 was changed")
    check("swap.jsonl", lines[:2] + [lines[3], lines[2]] + lines[4:], 2, "entry 2 is missing")
    check("dup.jsonl", lines[:5] + [lines[3]] + lines[5:], 3, "out of order or repeated")
    check("drop.jsonl", lines[:4] + lines[5:], 4, "entry 4 is missing")
    check("cut.jsonl", lines[:6], 6, "without its checkpoint")

    # truncated and re-signed with another key
    sk = Ed25519PrivateKey.generate()
    cp = dict(json.loads(lines[-1])["checkpoint"])
    entries = lines[1:6]
    from audit_verify import Frontier
    t = Frontier()
    for e in entries:
        t.append(leaf_hash(e[9:e.rfind(b',"leaf_hash":')]))
    cp["tree_size"] = 5
    cp["root_hash"] = t.root().hex()
    cp["signature"] = base64.b64encode(sk.sign(checkpoint_message(cp))).decode()
    forged = [lines[0]] + entries + [json.dumps({"checkpoint": cp}).encode()]
    check("resigned.jsonl", forged, 0, "not signed by the given public key")
    check("resigned2.jsonl", forged, 0, "not signed by the given public key", with_old=False)


# --------------------------------------------------------------------------
# Concurrency

def drive(w, cid, callee, n, errors):
    try:
        for _ in range(n):
            w.api.post("/v1/delegate", w.body(cid))
    except Exception as e:  # noqa: BLE001
        errors.append(e)


def assert_linear(api, pk_b64, tmp_path, size):
    cp = expect_ok(api.get("/v1/audit/checkpoint"))
    assert cp["tree_size"] == size
    f = tmp_path / "lin.jsonl"
    f.write_bytes(export(api))
    assert py_verify(str(f), pk_b64) == (size, size)
    entries = entries_of(f.read_bytes())
    assert [json.loads(e)["event_id"] for e in entries] == list(range(1, size + 1))
    leaves = [leaf_hash(e) for e in entries]
    assert len({json.loads(e)["delegation_id"] for e in entries}) == size
    for m in (1, size // 3, size - 1):
        p = expect_ok(api.get(f"/v1/audit/log/{m}/proof", params={"tree_size": size}))
        assert verify_inclusion(m - 1, size, leaves[m - 1], [h(x) for x in p["audit_path"]],
                                mth(leaves))
        c = expect_ok(api.get("/v1/audit/consistency", params={"from": m, "to": size}))
        assert verify_consistency(m, size, mth(leaves[:m]), mth(leaves),
                                  [h(x) for x in c["proof"]])
    return cp


def test_concurrent_requests_one_log(server, callee, tmp_path):
    w = DelegationOrg(server, callee)
    cid = w.add_callee(price=0.01)
    callee.behave(cid, ok(cost=0.01))
    callee.behave(cid, *[ok(cost=0.01)] * 200)
    pk, _ = public_key(w.admin)
    errors = []
    stop = threading.Event()

    def poll():  # checkpoints and proofs while appends happen: catch-ups race the appender
        while not stop.is_set():
            expect_ok(w.admin.get("/v1/audit/checkpoint"))

    threads = [threading.Thread(target=drive, args=(w, cid, callee, 8, errors)) for _ in range(6)]
    pollers = [threading.Thread(target=poll) for _ in range(2)]
    for t in threads + pollers:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    for t in pollers:
        t.join()
    assert not errors, errors
    assert_linear(w.admin, pk, tmp_path, 48)


def test_two_servers_one_postgres(start_server, callee, tmp_path, request):
    if "postgres" not in os.environ.get("NEXRA_TEST_BACKENDS", "sqlite,postgres"):
        pytest.skip("PostgreSQL not in NEXRA_TEST_BACKENDS")
    pg = request.getfixturevalue("pg_cluster")
    uri = pg.uri(pg.new_database())
    env = {"NEXRA_MASTER_KEY": secrets.token_hex(32)}
    a = start_server("--dev", backend="postgres", db=uri, env=env)
    b = start_server("--dev", backend="postgres", db=uri, env=env)
    w = DelegationOrg(a, callee)
    cid = w.add_callee(price=0.01)
    callee.behave(cid, *[ok(cost=0.01)] * 200)
    wb = DelegationOrg.__new__(DelegationOrg)
    wb.__dict__.update(w.__dict__)
    wb.api = Api(b, w.live_key, agent_id=w.caller_id)
    pka, _ = public_key(w.admin)
    pkb, _ = public_key(Api(b, w.live_key))
    assert pka == pkb  # one key for every server on the database
    errors = []
    threads = [threading.Thread(target=drive, args=(x, cid, callee, 10, errors))
               for x in (w, wb) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(10):  # both servers catch their trees up while the others append
        expect_ok(w.admin.get("/v1/audit/checkpoint"))
        expect_ok(Api(b, w.live_key).get("/v1/audit/checkpoint"))
    for t in threads:
        t.join()
    assert not errors, errors
    cpa = assert_linear(w.admin, pka, tmp_path, 60)
    cpb = expect_ok(Api(b, w.live_key).get("/v1/audit/checkpoint"))
    assert cpb["tree_size"] == 60 and cpb["root_hash"] == cpa["root_hash"]
    # a server with another master key cannot open the shared signing key:
    # it serves, but signs nothing (503) rather than make a second key
    c = start_server("--dev", backend="postgres", db=uri,
                     env={"NEXRA_MASTER_KEY": secrets.token_hex(32)})
    from helpers import expect_error
    expect_error(Api(c, w.live_key).get("/v1/audit/checkpoint"), 503, "UNAVAILABLE")
    assert "does not open with this master key" in c.logs()


# --------------------------------------------------------------------------
# Scale

def rss_kb(pid):
    """Anonymous resident memory (heap, stacks): what the server allocates.
    File-backed pages (SQLite maps up to 256 MiB of the database) are the
    kernel's page cache and are left out."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def test_export_million_entries_flat_memory(start_server, nexra_bin, tmp_path):
    srv = start_server("--dev", backend="sqlite")
    from helpers import register_org_data
    d = register_org_data(srv)
    api = Api(srv, d["api_key"])
    n = 1_000_000
    db = sqlite3.connect(srv.sqlite_path, timeout=30, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    db.execute("""
        WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)
        INSERT INTO audit_log SELECT ?, i, printf('del_%024x', i), 1773670000 + i / 100,
          'caller-' || (i % 7), 'callee-' || (i % 13), 'prod-policy-v3', 'ALLOW', 'completed',
          i % 1000 * 10, -1, 0.5 + (i % 100) / 1000.0, 0.5 + (i % 101) / 1000.0, NULL
        FROM s""",
               (n, d["org_id"]))
    db.execute("UPDATE orgs SET audit_seq = ? WHERE org_id = ?", (n, d["org_id"]))
    db.execute("COMMIT")
    db.close()
    pk, _ = public_key(api)
    # build the tree first (the background appender has started on it; the
    # checkpoint request appends the rest)
    auth = {"Authorization": "Bearer " + d["api_key"]}
    cp = requests.get(srv.url + "/v1/audit/checkpoint", headers=auth, timeout=900).json()["data"]
    assert cp["tree_size"] == n
    base = rss_kb(srv.proc.pid)
    peak = base
    f = tmp_path / "million.jsonl"
    with requests.get(srv.url + "/v1/audit/log/export", params={"format": "jsonl"},
                      headers=auth, stream=True,
                      timeout=600) as r, open(f, "wb") as out:
        assert r.status_code == 200
        for i, chunk in enumerate(r.iter_content(1 << 20)):
            out.write(chunk)
            if i % 16 == 0:
                peak = max(peak, rss_kb(srv.proc.pid))
    size = os.path.getsize(f)
    assert size > 200 * n  # the whole range went out...
    assert peak - base < 64 * 1024, (base, peak)  # ...through a few MB at most
    rc, out = cli_verify(nexra_bin, f, pk)
    assert rc == 0 and f"OK {n} entries" in out, out
