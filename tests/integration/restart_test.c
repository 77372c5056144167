// restart_test: a worker killed and back under the same name before it is
// missed. It is never declared lost (lost-after is long here), yet the
// attempts it held died with it: the coordinator sees them missing from
// the worker's survey answers and runs them again.
#include <criterion/criterion.h>
#include <signal.h>
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
