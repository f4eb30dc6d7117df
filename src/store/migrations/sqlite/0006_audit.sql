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

-- Trust demotion (docs/trust.md; TRUST_DEMOTE_AFTER in src/trust/trust.h):
-- the ledger's settlement counts every outcome of a callee (settled_count +
-- 1, completed_count + 1 when completed); this trigger keeps the run of
-- consecutive failures and, at 3, moves an active agent back to
-- probationary with its completions counted again from 0.
ALTER TABLE agents ADD COLUMN failure_streak INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER agents_failure_streak AFTER UPDATE OF settled_count ON agents
WHEN NEW.settled_count = OLD.settled_count + 1
BEGIN
  UPDATE agents SET
    failure_streak = CASE WHEN NEW.completed_count > OLD.completed_count THEN 0
                          ELSE OLD.failure_streak + 1 END,
    completed_count = CASE WHEN OLD.status = 'active' AND NEW.status = 'active'
                            AND NEW.completed_count = OLD.completed_count
                            AND OLD.failure_streak + 1 >= 3 THEN 0 ELSE completed_count END,
    updated_at = CASE WHEN OLD.status = 'active' AND NEW.status = 'active'
                       AND NEW.completed_count = OLD.completed_count
                       AND OLD.failure_streak + 1 >= 3
                      THEN CAST(strftime('%s', 'now') AS INTEGER) ELSE updated_at END,
    status = CASE WHEN OLD.status = 'active' AND NEW.status = 'active'
                   AND NEW.completed_count = OLD.completed_count
                   AND OLD.failure_streak + 1 >= 3 THEN 'probationary' ELSE status END
  WHERE org_id = NEW.org_id AND agent_id = NEW.agent_id;
END;
