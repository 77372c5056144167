// liveness_test: how fast a dead worker is noticed, with the coordinator's
// own default for --lost-after (the harness passes none): a worker killed
// with SIGKILL is declared lost after exactly 3 missed surveys, within
// about three survey intervals plus a second, and not before two.
#define _GNU_SOURCE // strptime, timegm
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "cluster.h"
#include "harness.h"

#define SURVEY_MS 200

static weft_cluster c;

static void
up(void)
{
	weft_cluster_start(&c, 2, SURVEY_MS); // no --lost-after: the default
}

static void
down(void)
{
	weft_cluster_stop(&c);
}

TestSuite(liveness, .init = up, .fini = down, .timeout = 60);

// ts_ms reads an event's "ts" (RFC 3339, UTC, milliseconds) as epoch ms.
static int64_t
ts_ms(json_t *ev)
{
	const char *ts = json_string_value(json_object_get(ev, "ts"));
	struct tm   tm;
	int         ms = 0;
	char       *rest;

	memset(&tm, 0, sizeof(tm));
	cr_assert_not_null(ts, "an event without a ts");
	rest = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm);
	cr_assert_not_null(rest, "ts %s", ts);
	if (*rest == '.') {
		ms = atoi(rest + 1);
	}
	return ((int64_t) timegm(&tm) * 1000 + ms);
}

// lost_event returns the worker_lost event of worker name (new reference),
// or NULL while there is none.
static json_t *
lost_event(const char *name)
{
	char   *out;
	json_t *found = NULL;

	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "events --type worker_lost --limit 100"),
	    0);
	for (char *line = strtok(out, "\n"); line != NULL && found == NULL;
	     line       = strtok(NULL, "\n")) {
		json_t     *ev   = json_loads(line, 0, NULL);
		const char *node = json_string_value(json_object_get(ev, "node"));
		if (node != NULL && strcmp(node, name) == 0) {
			found = json_incref(ev);
		}
		json_decref(ev);
	}
	free(out);
	return (found);
}

Test(liveness, killed_worker_lost_after_three_missed_surveys)
{
	int64_t killed = weft_clock_wall_ms();
	int64_t deadline =
	    weft_clock_mono_ms() + weft_h_timeout_ms(3 * SURVEY_MS + 10000);
	json_t *ev;

	weft_h_kill(c.workers[1], SIGKILL);
	c.workers[1] = 0;
	while ((ev = lost_event("w1")) == NULL) {
		if (weft_clock_mono_ms() > deadline) {
			weft_cluster_dump_logs(&c);
			cr_assert_fail("w1 was not declared lost");
		}
		weft_clock_sleep_ms(20);
	}
	json_int_t missed = json_integer_value(
	    json_object_get(json_object_get(ev, "data"), "missed_surveys"));
	json_int_t after = ts_ms(ev) - killed;
	json_decref(ev);
	cr_expect_eq(missed, 3, "missed_surveys %lld, want the default 3",
	    (long long) missed);
	cr_expect_geq(after, 2 * SURVEY_MS,
	    "lost %lld ms after the kill: sooner than two surveys",
	    (long long) after);
	cr_expect_leq(after, 3 * SURVEY_MS + weft_h_timeout_ms(1000),
	    "lost %lld ms after the kill: later than three surveys and a "
	    "second", (long long) after);
	// The other worker is alive and stays so.
	ev = lost_event("w0");
	cr_expect_null(ev, "w0 was declared lost too");
	json_decref(ev);
}

// A coordinator that crashed and came back must not take its workers for
// dead while they are still backing off before they redial it (up to
// WEFT_RECONNECT_MAX_MS): their attempts would run a second time. Down
// long enough for the backoff to reach its longest, then back with the
// default --lost-after (3 × 200 ms, much less than the backoff).
Test(liveness, restarted_coordinator_waits_for_workers_to_redial)
{
	const char *def = weft_cluster_write(&c, "slow.json",
	    "{\"name\":\"slow\",\"steps\":["
	    "{\"id\":\"a\",\"type\":\"sleep\",\"with\":{\"ms\":4000}},"
	    "{\"id\":\"b\",\"type\":\"sleep\",\"with\":{\"ms\":4000}}]}");
	char   *out;
	char    id[64];
	int64_t deadline;

	cr_assert_eq(weft_cluster_cli(&c, &out, "run '%s'", def), 0);
	out[strcspn(out, "\n")] = '\0';
	snprintf(id, sizeof(id), "%s", out);
	free(out);
	deadline = weft_clock_mono_ms() + weft_h_timeout_ms(10000);
	while (weft_cluster_count_events(&c, id, "step_started") < 2) {
		cr_assert_lt(weft_clock_mono_ms(), deadline, "steps did not start");
		weft_clock_sleep_ms(20);
	}
	weft_h_kill(c.coord, SIGKILL);
	// The workers' redial backoff doubles from 100 ms up to 2 s.
	weft_clock_sleep_ms(2500);
	weft_cluster_start_coord(&c);
	json_t *run = weft_cluster_run_end(&c, id, 20000);
	cr_expect_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded");
	json_decref(run);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_lost"), 0,
	    "a step was lost with a worker that was only redialling");
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_started"), 2,
	    "a step started twice");
	json_t *ev = lost_event("w0");
	cr_expect_null(ev, "w0 was declared lost");
	json_decref(ev);
	ev = lost_event("w1");
	cr_expect_null(ev, "w1 was declared lost");
	json_decref(ev);
}
