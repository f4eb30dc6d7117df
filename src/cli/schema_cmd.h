/*
 * `nexra schema validate [--assert-format] SCHEMA_FILE INSTANCE_FILE`: the
 * validator without a server, for users and for the black-box tests.
 *
 * Exit status: 0 the instance is valid (nothing printed); 1 it is not, with
 * one failure per line on stdout ("/company_name: expected string, got
 * number (type)"); 2 usage error, unreadable or unparsable file, or a schema
 * that is not a valid draft-07 schema (message and details on stderr).
 * Remote $refs are not followed: there is no registry on the command line.
 */
#ifndef NEXRA_CLI_SCHEMA_CMD_H
#define NEXRA_CLI_SCHEMA_CMD_H

/* argv[0] is the subcommand ("validate"); argv is borrowed. */
int schema_cmd_main(int argc, char **argv);

#endif
