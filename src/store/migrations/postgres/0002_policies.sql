-- Policies: one row per named policy of an org (its current version,
-- priority and enabled flag), every uploaded version kept forever so the
-- audit log can always name the version that decided.
CREATE TABLE policies (
  policy_id   text COLLATE "C" PRIMARY KEY,
  org_id      text COLLATE "C" NOT NULL REFERENCES orgs(org_id),
  name        text NOT NULL,
  version     integer NOT NULL CHECK (version >= 1),
  priority    integer NOT NULL,
  enabled     integer NOT NULL CHECK (enabled IN (0, 1)),
  seq         bigint GENERATED ALWAYS AS IDENTITY,  -- creation order, ties of priority
  created_at  bigint NOT NULL,
  updated_at  bigint NOT NULL,
  UNIQUE (org_id, name)
);
CREATE INDEX policies_stack ON policies(org_id, enabled, priority, seq);

CREATE TABLE policy_versions (
  policy_id   text COLLATE "C" NOT NULL REFERENCES policies(policy_id),
  version     integer NOT NULL,
  yaml        text NOT NULL,
  created_at  bigint NOT NULL,
  PRIMARY KEY (policy_id, version)
);

-- A per-org stamp that changes with any change to the org's policies, in
-- the same transaction (a trigger): servers cache compiled stacks and
-- recompile when it moves, whichever process made the change.
ALTER TABLE orgs ADD COLUMN policy_gen bigint NOT NULL DEFAULT 0;
CREATE FUNCTION policies_gen_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE orgs SET policy_gen = policy_gen + 1 WHERE org_id = NEW.org_id;
  RETURN NULL;
END;
$$;
CREATE TRIGGER policies_gen AFTER INSERT OR UPDATE ON policies
  FOR EACH ROW EXECUTE FUNCTION policies_gen_bump();
