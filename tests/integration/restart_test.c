// restart_test: a worker killed and back under the same name before it is
// missed. It is never declared lost (lost-after is long here), yet the
// attempts it held died with it: the coordinator sees them missing from
// the worker's survey answers and runs them again. And a coordinator whose
// stop hangs in nng_close still ends, and the next one starts.
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cluster.h"
#include "harness.h"

static weft_cluster c;

static void
up(void)
{
	weft_cluster_start_lost(&c, 2, 200, 100); // lost after 20 s
}

static void
down(void)
{
	weft_cluster_stop(&c);
}

TestSuite(restart, .init = up, .fini = down, .timeout = 120);

Test(restart, worker_back_under_same_name_gets_its_attempts_rerun)
{
	const char *def = weft_cluster_write(&c, "two.json",
	    "{\"name\":\"two\",\"steps\":[{\"id\":\"a\",\"type\":\"sleep\","
	    "\"with\":{\"ms\":1500}},{\"id\":\"b\",\"type\":\"sleep\","
	    "\"with\":{\"ms\":1500}}]}");
	char *out, id[64];
	cr_assert_eq(weft_cluster_cli(&c, &out, "run '%s'", def), 0);
	out[strcspn(out, "\n")] = '\0';
	snprintf(id, sizeof(id), "%s", out);
	free(out);
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);
	while (weft_cluster_count_events(&c, id, "step_started") < 2) {
		cr_assert(weft_clock_mono_ms() < deadline, "steps never started");
		weft_clock_sleep_ms(20);
	}
	// Killed and back at once: the coordinator never misses a survey.
	weft_h_kill(c.workers[0], SIGKILL);
	weft_cluster_start_worker(&c, 0);

	json_t *run = weft_cluster_run_end(&c, id, 15000);
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded", "the run hung on the restarted worker's attempt");
	json_decref(run);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_lost"), 1,
	    "the restarted worker's attempt is lost and run again");
	cr_assert_eq(weft_cluster_cli(&c, &out, "events --type worker_lost"), 0,
	    "weft events --type worker_lost failed: %s", out);
	cr_expect_eq(strlen(out), 0, "no worker was declared lost: %s", out);
	free(out);
}

// hang_close_on makes every nng_close in the processes named prog that
// start from now on hang for good (support/hang_close.c), until
// hang_close_off.
static char *asan_saved;

static void
hang_close_on(const char *prog)
{
	const char *old = getenv("ASAN_OPTIONS");
	char        asan[1024];

	asan_saved = old != NULL ? strdup(old) : NULL;
	// The shim comes before the sanitizers' runtime in an ASan build.
	snprintf(asan, sizeof(asan), "%s%sverify_asan_link_order=0",
	    asan_saved != NULL ? asan_saved : "",
	    asan_saved != NULL && *asan_saved ? ":" : "");
	setenv("ASAN_OPTIONS", asan, 1);
	setenv("LD_PRELOAD", WEFT_HANG_CLOSE_SO, 1);
	setenv("WEFT_TEST_HANG_CLOSE", prog, 1);
}

static void
hang_close_off(void)
{
	unsetenv("WEFT_TEST_HANG_CLOSE");
	unsetenv("LD_PRELOAD");
	if (asan_saved != NULL) {
		setenv("ASAN_OPTIONS", asan_saved, 1);
	} else {
		unsetenv("ASAN_OPTIONS");
	}
	free(asan_saved);
	asan_saved = NULL;
}

// run_succeeds writes definition json to file, runs it (its id into id)
// and waits until it has succeeded.
static void
run_succeeds(const char *file, const char *json, char id[64])
{
	weft_cluster_run_def(&c, file, json, id);
	json_t *run = weft_cluster_run_end(&c, id, 15000);
	cr_assert_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded");
	json_decref(run);
}

// Every nng_close in the coordinator hangs for good, as nng 1.5.2's can
// (watchdog.h); an LD_PRELOAD shim (support/hang_close.c) makes it hang
// every time. The workers come back at new addresses first: the engine
// hands their old dispatch sockets to the closer thread and goes on (on
// the engine thread, the close would stop every run). Then the stop: all
// is durable by then, the coordinator ends within its teardown bound with
// status 0 and says so (STOP-GIVE-UP), and the next one can listen on the
// same ports and finds the run it finished.
Test(restart, a_stop_stuck_in_nng_close_still_ends_and_loses_nothing)
{
	char id[64];

	cr_assert_eq(weft_h_term(c.coord, 20000), 0);
	hang_close_on("weft-coordinator");
	weft_cluster_start_coord(&c);
	hang_close_off();
	// Back at new addresses (port 0): two more WORKER-JOIN lines, each
	// after the engine retired the old socket.
	weft_cluster_wait_workers(&c, 2);
	char *n0 = NULL;
	cr_assert_eq(weft_h_run_fmt(&n0, "grep -c WORKER-JOIN "
	                                 "'%s/coordinator.log'", c.dir), 0);
	int joins = atoi(n0);
	free(n0);
	for (int i = 0; i < 2; i++) {
		weft_h_kill(c.workers[i], SIGKILL);
		weft_cluster_start_worker(&c, i);
	}
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(15000);
	while (weft_h_run_fmt(NULL, "test $(grep -c WORKER-JOIN "
	                            "'%s/coordinator.log') -ge %d",
	           c.dir, joins + 2) != 0) {
		cr_assert(weft_clock_mono_ms() < deadline,
		    "the workers' new incarnations never joined");
		weft_clock_sleep_ms(50);
	}

	run_succeeds("one.json",
	    "{\"name\":\"one\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\"},"
	    "{\"id\":\"b\",\"type\":\"noop\",\"depends_on\":[\"a\"]}]}",
	    id);

	int64_t t0 = weft_clock_mono_ms();
	int     st = weft_h_term(c.coord, 20000);
	fprintf(stderr, "restart: the stuck stop ended in %lld ms\n",
	    (long long) (weft_clock_mono_ms() - t0));
	cr_expect_eq(st, 0, "a stop stuck in nng_close ended with %d (-1: it "
	    "had to be killed)", st);
	cr_expect_eq(weft_h_run_fmt(NULL, "grep -q 'STOP-GIVE-UP.*phase=\"server "
	                 "close\"' '%s/coordinator.log'", c.dir),
	    0, "the coordinator says why it ended without its teardown");

	// The next coordinator listens on the same ports: nothing holds them.
	weft_cluster_start_coord(&c);
	json_t *run = weft_cluster_run_end(&c, id, 15000);
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded");
	json_decref(run);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_succeeded"), 2);
	cr_expect_eq(weft_cluster_count_events(&c, id, "run_succeeded"), 1);
}

// Every nng_close in worker w0 hangs for good. A SIGTERM drains it: every
// result acked, nothing left to lose, so its stuck close is cut short
// (STOP-GIVE-UP) and it exits 0, and the coordinator saw it leave.
Test(restart, a_drained_worker_stuck_in_nng_close_still_exits_0)
{
	char id[64];

	weft_h_kill(c.workers[0], SIGKILL);
	hang_close_on("weft-worker");
	weft_cluster_start_worker(&c, 0);
	hang_close_off();
	weft_cluster_wait_workers(&c, 2);

	// Work for both (four slots each): some of it on w0.
	run_succeeds("wide.json",
	    "{\"name\":\"wide\",\"steps\":[{\"id\":\"a\",\"type\":\"sleep\","
	    "\"with\":{\"ms\":300}},{\"id\":\"b\",\"type\":\"sleep\","
	    "\"with\":{\"ms\":300}},{\"id\":\"c\",\"type\":\"sleep\","
	    "\"with\":{\"ms\":300}},{\"id\":\"d\",\"type\":\"sleep\","
	    "\"with\":{\"ms\":300}},{\"id\":\"e\",\"type\":\"sleep\","
	    "\"with\":{\"ms\":300}}]}",
	    id);

	int64_t t0 = weft_clock_mono_ms();
	int     st = weft_h_term(c.workers[0], 20000);
	fprintf(stderr, "restart: the stuck worker's stop ended in %lld ms\n",
	    (long long) (weft_clock_mono_ms() - t0));
	cr_expect_eq(st, 0, "a drained worker stuck in nng_close ended with %d "
	    "(-1: it had to be killed)", st);
	cr_expect_eq(weft_h_run_fmt(NULL, "grep -q 'WORKER-DRAINED.*acked=all' "
	                 "'%s/w0.log' && grep -q 'STOP-GIVE-UP.*phase=\"worker "
	                 "close\"' '%s/w0.log'", c.dir, c.dir),
	    0, "the worker drained, then said why it ended without its "
	       "teardown");
	cr_expect_eq(weft_h_run_fmt(NULL, "grep -q 'WORKER-LEFT worker=w0' "
	                 "'%s/coordinator.log'", c.dir),
	    0, "the coordinator saw w0 leave");
	weft_cluster_start_worker(&c, 0); // for the suite's stop
}
