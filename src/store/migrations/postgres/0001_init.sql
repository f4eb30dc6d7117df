-- Foundation schema: orgs, API keys, agents. Mirrors migrations/sqlite/0001
-- column for column: kind and is_public stay integer 0/1 with CHECKs so both
-- backends share one meaning. Ids are COLLATE "C" so that ORDER BY key_id /
-- agent_id compares bytes, as SQLite does, whatever the database's locale.
CREATE TABLE orgs (
  org_id      text COLLATE "C" PRIMARY KEY,
  name        text NOT NULL,
  plan        text NOT NULL CHECK (plan IN ('starter', 'growth')),
  created_at  bigint NOT NULL
);

CREATE TABLE api_keys (
  key_id      text COLLATE "C" PRIMARY KEY,
  org_id      text COLLATE "C" NOT NULL REFERENCES orgs(org_id),
  lookup      text NOT NULL UNIQUE,
  hash        bytea NOT NULL CHECK (length(hash) = 32),
  kind        integer NOT NULL CHECK (kind IN (0, 1)),
  name        text NOT NULL,
  prefix      text NOT NULL,
  created_at  bigint NOT NULL,
  revoked_at  bigint
);
CREATE INDEX api_keys_by_org ON api_keys(org_id, created_at);

CREATE TABLE agents (
  org_id          text COLLATE "C" NOT NULL REFERENCES orgs(org_id),
  agent_id        text COLLATE "C" NOT NULL,
  name            text NOT NULL,
  description     text NOT NULL,
  capability_type text NOT NULL,
  webhook_url     text NOT NULL,
  secret_sealed   bytea NOT NULL,
  per_call_micros bigint NOT NULL CHECK (per_call_micros >= 0),
  p99_latency_ms  bigint NOT NULL CHECK (p99_latency_ms > 0),
  availability    double precision NOT NULL CHECK (availability >= 0 AND availability <= 1),
  input_schema    text NOT NULL,
  output_schema   text NOT NULL,
  is_public       integer NOT NULL CHECK (is_public IN (0, 1)),
  status          text NOT NULL CHECK (status IN ('probationary', 'active', 'paused')),
  prior_status    text NOT NULL DEFAULT '',
  trust_score     double precision NOT NULL,
  embedding_id    text,
  registered_at   bigint NOT NULL,
  updated_at      bigint NOT NULL,
  PRIMARY KEY (org_id, agent_id)
);
CREATE INDEX agents_by_registration ON agents(org_id, registered_at, agent_id);
