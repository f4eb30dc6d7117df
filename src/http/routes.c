/*
 * Every endpoint of the server, one row each. Order matters only where two
 * patterns could match the same path: literal rows come before {param}
 * rows of the same shape.
 */
#include "approvals/api.h"
#include "audit/api.h"
#include "auth/api.h"
#include "billing/api.h"
#include "delegation/api.h"
#include "discovery/api.h"
#include "http/router.h"
#include "http/service.h"
#include "policy/api.h"
#include "registry/api.h"

const struct route routes[] = {
	{"GET", "/healthz", api_healthz, ROUTE_PUBLIC},
	{"GET", "/metrics", api_metrics, ROUTE_PUBLIC},

	{"POST", "/v1/orgs/register", api_org_register, ROUTE_PUBLIC},
	{"GET", "/v1/orgs/me", api_org_me, 0},

	{"POST", "/v1/keys", api_key_create, 0},
	{"GET", "/v1/keys", api_key_list, 0},
	{"DELETE", "/v1/keys/{key_id}", api_key_revoke, 0},

	{"POST", "/v1/agents/register", api_agent_register, 0},
	{"GET", "/v1/agents", api_agent_list, 0},
	{"GET", "/v1/agents/{agent_id}", api_agent_get, 0},
	{"PUT", "/v1/agents/{agent_id}", api_agent_update, 0},
	{"DELETE", "/v1/agents/{agent_id}", api_agent_pause, 0},
	{"POST", "/v1/agents/{agent_id}/activate", api_agent_activate, 0},
	{"GET", "/v1/agents/{agent_id}/trust", api_agent_trust, 0},

	{"POST", "/v1/capabilities/discover", api_discover, 0},

	{"POST", "/v1/policies/evaluate", api_policy_evaluate, 0},
	{"POST", "/v1/policies/simulate", api_policy_simulate, 0},
	{"POST", "/v1/policies", api_policy_upload, 0},
	{"GET", "/v1/policies", api_policy_list, 0},
	{"GET", "/v1/policies/{policy_id}", api_policy_get, 0},
	{"PATCH", "/v1/policies/{policy_id}", api_policy_patch, 0},
	{"DELETE", "/v1/policies/{policy_id}", api_policy_delete, 0},
	{"GET", "/v1/policies/{policy_id}/versions/{version}", api_policy_version, 0},

	{"POST", "/v1/delegate", api_delegate, 0},
	{"GET", "/v1/delegations", api_delegation_list, 0},
	{"GET", "/v1/delegations/{delegation_id}", api_delegation_get, 0},
	{"POST", "/v1/delegations/{delegation_id}/approve", api_delegation_approve, 0},
	{"POST", "/v1/delegations/{delegation_id}/reject", api_delegation_reject, 0},

	{"POST", "/v1/notifications/channels", api_channel_create, 0},
	{"GET", "/v1/notifications/channels", api_channel_list, 0},
	{"DELETE", "/v1/notifications/channels/{channel_id}", api_channel_delete, 0},
	{"GET", "/v1/notifications/deliveries", api_delivery_list, 0},

	{"GET", "/v1/audit/checkpoint", api_audit_checkpoint, 0},
	{"GET", "/v1/audit/public-key", api_audit_public_key, 0},
	{"GET", "/v1/audit/consistency", api_audit_consistency, 0},
	{"GET", "/v1/audit/log", api_audit_list, 0},
	{"GET", "/v1/audit/log/export", api_audit_export, 0},
	{"GET", "/v1/audit/log/{event_id}/proof", api_audit_proof, 0},

	{"PUT", "/v1/billing/stripe", api_billing_stripe_put, 0},
	{"GET", "/v1/billing/stripe", api_billing_stripe_get, 0},
	{"DELETE", "/v1/billing/stripe", api_billing_stripe_delete, 0},
	{"GET", "/v1/billing/events", api_billing_event_list, 0},
	{"POST", "/v1/billing/events/{billing_id}/retry", api_billing_event_retry, 0},
};

const int routes_count = (int)(sizeof(routes) / sizeof(routes[0]));
