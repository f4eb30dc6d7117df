/* Handlers of the billing module (docs/billing.md), listed in http/routes.c. */
#ifndef NEXRA_BILLING_API_H
#define NEXRA_BILLING_API_H

#include "http/req.h"

int api_billing_stripe_put(struct req *r);
int api_billing_stripe_get(struct req *r);
int api_billing_stripe_delete(struct req *r);
int api_billing_event_list(struct req *r);
int api_billing_event_retry(struct req *r);

#endif
