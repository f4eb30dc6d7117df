-- Policies: one row per named policy of an org (its current version,
-- priority and enabled flag), every uploaded version kept forever so the
-- audit log can always name the version that decided.
CREATE TABLE policies (
  policy_id   TEXT PRIMARY KEY,
  org_id      TEXT NOT NULL REFERENCES orgs(org_id),
  name        TEXT NOT NULL,
  version     INTEGER NOT NULL CHECK (version >= 1),
  priority    INTEGER NOT NULL,
  enabled     INTEGER NOT NULL CHECK (enabled IN (0, 1)),
  seq         INTEGER NOT NULL,  -- creation order, ties of priority
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  UNIQUE (org_id, name)
) STRICT;
CREATE INDEX policies_stack ON policies(org_id, enabled, priority, seq);

CREATE TABLE policy_versions (
  policy_id   TEXT NOT NULL REFERENCES policies(policy_id),
  version     INTEGER NOT NULL,
  yaml        TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (policy_id, version)
) STRICT;

-- A per-org stamp that changes with any change to the org's policies, in
-- the same transaction (triggers): servers cache compiled stacks and
-- recompile when it moves, whichever process made the change.
ALTER TABLE orgs ADD COLUMN policy_gen INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER policies_gen_insert AFTER INSERT ON policies BEGIN
  UPDATE orgs SET policy_gen = policy_gen + 1 WHERE org_id = NEW.org_id;
END;
CREATE TRIGGER policies_gen_update AFTER UPDATE ON policies BEGIN
  UPDATE orgs SET policy_gen = policy_gen + 1 WHERE org_id = NEW.org_id;
END;
