/* Service endpoints (health, metrics), listed in http/routes.c. */
#ifndef NEXRA_HTTP_SERVICE_H
#define NEXRA_HTTP_SERVICE_H

#include "http/req.h"

int api_healthz(struct req *r);
int api_metrics(struct req *r);

#endif
