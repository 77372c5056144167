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
