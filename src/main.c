/*
 * nexra: one binary, server and CLI. `nexra serve` runs the control plane;
 * every other command is a client of a running server (src/cli/).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/schema_cmd.h"
#include "serve/serve.h"
#include "core/banned.h"

#ifndef NEXRA_VERSION
#define NEXRA_VERSION "0.1.0"
#endif

static void usage(FILE *f)
{
	fprintf(f, "usage: nexra <command> [options]\n\n"
		   "  serve            run the control plane (nexra serve --help)\n"
		   "  org ...          register an organization, show it\n"
		   "  agents ...       register, list, get, pause, activate agents\n"
		   "  keys ...         create, list, revoke API keys\n"
		   "  policy ...       upload, list, evaluate, check policies\n"
		   "  schema validate SCHEMA INSTANCE   check JSON against a JSON Schema (offline)\n"
		   "  version          print the version\n\n"
		   "Client commands talk to --server / NEXRA_SERVER with NEXRA_API_KEY; see docs/cli.md.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "serve"))
		return serve_main(argc - 2, argv + 2);
	if (!strcmp(argv[1], "schema")) /* offline: no server, no key */
		return schema_cmd_main(argc - 2, argv + 2);
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("nexra %s\n", NEXRA_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "help") && argc > 2) /* "nexra help agents": the group's usage */
		return cli_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	return cli_main(argc - 1, argv + 1);
}
