// weft-custom-worker: a worker with a step type of its own, built on
// libweft-worker (the SDK). It is weft-worker (same flags, cookie, TLS,
// drain on SIGTERM) plus the type "primes":
//
//   {"id": "count", "type": "primes", "with": {"below": 2000000}}
//
// counts the primes below with.below, reports its progress as it goes
// (`weft status` and the dashboard show it) and stops as soon as the
// attempt is cancelled. Its output is {"below": N, "primes": COUNT}.
//
// Build it against the installed package:
//   cc -o weft-custom-worker main.c $(pkg-config --cflags --libs weft-worker)
// Run it like weft-worker:
//   ./weft-custom-worker --join tcp://127.0.0.1:7421
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/worker.h>

#define PRIMES_MAX 100000000 // with.below at most this
#define PRIMES_CHUNK 50000   // numbers between checks and progress

// is_prime tests n by trial division: slow on purpose, so that progress
// and cancellation have something to show.
static int
is_prime(long n)
{
	if (n < 2) {
		return (0);
	}
	for (long d = 2; d * d <= n; d++) {
		if (n % d == 0) {
			return (0);
		}
	}
	return (1);
}

// fail sets *error to a copy of msg and returns the handler's failure.
static int
fail(char **error, const char *msg)
{
	*error = strdup(msg);
	return (-1);
}

// primes_step is the handler: input is the step's input document
// ({"with": {...}, "input": {...}, "params": {...}, "steps": {...}}),
// borrowed and read-only. It runs on one of the worker's slot threads.
static int
primes_step(void *arg, const weft_step_ctx *ctx, json_t *input,
    json_t **output, char **error)
{
	json_t *below = json_object_get(json_object_get(input, "with"), "below");
	long    n, count = 0;
	char    progress[96];

	(void) arg;
	if (!json_is_integer(below) || json_integer_value(below) < 0 ||
	    json_integer_value(below) > PRIMES_MAX) {
		return (fail(error, "primes: with.below must be an integer "
		                    "from 0 to 100000000"));
	}
	n = (long) json_integer_value(below);
	for (long i = 0; i < n; i++) {
		if (i % PRIMES_CHUNK == 0) {
			// Cancelled (the run was cancelled, the step timed
			// out, or the worker is shutting down): stop now.
			if (weft_step_aborted(ctx)) {
				return (fail(error, "primes: cancelled"));
			}
			// A heartbeat with progress: any JSON value.
			snprintf(progress, sizeof(progress),
			    "{\"done\": %ld, \"of\": %ld, \"primes\": %ld}", i,
			    n, count);
			weft_attempt_heartbeat(ctx->att, progress);
		}
		count += is_prime(i);
	}
	*output = json_pack("{sIsI}", "below", (json_int_t) n, "primes",
	    (json_int_t) count);
	return (*output != NULL ? 0 : fail(error, "primes: out of memory"));
}

int
main(int argc, char **argv)
{
	static const weft_step_type types[] = {
		{ "primes", primes_step, NULL },
	};

	return (weft_worker_main(argc, argv, types, 1));
}
