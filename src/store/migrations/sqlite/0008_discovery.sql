-- Discovery (docs/discovery.md): full-text search over agents (FTS5, bm25),
-- a change sequence the in-memory vector index follows (every process on
-- the file sees every write, in commit order: SQLite has one writer at a
-- time), and the provider embeddings of agents.
CREATE VIRTUAL TABLE agents_fts USING fts5(
  name, description, capability_type,
  content='agents', content_rowid='rowid', tokenize='porter unicode61'
);
INSERT INTO agents_fts(rowid, name, description, capability_type)
  SELECT rowid, name, description, capability_type FROM agents;
CREATE TRIGGER agents_fts_ins AFTER INSERT ON agents BEGIN
  INSERT INTO agents_fts(rowid, name, description, capability_type)
  VALUES (NEW.rowid, NEW.name, NEW.description, NEW.capability_type);
END;
CREATE TRIGGER agents_fts_upd AFTER UPDATE OF name, description, capability_type ON agents BEGIN
  INSERT INTO agents_fts(agents_fts, rowid, name, description, capability_type)
  VALUES ('delete', OLD.rowid, OLD.name, OLD.description, OLD.capability_type);
  INSERT INTO agents_fts(rowid, name, description, capability_type)
  VALUES (NEW.rowid, NEW.name, NEW.description, NEW.capability_type);
END;
CREATE TRIGGER agents_fts_del AFTER DELETE ON agents BEGIN
  INSERT INTO agents_fts(agents_fts, rowid, name, description, capability_type)
  VALUES ('delete', OLD.rowid, OLD.name, OLD.description, OLD.capability_type);
END;

ALTER TABLE agents ADD COLUMN disc_seq INTEGER NOT NULL DEFAULT 0;
UPDATE agents SET disc_seq = rowid;
CREATE INDEX agents_by_disc_seq ON agents(disc_seq);
CREATE TRIGGER agents_disc_seq_ins AFTER INSERT ON agents BEGIN
  UPDATE agents SET disc_seq = (SELECT coalesce(max(disc_seq), 0) + 1 FROM agents)
  WHERE rowid = NEW.rowid;
END;
CREATE TRIGGER agents_disc_seq_upd AFTER UPDATE OF name, description, capability_type,
  per_call_micros, p99_latency_ms, is_public, status, trust_score, embedding_id ON agents BEGIN
  UPDATE agents SET disc_seq = (SELECT coalesce(max(disc_seq), 0) + 1 FROM agents)
  WHERE rowid = NEW.rowid;
END;

-- One provider vector per agent: the model that made it, for the text of
-- embedding_id (a stale one is re-embedded), float32 little-endian.
CREATE TABLE agent_embeddings (
  org_id       TEXT NOT NULL,
  agent_id     TEXT NOT NULL,
  embedding_id TEXT NOT NULL,
  model        TEXT NOT NULL,
  dim          INTEGER NOT NULL CHECK (dim > 0),
  vec          BLOB NOT NULL,
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (org_id, agent_id),
  FOREIGN KEY (org_id, agent_id) REFERENCES agents(org_id, agent_id)
) STRICT;
