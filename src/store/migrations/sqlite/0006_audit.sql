-- The verifiable audit log (docs/audit.md): one RFC 9162 Merkle tree per
-- org over audit_log in event_id order, built by the tree appender
-- (store.h audit_extend) after the ledger has written the entries. A tree
-- keeps its size and every complete subtree hash: node (level, idx) is the
-- root of leaves [idx << level, (idx + 1) << level), level 0 the leaf
-- hashes. server_keys holds the checkpoint signing key, sealed under the
-- master key, shared by every server on the database.
CREATE TABLE audit_trees (
  tree_id     INTEGER PRIMARY KEY,
  org_id      TEXT NOT NULL UNIQUE REFERENCES orgs(org_id),
  size        INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),
  updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE audit_nodes (
  tree_id  INTEGER NOT NULL,
  level    INTEGER NOT NULL,
  idx      INTEGER NOT NULL,
  hash     BLOB NOT NULL CHECK (length(hash) = 32),
  PRIMARY KEY (tree_id, level, idx)
) STRICT, WITHOUT ROWID;

CREATE TABLE server_keys (
  name        TEXT PRIMARY KEY,
  sealed      BLOB NOT NULL,
  created_at  INTEGER NOT NULL
) STRICT;

-- Trust: consecutive failures of an agent (docs/trust.md, demotion).
ALTER TABLE agents ADD COLUMN failure_streak INTEGER NOT NULL DEFAULT 0;
