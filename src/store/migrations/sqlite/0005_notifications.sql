-- Notifications (docs/notifications.md): the channels an org configures,
-- one delivery row per (channel, event, subject) -- the UNIQUE constraint is
-- what makes every event reach every channel exactly once, whichever
-- process finds it first -- and one budget alert per (org, month).
CREATE TABLE notification_channels (
  channel_id     TEXT PRIMARY KEY,
  org_id         TEXT NOT NULL REFERENCES orgs(org_id),
  kind           TEXT NOT NULL CHECK (kind IN ('slack', 'email', 'webhook')),
  name           TEXT NOT NULL DEFAULT '',
  target         TEXT NOT NULL,        -- address, URL, or a Slack URL's masked form
  secret_sealed  BLOB,                 -- webhook secret or Slack URL, sealed
  created_at     INTEGER NOT NULL,
  deleted_at     INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX notification_channels_by_org ON notification_channels(org_id, deleted_at, created_at);

CREATE TABLE notification_deliveries (
  delivery_id     TEXT PRIMARY KEY,
  org_id          TEXT NOT NULL REFERENCES orgs(org_id),
  channel_id      TEXT NOT NULL REFERENCES notification_channels(channel_id),
  event           TEXT NOT NULL CHECK (event IN ('approval_requested', 'budget_alert')),
  subject_id      TEXT NOT NULL,        -- the delegation id, or the budget month
  payload         TEXT NOT NULL,        -- the event as JSON
  state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,     -- due time, or the end of a claim's lease
  last_error      TEXT NOT NULL DEFAULT '',
  created_at      INTEGER NOT NULL,
  sent_at         INTEGER NOT NULL DEFAULT 0,
  UNIQUE (channel_id, event, subject_id)
) STRICT;
CREATE INDEX notification_deliveries_due ON notification_deliveries(state, next_attempt_at);
CREATE INDEX notification_deliveries_by_org ON notification_deliveries(org_id, created_at);

CREATE TABLE budget_alerts (
  org_id               TEXT NOT NULL REFERENCES orgs(org_id),
  period               TEXT NOT NULL,   -- 'YYYY-MM' (UTC)
  spent_micros         INTEGER NOT NULL,
  held_micros          INTEGER NOT NULL,
  limit_micros         INTEGER NOT NULL,
  threshold            REAL NOT NULL,
  created_at           INTEGER NOT NULL,
  PRIMARY KEY (org_id, period)
) STRICT;
