// hang_close: an LD_PRELOAD shim that makes nng_close hang for good in the
// program WEFT_TEST_HANG_CLOSE names (weft-coordinator, weft-worker), as
// nng 1.5.2's own can (its reaper waits on a task that never runs: nng
// issues #1543 and #1813). restart_test uses it to show that a stop stuck
// there still ends, with status 0 and nothing lost. Every other process
// gets the real nng_close.
#define _GNU_SOURCE // program_invocation_short_name, RTLD_NEXT
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>

int
nng_close(nng_socket s)
{
	static int (*real)(nng_socket);

	const char *who = getenv("WEFT_TEST_HANG_CLOSE");

	if (who != NULL && strcmp(program_invocation_short_name, who) == 0) {
		for (;;) {
			pause();
		}
	}
	if (real == NULL) {
		real = (int (*)(nng_socket)) dlsym(RTLD_NEXT, "nng_close");
	}
	return (real(s));
}
