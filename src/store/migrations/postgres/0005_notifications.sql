-- Notifications (docs/notifications.md): the channels an org configures,
-- one delivery row per (channel, event, subject) -- the UNIQUE constraint is
-- what makes every event reach every channel exactly once, whichever
-- process finds it first -- and one budget alert per (org, month).
CREATE TABLE notification_channels (
  channel_id     text COLLATE "C" PRIMARY KEY,
  org_id         text COLLATE "C" NOT NULL REFERENCES orgs(org_id),
  kind           text NOT NULL CHECK (kind IN ('slack', 'email', 'webhook')),
  name           text NOT NULL DEFAULT '',
  target         text NOT NULL,
  secret_sealed  bytea,
  created_at     bigint NOT NULL,
  deleted_at     bigint NOT NULL DEFAULT 0
);
CREATE INDEX notification_channels_by_org ON notification_channels(org_id, deleted_at, created_at);

CREATE TABLE notification_deliveries (
  delivery_id     text COLLATE "C" PRIMARY KEY,
  org_id          text COLLATE "C" NOT NULL REFERENCES orgs(org_id),
  channel_id      text COLLATE "C" NOT NULL REFERENCES notification_channels(channel_id),
  event           text NOT NULL CHECK (event IN ('approval_requested', 'budget_alert')),
  subject_id      text COLLATE "C" NOT NULL,
  payload         text NOT NULL,
  state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
  attempts        bigint NOT NULL DEFAULT 0,
  next_attempt_at bigint NOT NULL,
  last_error      text NOT NULL DEFAULT '',
  created_at      bigint NOT NULL,
  sent_at         bigint NOT NULL DEFAULT 0,
  UNIQUE (channel_id, event, subject_id)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries(state, next_attempt_at);
CREATE INDEX notification_deliveries_by_org ON notification_deliveries(org_id, created_at);

CREATE TABLE budget_alerts (
  org_id        text COLLATE "C" NOT NULL REFERENCES orgs(org_id),
  period        text NOT NULL,
  spent_micros  bigint NOT NULL,
  held_micros   bigint NOT NULL,
  limit_micros  bigint NOT NULL,
  threshold     double precision NOT NULL,
  created_at    bigint NOT NULL,
  PRIMARY KEY (org_id, period)
);
