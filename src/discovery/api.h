/* Handlers of discovery, listed in http/routes.c. */
#ifndef NEXRA_DISCOVERY_API_H
#define NEXRA_DISCOVERY_API_H

#include "http/req.h"

int api_discover(struct req *r);

#endif
