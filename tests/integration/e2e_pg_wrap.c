// e2e_pg_wrap: runs a test binary against a PostgreSQL server of its own.
//
// Starts a throwaway server (tests/support/pg.c), puts its URL in
// WEFT_TEST_DB (which tests/support/cluster.c hands to the coordinator),
// runs the command line given, stops the server, and exits with the
// command's status. So e2e_pg_test is e2e_test, unchanged, on PostgreSQL.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pg.h"

static volatile sig_atomic_t child;

static void
forward_cb(int sig)
{
	if (child > 0) {
		kill(child, sig);
	}
}

int
main(int argc, char **argv)
{
	weft_pg pg;
	pid_t   pid;
	int     st = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s PROGRAM [ARGS...]\n", argv[0]);
		return (2);
	}
	if (weft_pg_start(&pg) != 0) {
		fprintf(stderr, "e2e_pg_wrap: PostgreSQL did not start\n");
		return (1);
	}
	setenv("WEFT_TEST_DB", weft_pg_url(&pg), 1);
	weft_pg_export(&pg, NULL);
	fprintf(stderr, "e2e_pg_wrap: WEFT_TEST_DB=%s\n", weft_pg_url(&pg));
	if ((pid = fork()) < 0) {
		weft_pg_stop(&pg);
		return (1);
	}
	if (pid == 0) {
		execv(argv[1], argv + 1);
		perror(argv[1]);
		_exit(127);
	}
	child = pid;
	signal(SIGTERM, forward_cb);
	signal(SIGINT, forward_cb);
	while (waitpid(pid, &st, 0) < 0) {
	}
	weft_pg_stop(&pg);
	if (WIFSIGNALED(st)) {
		fprintf(stderr, "e2e_pg_wrap: %s died of signal %d\n", argv[1],
		    WTERMSIG(st));
		return (1);
	}
	return (WEXITSTATUS(st));
}
