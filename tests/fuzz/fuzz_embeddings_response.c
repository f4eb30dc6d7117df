/*
 * Fuzz target: the body an embeddings provider answers (provider_parse).
 * The provider is configured by the operator but answers over the network:
 * its bytes are untrusted. Nothing may crash or leak.
 *
 * Invariants checked (abort() when broken): success gives 1..PROVIDER_DIM_MAX
 * floats; failure gives no vector and a reason.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/err.h"
#include "discovery/provider.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[PROVIDER_WHY_MAX] = "";
	float *v = NULL;
	int dim = -1;
	int rc = provider_parse((const char *)data, size, &v, &dim, why);

	if (rc == 0) {
		if (!v || dim < 1 || dim > PROVIDER_DIM_MAX)
			abort();
		free(v);
	} else if (rc != E(VALIDATION) || v || dim != 0 || !why[0]) {
		abort();
	}
	return 0;
}
