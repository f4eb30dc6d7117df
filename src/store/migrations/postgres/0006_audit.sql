-- The verifiable audit log (docs/audit.md): one RFC 9162 Merkle tree per
-- org over audit_log in event_id order, built by the tree appender
-- (store.h audit_extend) after the ledger has written the entries. A tree
-- keeps its size and every complete subtree hash: node (level, idx) is the
-- root of leaves [idx << level, (idx + 1) << level), level 0 the leaf
-- hashes. Appenders of one org serialize on its audit_trees row (FOR
-- UPDATE), so servers sharing the database never fork a tree.
-- server_keys holds the checkpoint signing key, sealed under the master
-- key, shared by every server on the database.
CREATE TABLE audit_trees (
  tree_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  org_id      text COLLATE "C" NOT NULL UNIQUE REFERENCES orgs(org_id),
  size        bigint NOT NULL DEFAULT 0 CHECK (size >= 0),
  updated_at  bigint NOT NULL
);

CREATE TABLE audit_nodes (
  tree_id  bigint NOT NULL,
  level    smallint NOT NULL,
  idx      bigint NOT NULL,
  hash     bytea NOT NULL CHECK (length(hash) = 32),
  PRIMARY KEY (tree_id, level, idx)
);

CREATE TABLE server_keys (
  name        text PRIMARY KEY,
  sealed      bytea NOT NULL,
  created_at  bigint NOT NULL
);

-- Trust demotion (docs/trust.md; TRUST_DEMOTE_AFTER in src/trust/trust.h):
-- the ledger's settlement counts every outcome of a callee (settled_count +
-- 1, completed_count + 1 when completed); this trigger keeps the run of
-- consecutive failures and, at 3, moves an active agent back to
-- probationary with its completions counted again from 0.
ALTER TABLE agents ADD COLUMN failure_streak bigint NOT NULL DEFAULT 0;
CREATE FUNCTION nexra_agent_failure_streak() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.settled_count = OLD.settled_count + 1 THEN
    IF NEW.completed_count > OLD.completed_count THEN
      NEW.failure_streak := 0;
    ELSE
      NEW.failure_streak := OLD.failure_streak + 1;
      IF OLD.status = 'active' AND NEW.status = 'active' AND NEW.failure_streak >= 3 THEN
        NEW.status := 'probationary';
        NEW.completed_count := 0;
        NEW.updated_at := extract(epoch FROM now())::bigint;
      END IF;
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER agents_failure_streak BEFORE UPDATE OF settled_count ON agents
  FOR EACH ROW EXECUTE FUNCTION nexra_agent_failure_streak();
