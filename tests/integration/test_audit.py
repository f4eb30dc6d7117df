"""The verifiable audit log (docs/audit.md) against the real server, on
SQLite and PostgreSQL: checkpoints signed with the server's Ed25519 key,
inclusion and consistency proofs checked with an independent RFC 9162
implementation, the log list with its filters, JSONL and CSV exports that
the outside verifier (audit_verify.py, stdlib + Ed25519) and
`nexra audit verify` accept, and bad queries refused."""
import base64
import hashlib
import json
import os
import subprocess

import pytest

from audit_verify import Frontier, checkpoint_message, leaf_hash, node_hash
from audit_verify import verify as py_verify
from callee import DelegationOrg, ok, status
from helpers import Api, expect_error, expect_ok, is_rfc3339z, register_org_data
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HERE = os.path.dirname(os.path.abspath(__file__))
ENTRY_KEYS = {"event_id", "timestamp", "delegation_id", "caller_id", "callee_id", "policy_ref",
              "decision", "cost_usd", "budget_remaining", "trust_delta", "org_id", "status",
              "approval"}


# --------------------------------------------------------------------------
# An independent RFC 9162 reference: recursive MTH, and the RFC's
# verification algorithms.

def mth(leaves):
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def verify_inclusion(m, n, leaf, path, root):
    if m >= n:
        return False
    fn, sn, r = m, n - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(m, n, root_m, root_n, path):
    if m == n:
        return not path and root_m == root_n
    if m == 0 or m > n or not path:
        return False
    if m & (m - 1) == 0:
        path = [root_m] + path
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root_m and sr == root_n


def h(x):
    return bytes.fromhex(x)


# --------------------------------------------------------------------------

def make_log(server, callee, n_ok=5, n_fail=2, n_blocked=1):
    """An org with n_ok completed, n_fail failed and n_blocked blocked
    delegations: that many audit entries."""
    w = DelegationOrg(server, callee)
    cid = w.add_callee(price=0.05)
    for i in range(n_ok):
        callee.behave(cid, ok(cost=0.01 * (i + 1)))
        expect_ok(w.api.post("/v1/delegate", w.body(cid)))
    for _ in range(n_fail):
        callee.behave(cid, status(500))
        w.api.post("/v1/delegate", w.body(cid))
    for _ in range(n_blocked):
        w.api.post("/v1/delegate", w.body(cid, cap=0.01))  # price above the cap
    return w, cid


def public_key(api):
    d = expect_ok(api.get("/v1/audit/public-key"))
    assert d["algorithm"] == "Ed25519"
    raw = base64.b64decode(d["public_key"])
    assert len(raw) == 32
    assert d["key_id"] == hashlib.sha256(raw).hexdigest()[:16]
    return d["public_key"], Ed25519PublicKey.from_public_bytes(raw)


def export(api, fmt="jsonl", **q):
    params = {"format": fmt, **q}
    r = api.get("/v1/audit/log/export", params=params)
    assert r.status_code == 200, r.text
    return r.content


def entries_of(body):
    out = []
    for line in body.split(b"\n")[1:]:
        if line.startswith(b'{"entry":'):
            cut = line.rfind(b',"leaf_hash":')
            out.append(line[len(b'{"entry":'):cut])
    return out


def test_checkpoint_proofs_and_list(server, callee):
    w, cid = make_log(server, callee)
    api = w.admin
    pk_b64, pk = public_key(api)
    cp = expect_ok(api.get("/v1/audit/checkpoint"))
    assert set(cp) == {"org_id", "tree_size", "root_hash", "timestamp", "key_id", "signature"}
    assert cp["org_id"] == w.org_id and cp["tree_size"] == 8 and is_rfc3339z(cp["timestamp"])
    pk.verify(base64.b64decode(cp["signature"]), checkpoint_message(cp))

    body = export(api)
    entries = entries_of(body)
    assert len(entries) == 8
    leaves = [leaf_hash(e) for e in entries]
    assert cp["root_hash"] == mth(leaves).hex()
    objs = [json.loads(e) for e in entries]
    assert [o["event_id"] for o in objs] == list(range(1, 9))
    for e, o in zip(entries, objs):  # canonical: sorted keys, no whitespace
        assert e == json.dumps(o, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode()
        assert set(o) == ENTRY_KEYS
    assert [o["status"] for o in objs] == ["completed"] * 5 + ["failed"] * 2 + ["blocked"]
    assert [o["decision"] for o in objs] == ["ALLOW"] * 7 + ["BLOCK"]
    assert objs[0]["cost_usd"] == 0.01 and objs[4]["cost_usd"] == 0.05
    assert objs[0]["trust_delta"]["before"] == 0.5 and objs[0]["trust_delta"]["after"] == 0.6

    for n in range(1, 9):
        root = mth(leaves[:n])
        for m in range(1, n + 1):
            p = expect_ok(api.get(f"/v1/audit/log/{m}/proof", params={"tree_size": n}))
            assert p["tree_size"] == n and p["leaf_index"] == m - 1 and p["event_id"] == m
            assert h(p["leaf_hash"]) == leaves[m - 1] and h(p["root_hash"]) == root
            path = [h(x) for x in p["audit_path"]]
            assert verify_inclusion(m - 1, n, leaves[m - 1], path, root)
            if path:
                assert not verify_inclusion(m - 1, n, leaves[m - 1], path[:-1], root)
            c = expect_ok(api.get("/v1/audit/consistency", params={"from": m, "to": n}))
            assert h(c["from_root"]) == mth(leaves[:m]) and h(c["to_root"]) == root
            proof = [h(x) for x in c["proof"]]
            assert verify_consistency(m, n, mth(leaves[:m]), root, proof)
            if m < n:
                bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:]] + proof[1:]
                assert not verify_consistency(m, n, mth(leaves[:m]), root, bad)
    # default tree_size: the current one
    p = expect_ok(api.get("/v1/audit/log/3/proof"))
    assert p["tree_size"] == 8

    # the list: newest first, the seed's fields, filters
    r = api.get("/v1/audit/log", params={"limit": 3})
    lst = expect_ok(r)
    assert [e["event_id"] for e in lst] == [8, 7, 6]
    assert r.json()["meta"]["has_more"] is True
    assert lst[0] == objs[7]
    assert [e["event_id"] for e in expect_ok(api.get("/v1/audit/log",
                                                     params={"decision": "BLOCK"}))] == [8]
    d = objs[2]["delegation_id"]
    assert [e["event_id"] for e in expect_ok(api.get("/v1/audit/log",
                                                     params={"delegation_id": d}))] == [3]
    assert len(expect_ok(api.get("/v1/audit/log", params={"agent_id": cid, "limit": 50}))) == 8
    assert expect_ok(api.get("/v1/audit/log", params={"agent_id": "nobody"})) == []
    assert expect_ok(api.get("/v1/audit/log", params={"to": "2000-01-01T00:00:00Z"})) == []

    # another org sees none of it
    other = Api(server, register_org_data(server)["api_key"])
    assert expect_ok(other.get("/v1/audit/log")) == []
    assert expect_ok(other.get("/v1/audit/checkpoint"))["tree_size"] == 0
    expect_error(other.get("/v1/audit/log/1/proof"), 404, "NOT_FOUND")


def test_bad_queries(server, callee):
    w, _ = make_log(server, callee, n_ok=2, n_fail=0, n_blocked=0)
    api = w.admin
    expect_error(api.get("/v1/audit/log/3/proof"), 404, "NOT_FOUND")
    expect_error(api.get("/v1/audit/log/0/proof"), 404, "NOT_FOUND")
    expect_error(api.get("/v1/audit/log/x/proof"), 404, "NOT_FOUND")
    expect_error(api.get("/v1/audit/log/2/proof", params={"tree_size": 1}), 400,
                 "VALIDATION_ERROR", "tree_size")
    expect_error(api.get("/v1/audit/log/1/proof", params={"tree_size": 3}), 400,
                 "VALIDATION_ERROR", "tree_size")
    expect_error(api.get("/v1/audit/log/1/proof", params={"tree_size": "-1"}), 400,
                 "VALIDATION_ERROR", "tree_size")
    expect_error(api.get("/v1/audit/consistency"), 400, "VALIDATION_ERROR", "from")
    expect_error(api.get("/v1/audit/consistency", params={"from": 0, "to": 2}), 400,
                 "VALIDATION_ERROR", "from")
    expect_error(api.get("/v1/audit/consistency", params={"from": 2, "to": 1}), 400,
                 "VALIDATION_ERROR", "from")
    expect_error(api.get("/v1/audit/consistency", params={"from": 1, "to": 3}), 400,
                 "VALIDATION_ERROR", "to")
    expect_error(api.get("/v1/audit/log", params={"decision": "allow"}), 400,
                 "VALIDATION_ERROR", "decision")
    expect_error(api.get("/v1/audit/log", params={"from": "yesterday"}), 400,
                 "VALIDATION_ERROR", "from")
    expect_error(api.get("/v1/audit/log/export", params={"format": "xml"}), 400,
                 "VALIDATION_ERROR", "format")
    expect_error(Api(server).get("/v1/audit/checkpoint"), 401, "UNAUTHORIZED")


def test_exports_verify(server, callee, nexra_bin, tmp_path):
    w, _ = make_log(server, callee)
    api = w.admin
    pk_b64, _ = public_key(api)
    old = expect_ok(api.get("/v1/audit/checkpoint"))
    oldf = tmp_path / "old.json"
    oldf.write_text(json.dumps(old))
    make_log_more(w, callee, 3)
    body = export(api)
    f = tmp_path / "log.jsonl"
    f.write_bytes(body)
    assert py_verify(str(f), pk_b64, old) == (11, 11)
    r = subprocess.run([nexra_bin, "audit", "verify", str(f), "--public-key", pk_b64,
                        "--checkpoint", str(oldf)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "11 entries" in r.stdout
    # the outside verifier as a separate program, as an auditor runs it
    r = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "audit_verify.py"), str(f),
                        pk_b64, str(oldf)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("OK 11 entries"), r.stdout + r.stderr

    csvf = tmp_path / "log.csv"
    csvf.write_bytes(export(api, "csv"))
    r = subprocess.run([nexra_bin, "audit", "verify", str(csvf), "--public-key", pk_b64,
                        "--checkpoint", str(oldf)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

    # a time range: contiguous, with the prefix of the tree before it
    objs = [json.loads(e) for e in entries_of(body)]
    part = export(api, **{"from": objs[0]["timestamp"], "to": "2999-01-01T00:00:00Z"})
    assert entries_of(part) == entries_of(body)
    empty = export(api, **{"to": "2000-01-01T00:00:00Z"})
    assert entries_of(empty) == []
    ef = tmp_path / "empty.jsonl"
    ef.write_bytes(empty)
    assert py_verify(str(ef), pk_b64) == (0, 11)


def make_log_more(w, callee, n):
    cid = w.add_callee(price=0.02)
    for _ in range(n):
        callee.behave(cid, ok(cost=0.01))
        expect_ok(w.api.post("/v1/delegate", w.body(cid)))


def test_trust_explained_and_demotion(server, callee):
    """GET /v1/agents/{id}/trust explains the score; five completions make
    a callee active, three failures in a row send it back (docs/trust.md);
    every audit entry carries the before/after."""
    w = DelegationOrg(server, callee)
    cid = w.add_callee(price=0.05, p99=3000)
    t = expect_ok(w.admin.get(f"/v1/agents/{cid}/trust"))
    assert t["status"] == "probationary" and t["trust_score"] == 0.5
    assert t["sample_size"] == 0 and t["last_changes"] == []
    assert t["model"]["promote_after"] == 5 and t["model"]["demote_after"] == 3
    for _ in range(5):
        callee.behave(cid, ok(cost=0.05))
        expect_ok(w.api.post("/v1/delegate", w.body(cid)))
    t = expect_ok(w.admin.get(f"/v1/agents/{cid}/trust"))
    assert t["status"] == "active"
    assert t["sample_size"] == 5 and t["completed"] == 5 and t["failure_streak"] == 0
    c = t["components"]
    assert c["completion"] == 1 and c["latency"] == 1 and c["cost_accuracy"] == 1
    assert abs(t["trust_score"] - (1 - 0.5 * 0.8 ** 5)) < 1e-9
    assert [x["event_id"] for x in t["last_changes"]] == [5, 4, 3, 2, 1]
    assert t["last_changes"][-1]["before"] == 0.5 and t["last_changes"][-1]["after"] == 0.6
    for i in range(3):
        callee.behave(cid, status(500))
        w.api.post("/v1/delegate", w.body(cid))
        t = expect_ok(w.admin.get(f"/v1/agents/{cid}/trust"))
        assert t["failure_streak"] == i + 1
        assert t["status"] == ("probationary" if i == 2 else "active")
    assert t["components"]["completion"] < 1 and t["sample_size"] == 8
    entries = expect_ok(w.admin.get("/v1/audit/log", params={"agent_id": cid}))
    assert len(entries) == 8  # newest first: each starts where the one before ended
    assert [e["trust_delta"]["before"] for e in entries[:-1]] == \
        [e["trust_delta"]["after"] for e in entries[1:]]
    assert expect_ok(w.admin.get(f"/v1/agents/{cid}"))["status"] == "probationary"
    expect_error(w.admin.get("/v1/agents/nobody-here/trust"), 404, "NOT_FOUND")
