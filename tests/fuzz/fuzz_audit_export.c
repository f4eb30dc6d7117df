/*
 * Fuzz target: audit exports as `nexra audit verify` reads them (JSONL and
 * CSV, src/audit/verify.c, with checkpoint_parse inside). Any bytes must
 * end in a verdict, never a crash, leak or read out of bounds; and a random
 * file must not verify under a fixed key (it would need a signature).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "audit/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char pk[CHECKPOINT_PK_LEN] = {1, 2, 3};
	struct audit_verify_result res;
	FILE *f;

	if (!size)
		return 0;
	f = fmemopen((void *)data, size, "r");
	if (!f)
		return 0;
	if (!audit_verify_stream(f, pk, NULL, &res))
		abort();
	fclose(f);
	return 0;
}
