/*
 * The command-line client: the same `nexra` binary that serves the API also
 * talks to it. main() handles `serve` and `schema` itself and hands every
 * other first argument here, so the CLI is one entry point and nothing else
 * of it leaks into the server.
 *
 * The CLI is a thin, honest client: it sends what the user asked, prints the
 * envelope's `data` as pretty JSON on stdout, and turns an error envelope into
 * one line on stderr. It validates nothing the server validates (the server
 * is the single authority on what a valid agent or plan is); it only refuses
 * what it cannot send (missing arguments, oversized files, a key that is not
 * set). The API key is read only from NEXRA_API_KEY, never from argv, where
 * any local user could read it with ps.
 */
#ifndef NEXRA_CLI_CLI_H
#define NEXRA_CLI_CLI_H

/*
 * Runs one CLI command. argv[0] is the command group ("org", "agents",
 * "keys", "help"); global options (--server, --agent-id, --help) may appear
 * anywhere. Borrows argv. Returns the process exit status:
 * 0 success, 1 the server answered with an error (or a local input file was
 * unusable), 2 usage error, 3 the server could not be reached.
 */
int cli_main(int argc, char **argv);

#endif
