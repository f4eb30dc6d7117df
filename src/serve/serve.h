/* `nexra serve`: run the server until SIGTERM/SIGINT. Returns the exit code. */
#ifndef NEXRA_SERVE_SERVE_H
#define NEXRA_SERVE_SERVE_H

int serve_main(int argc, char **argv);

#endif
