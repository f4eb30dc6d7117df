-- Billing delivery (docs/billing.md): each org's Stripe connection, one per
-- key mode (a live Nexra key sets the live one, a test key the test one),
-- with the secret key sealed at rest; and the lease under which one
-- dispatcher at a time sends an outbox row of billing_events (0004).
CREATE TABLE billing_settings (
  org_id           text COLLATE "C" NOT NULL REFERENCES orgs(org_id),
  mode             text NOT NULL CHECK (mode IN ('live', 'test')),
  secret_sealed    bytea NOT NULL,         -- crypto/seal.h, ad "stripe:<org>/<mode>"
  customer_id      text NOT NULL,
  meter_event_name text NOT NULL,
  updated_at       bigint NOT NULL,
  PRIMARY KEY (org_id, mode)
);

ALTER TABLE billing_events ADD COLUMN lease_until bigint NOT NULL DEFAULT 0;
ALTER TABLE billing_events ADD COLUMN lease_owner text NOT NULL DEFAULT '';
ALTER TABLE billing_events ADD COLUMN sent_at bigint NOT NULL DEFAULT 0;
CREATE INDEX billing_events_by_org ON billing_events(org_id, created_at, billing_id);
