-- Foundation schema: orgs, API keys, agents.
CREATE TABLE orgs (
  org_id      TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  plan        TEXT NOT NULL CHECK (plan IN ('starter', 'growth')),
  created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
  key_id      TEXT PRIMARY KEY,
  org_id      TEXT NOT NULL REFERENCES orgs(org_id),
  lookup      TEXT NOT NULL UNIQUE,
  hash        BLOB NOT NULL CHECK (length(hash) = 32),
  kind        INTEGER NOT NULL CHECK (kind IN (0, 1)),
  name        TEXT NOT NULL,
  prefix      TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  revoked_at  INTEGER
) STRICT;
CREATE INDEX api_keys_by_org ON api_keys(org_id, created_at);

CREATE TABLE agents (
  org_id          TEXT NOT NULL REFERENCES orgs(org_id),
  agent_id        TEXT NOT NULL,
  name            TEXT NOT NULL,
  description     TEXT NOT NULL,
  capability_type TEXT NOT NULL,
  webhook_url     TEXT NOT NULL,
  secret_sealed   BLOB NOT NULL,
  per_call_micros INTEGER NOT NULL CHECK (per_call_micros >= 0),
  p99_latency_ms  INTEGER NOT NULL CHECK (p99_latency_ms > 0),
  availability    REAL NOT NULL CHECK (availability >= 0 AND availability <= 1),
  input_schema    TEXT NOT NULL,
  output_schema   TEXT NOT NULL,
  is_public       INTEGER NOT NULL CHECK (is_public IN (0, 1)),
  status          TEXT NOT NULL CHECK (status IN ('probationary', 'active', 'paused')),
  prior_status    TEXT NOT NULL DEFAULT '',
  trust_score     REAL NOT NULL,
  embedding_id    TEXT,
  registered_at   INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  PRIMARY KEY (org_id, agent_id)
) STRICT;
CREATE INDEX agents_by_registration ON agents(org_id, registered_at, agent_id);
