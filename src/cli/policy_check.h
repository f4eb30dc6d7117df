/*
 * `nexra policy check FILE`: validates a policy YAML file offline, with no
 * server and no API key, using the very reader the API uses, so the
 * messages are the ones `POST /v1/policies` would give.
 */
#ifndef NEXRA_CLI_POLICY_CHECK_H
#define NEXRA_CLI_POLICY_CHECK_H

/*
 * argv[0] is "check"; argv[1] the file ("-" for stdin). Prints
 * "ok: N rules" on stdout and returns 0 for a valid policy; prints
 * "FILE:line:col: path: problem" on stderr and returns 1 for an invalid
 * one or an unreadable file; returns 2 on a usage error. Borrows argv.
 */
int policy_check_main(int argc, char **argv);

#endif
