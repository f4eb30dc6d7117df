-- Discovery (docs/discovery.md): full-text search over agents (English
-- tsvector, GIN), a change sequence the in-memory vector index of every
-- server process follows, and the provider embeddings of agents.
ALTER TABLE agents ADD COLUMN search tsvector GENERATED ALWAYS AS (
  setweight(to_tsvector('english', name), 'A') ||
  setweight(to_tsvector('english', capability_type), 'B') ||
  setweight(to_tsvector('english', description), 'C')) STORED;
CREATE INDEX agents_search ON agents USING gin(search);

-- disc_seq orders changes by commit: a deferred trigger draws the number
-- at commit time, after taking a transaction-level advisory lock, so a
-- transaction that drew a smaller number has committed before any larger
-- one is visible, and a reader that has seen seq N has seen everything up
-- to N. Deferred, the lock is taken after the transaction's other work
-- (the ledger's budget and org rows), so it cannot be part of a deadlock.
CREATE SEQUENCE agents_disc_seq;
ALTER TABLE agents ADD COLUMN disc_seq bigint NOT NULL DEFAULT 0;
UPDATE agents SET disc_seq = nextval('agents_disc_seq');
CREATE INDEX agents_by_disc_seq ON agents(disc_seq);
CREATE FUNCTION agents_disc_seq_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(7366277434695478131);
  UPDATE agents SET disc_seq = nextval('agents_disc_seq')
  WHERE org_id = NEW.org_id AND agent_id = NEW.agent_id;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER agents_disc_seq_ins AFTER INSERT ON agents
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION agents_disc_seq_bump();
CREATE CONSTRAINT TRIGGER agents_disc_seq_upd AFTER UPDATE OF name, description,
  capability_type, per_call_micros, p99_latency_ms, is_public, status, trust_score,
  embedding_id ON agents
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION agents_disc_seq_bump();

CREATE TABLE agent_embeddings (
  org_id       text NOT NULL,
  agent_id     text NOT NULL,
  embedding_id text NOT NULL,
  model        text NOT NULL,
  dim          integer NOT NULL CHECK (dim > 0),
  vec          bytea NOT NULL,
  created_at   bigint NOT NULL,
  PRIMARY KEY (org_id, agent_id),
  FOREIGN KEY (org_id, agent_id) REFERENCES agents(org_id, agent_id)
);
