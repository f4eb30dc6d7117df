#!/usr/bin/env python3
"""An outside verifier of a Nexra audit export, written from docs/audit.md
with only Python's standard library and an Ed25519 implementation
(python3-cryptography). It is what an auditor without Nexra would run:

    audit_verify.py EXPORT.jsonl PUBLIC_KEY_BASE64 [OLD_CHECKPOINT.json]

It prints "OK <n> entries, tree size <size>" and exits 0, or prints the
first problem and exits 1. JSONL exports only (the CSV form carries the
same values; `nexra audit verify` checks both)."""
import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Bad(Exception):
    pass


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class Frontier:
    """The right edge of an RFC 9162 tree: one perfect subtree root per set
    bit of the size."""

    def __init__(self, size=0, hashes=()):
        self.size = size
        self.h = {}
        levels = [lvl for lvl in range(64) if size >> lvl & 1]
        if len(levels) != len(hashes):
            raise Bad(f"prefix has {len(hashes)} hashes, size {size} needs {len(levels)}")
        for lvl, hx in zip(sorted(levels, reverse=True), hashes):
            self.h[lvl] = bytes.fromhex(hx)

    def append(self, leaf: bytes):
        carry, lvl = leaf, 0
        while self.size >> lvl & 1:
            carry = node_hash(self.h.pop(lvl), carry)
            lvl += 1
        self.h[lvl] = carry
        self.size += 1

    def root(self) -> bytes:
        r = None
        for lvl in range(64):
            if self.size >> lvl & 1:
                r = self.h[lvl] if r is None else node_hash(self.h[lvl], r)
        return r if r is not None else hashlib.sha256(b"").digest()


def checkpoint_message(cp) -> bytes:
    return (f"nexra-audit-checkpoint/v1\n{cp['org_id']}\n{cp['tree_size']}\n"
            f"{cp['root_hash']}\n{cp['timestamp']}\n").encode()


def check_signature(cp, key: Ed25519PublicKey, what):
    try:
        key.verify(base64.b64decode(cp["signature"], validate=True), checkpoint_message(cp))
    except (InvalidSignature, ValueError) as e:
        raise Bad(f"{what}: the signature does not verify with the given public key") from e


def verify(path, public_key_b64, old=None):
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines or not lines[0].startswith(b'{"export":'):
        raise Bad("line 1: not an export header")
    meta = json.loads(lines[0])["export"]
    first = meta["first_event_id"]
    tree = Frontier(first - 1, meta["prefix"])
    old_root_seen = None
    if old is not None and old["tree_size"] == tree.size:
        old_root_seen = tree.root()
    expect = first
    checkpoint = None
    for no, line in enumerate(lines[1:], start=2):
        if line.startswith(b'{"checkpoint":'):
            checkpoint = json.loads(line)["checkpoint"]
            if no != len(lines):
                raise Bad(f"line {no}: the checkpoint is not the last line")
            break
        if not line.startswith(b'{"entry":'):
            raise Bad(f"line {no}: neither an entry nor the checkpoint")
        cut = line.rfind(b',"leaf_hash":')
        entry = line[len(b'{"entry":'):cut]
        stored = json.loads(line[cut + 1 + len(b'"leaf_hash":'):-1])
        event_id = json.loads(entry)["event_id"]
        if event_id != expect:
            what = "missing" if event_id > expect else "out of order or repeated"
            raise Bad(f"line {no}: event {expect} expected, found {event_id} "
                      f"(entry {expect} {what})")
        h = leaf_hash(entry)
        if stored != h.hex():
            raise Bad(f"line {no}: event {event_id} was changed (its hash is not the one "
                      f"the log recorded)")
        tree.append(h)
        expect += 1
        if old is not None and old["tree_size"] == tree.size:
            old_root_seen = tree.root()
    if checkpoint is None:
        raise Bad(f"the export ends after event {expect - 1} without a checkpoint (truncated)")
    check_signature(checkpoint, key, "checkpoint")
    if checkpoint["org_id"] != meta["org_id"]:
        raise Bad("the checkpoint is for another org")
    if checkpoint["tree_size"] != tree.size:
        raise Bad(f"the checkpoint covers {checkpoint['tree_size']} entries, the export "
                  f"{tree.size}")
    if checkpoint["root_hash"] != tree.root().hex():
        raise Bad("the entries do not hash to the signed root")
    if old is not None:
        check_signature(old, key, "old checkpoint")
        if old["tree_size"] > tree.size:
            raise Bad(f"the log was truncated: the old checkpoint covers {old['tree_size']} "
                      f"entries, this export ends at event {tree.size}; first missing "
                      f"entry {tree.size + 1}")
        if old_root_seen is None:
            raise Bad("the export starts after the old checkpoint's size")
        if old_root_seen.hex() != old["root_hash"]:
            raise Bad(f"the first {old['tree_size']} entries differ from those the old "
                      f"checkpoint signed")
    return tree.size - (first - 1), tree.size


def main(argv):
    old = None
    if len(argv) > 3:
        with open(argv[3]) as f:
            old = json.load(f)
            old = old.get("checkpoint", old.get("data", old))
    try:
        n, size = verify(argv[1], argv[2], old)
    except Bad as e:
        print(f"FAIL {e}")
        return 1
    print(f"OK {n} entries, tree size {size}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
