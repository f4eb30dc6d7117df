/* Handlers of the approvals module (decisions and notifications), listed
 * in http/routes.c. */
#ifndef NEXRA_APPROVALS_API_H
#define NEXRA_APPROVALS_API_H

#include "http/req.h"

int api_delegation_approve(struct req *r);
int api_delegation_reject(struct req *r);

int api_channel_create(struct req *r);
int api_channel_list(struct req *r);
int api_channel_delete(struct req *r);
int api_delivery_list(struct req *r);

#endif
