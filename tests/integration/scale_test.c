// scale_test: wide fan-outs that carry data, on the real binaries: a map
// whose items used to carry the whole list finishes without a false loss
// or an ignored result, a cancel is answered within a second during a
// 100,000-item map, and the size limits fail the step or the request on
// the first attempt, naming the limit.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "clock.h"
#include "cluster.h"
#include "harness.h"

static weft_cluster c;

static void
down(void)
{
	weft_cluster_stop(&c);
}

TestSuite(scale, .fini = down, .timeout = 900);

// run_start starts a run of definition file def with input (a file name
// for --input @FILE, or NULL) and returns its id (malloc'd).
static char *
run_start(const char *def, const char *input_file)
{
	char *out, *nl;

	cr_assert_eq(weft_cluster_cli(&c, &out, "run '%s'%s%s%s", def,
	                 input_file ? " --input '@" : "",
	                 input_file ? input_file : "", input_file ? "'" : ""),
	    0, "run %s was refused", def);
	if ((nl = strchr(out, '\n')) != NULL) {
		*nl = '\0';
	}
	return (out);
}

// step_output returns the output of step of run id (new reference).
static json_t *
step_output(const char *id, const char *step)
{
	char   *out;
	json_t *v;

	cr_assert_eq(weft_cluster_cli(&c, &out, "status %s --step %s --output",
	                 id, step),
	    0);
	v = json_loads(out, 0, NULL);
	cr_assert_not_null(v, "%s's output: %.300s", step, out);
	free(out);
	return (v);
}

// run_wait_end waits (deadline timeout_ms, scaled) for one of run id's end
// events and returns its type ("succeeded", ...; static storage). By the
// event log, not `weft status`: a status of 100,000 steps is not what
// these tests are about.
static const char *
run_wait_end(const char *id, int64_t timeout_ms)
{
	static char st[32];
	int64_t     deadline = weft_clock_mono_ms() + weft_h_timeout_ms(timeout_ms);

	for (;;) {
		char   *out;
		json_t *ev;
		cr_assert_eq(weft_cluster_cli(&c, &out,
		                 "events --run %s --type run_succeeded,run_failed,"
		                 "run_cancelled,run_timed_out --limit 1",
		                 id),
		    0);
		ev = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
		free(out);
		if (ev != NULL) {
			snprintf(st, sizeof(st), "%s",
			    json_string_value(json_object_get(ev, "type")) + 4);
			json_decref(ev);
			return (st);
		}
		if (weft_clock_mono_ms() > deadline) {
			weft_cluster_dump_logs(&c);
			cr_assert_fail("run %s did not end in time", id);
		}
		weft_clock_sleep_ms(200);
	}
}

// The issue's livelock: an exec step prints a list of 10,000 numbers, a
// map echoes each, a last step follows. Each item used to carry the whole
// list: the run stalled with items lost from live workers and their
// results ignored. Now it ends, with neither, and the coordinator answers
// meanwhile.
Test(scale, exec_generated_map_of_10000_echo_items_finishes)
{
	char script[800];

	weft_cluster_start(&c, 2, 200);
	snprintf(script, sizeof(script), "%s/gen.sh", c.exec_allow);
	FILE *f = fopen(script, "w");
	cr_assert_not_null(f);
	fputs("#!/bin/sh\ncat >/dev/null\n"
	      "awk 'BEGIN{printf \"{\\\"l\\\":[\"; for(i=0;i<10000;i++)"
	      "{if(i)printf \",\";printf \"%d\",i}; print \"]}\"}'\n",
	    f);
	fclose(f);
	chmod(script, 0755);
	const char *def = weft_cluster_write(&c, "gen.json",
	    "{\"name\":\"gen\",\"steps\":["
	    "{\"id\":\"gen\",\"type\":\"exec\",\"with\":{\"cmd\":[\"gen.sh\"]}},"
	    "{\"id\":\"m\",\"type\":\"echo\",\"depends_on\":[\"gen\"],"
	    "\"map\":\"steps.gen.output.l\",\"with\":{\"x\":\"${item}\"}},"
	    "{\"id\":\"after\",\"type\":\"echo\",\"depends_on\":[\"m\"],"
	    "\"with\":{\"n\":\"${steps.m.output.9999.with.x}\"}},"
	    "{\"id\":\"plain\",\"type\":\"echo\",\"depends_on\":[\"m\"]}]}");
	char   *id = run_start(def, NULL);
	int64_t t0 = weft_clock_mono_ms();
	// The coordinator keeps answering while the items run.
	weft_clock_sleep_ms(500);
	int64_t a0 = weft_clock_mono_ms();
	cr_expect_eq(weft_cluster_cli(&c, NULL, "info"), 0);
	int64_t took = weft_clock_mono_ms() - a0;
	cr_expect_lt(took, weft_h_timeout_ms(5000), "info took %lld ms",
	    (long long) took);
	cr_assert_str_eq(run_wait_end(id, 300000), "succeeded");
	fprintf(stderr, "scale: 10000 echo items in %lld ms\n",
	    (long long) (weft_clock_mono_ms() - t0));
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_lost"), 0);
	cr_expect_eq(weft_cluster_count_events(&c, id, "result_ignored"), 0);
	cr_expect_eq(weft_cluster_count_events(&c, NULL, "worker_lost"), 0);
	// Every item's output is its own element, not the list.
	char *out;
	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "events --run %s --type step_succeeded --step 'm[9999]'",
	                 id),
	    0);
	cr_expect(strstr(out, "\"x\":9999") != NULL, "%s", out);
	cr_expect(strlen(out) < 4096, "item 9999's output is %zu bytes",
	    strlen(out));
	free(out);
	// The map's combined output (~600 KB) reaches the step after it as
	// the reference its step_succeeded event carries, not whole; `with`
	// read the real value.
	json_t *ev, *after;
	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "events --run %s --type step_succeeded --step m", id),
	    0);
	ev = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
	free(out);
	const char *hash = json_string_value(json_object_get(
	    json_object_get(json_object_get(ev, "data"), "output"), "$blob"));
	cr_assert_not_null(hash, "m's output is not a reference");
	after = step_output(id, "after");
	json_t *dep = json_object_get(json_object_get(after, "steps"), "m");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(dep, "output"), "$blob")),
	    hash);
	cr_expect_gt(json_integer_value(json_object_get(
	                 json_object_get(dep, "output"), "size")),
	    64 * 1024);
	cr_expect_eq(json_integer_value(json_object_get(
	                 json_object_get(after, "with"), "n")),
	    9999, "with read the real list");
	// The same for a step with nothing to render, whose input the
	// coordinator writes as text without building the document.
	json_t *plain = step_output(id, "plain");
	json_t *pdep = json_object_get(json_object_get(plain, "steps"), "m");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(pdep, "output"), "$blob")),
	    hash);
	cr_expect_str_eq(json_string_value(json_object_get(pdep, "status")),
	    "succeeded");
	json_decref(plain);
	json_decref(after);
	json_decref(ev);
	free(id);
}

// A cancel sent during a 100,000-item map is answered within a second
// (results flowing back are taken after control requests, a bounded
// share per iteration), and the run ends cancelled. Under sanitizers the
// bound is scaled like every timeout (WEFT_TEST_TIMEOUT_MULTIPLIER).
Test(scale, cancel_is_answered_within_a_second_during_a_100000_item_map)
{
	weft_cluster_start(&c, 2, 200);
	char def[700];
	snprintf(def, sizeof(def), "%s", weft_cluster_write(&c, "wide.json",
	    "{\"name\":\"wide\",\"steps\":[{\"id\":\"m\",\"type\":\"noop\","
	    "\"map\":\"input.xs\"}]}"));
	size_t cap = 800000, len = 0;
	char  *in  = weft_xalloc(cap);
	len += (size_t) snprintf(in + len, cap - len, "{\"xs\":[");
	for (int k = 0; k < 100000; k++) {
		len += (size_t) snprintf(in + len, cap - len, "%s%d", k ? "," : "",
		    k);
	}
	snprintf(in + len, cap - len, "]}");
	const char *input = weft_cluster_write(&c, "wide-input.json", in);
	char        input_path[700];
	snprintf(input_path, sizeof(input_path), "%s", input);
	free(in);
	char *id = run_start(def, input_path);
	// Under way: items are ending, the rest wait to be dispatched.
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(60000);
	while (weft_cluster_count_events(&c, id, "step_succeeded") < 200) {
		cr_assert_lt(weft_clock_mono_ms(), deadline, "no item ended");
		weft_clock_sleep_ms(100);
	}
	int64_t t0 = weft_clock_mono_ms();
	cr_assert_eq(weft_cluster_cli(&c, NULL, "cancel %s", id), 0);
	int64_t took = weft_clock_mono_ms() - t0;
	fprintf(stderr, "scale: cancel answered in %lld ms during a "
	                "100000-item map\n",
	    (long long) took);
	cr_expect_leq(took, weft_h_timeout_ms(1000),
	    "cancel answered in %lld ms", (long long) took);
	cr_expect_str_eq(run_wait_end(id, 60000), "cancelled");
	free(id);
}

// The size limits fail what is over them at once, naming the limit: an
// item's output over --max-output fails on its first attempt (not lost,
// not sent again); a step whose input (its dependencies' outputs) is
// over 8 MiB fails before it is dispatched; a run input over 4 MiB is
// refused at request time. A map step's combined output is not bound by
// --max-output.
Test(scale, size_limits_fail_at_once_naming_the_limit)
{
	weft_cluster_opts o = { .nworkers = 2, .survey_ms = 200,
		.args = { "--max-output", "200KiB", NULL } };
	weft_cluster_start_opts(&c, &o);

	// Over --max-output: the items echo a 300 KB input.
	size_t cap = 5u << 20;
	char  *in  = weft_xalloc(cap);
	snprintf(in, cap, "{\"s\":\"");
	memset(in + 6, 'x', 300000);
	snprintf(in + 6 + 300000, cap - 6 - 300000, "\"}");
	const char *p = weft_cluster_write(&c, "big-input.json", in);
	char big[700];
	snprintf(big, sizeof(big), "%s", p);
	const char *def = weft_cluster_write(&c, "fat.json",
	    "{\"name\":\"fat\",\"steps\":[{\"id\":\"m\",\"type\":\"echo\","
	    "\"map\":\"input.l\",\"with\":{\"s\":\"${input.s}\"}}]}");
	char *out, *nl;
	// 300 bytes of s are far from the limit: this run succeeds (the
	// limit is not hit by mistake).
	cr_assert_eq(weft_cluster_cli(&c, &out, "run '%s' --input "
	                 "'{\"l\":[1,2],\"s\":\"%.300s\"}'", def, in + 6),
	    0);
	if ((nl = strchr(out, '\n')) != NULL) {
		*nl = '\0';
	}
	cr_expect_str_eq(run_wait_end(out, 60000), "succeeded");
	free(out);
	// The same step over the 300 KB value fails at once.
	def = weft_cluster_write(&c, "fat2.json",
	    "{\"name\":\"fat2\",\"steps\":[{\"id\":\"m\",\"type\":\"echo\","
	    "\"with\":{\"s\":\"${input.s}\"}}]}");
	char *id = run_start(def, big);
	cr_assert_str_eq(run_wait_end(id, 60000), "failed");
	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "events --run %s --type step_failed", id),
	    0);
	cr_expect(strstr(out, "over the step output limit of 204800 bytes "
	                      "(--max-output)") != NULL,
	    "%s", out);
	free(out);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_lost"), 0);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_dispatched"), 1,
	    "sent again after it was over the limit");
	free(id);

	// A map's combined output is not bound by it (60 items x 160 KB =
	// 9.6 MB, each under the limit: echo returns its input, the run's
	// s and its with's copy); the step after it takes all of it through
	// its `with` (without, it would get the blob reference): over 8 MiB,
	// it fails at dispatch, never dispatched.
	memset(in + 6, 'y', 80000);
	snprintf(in + 6 + 80000, cap - 6 - 80000, "\",\"l\":[");
	size_t len = strlen(in);
	for (int k = 0; k < 60; k++) {
		len += (size_t) snprintf(in + len, cap - len, "%s%d", k ? "," : "",
		    k);
	}
	snprintf(in + len, cap - len, "]}");
	p = weft_cluster_write(&c, "wide-input.json", in);
	snprintf(big, sizeof(big), "%s", p);
	def = weft_cluster_write(&c, "wide.json",
	    "{\"name\":\"wide\",\"steps\":[{\"id\":\"m\",\"type\":\"echo\","
	    "\"map\":\"input.l\",\"with\":{\"s\":\"${input.s}\"}},"
	    "{\"id\":\"after\",\"type\":\"noop\",\"depends_on\":[\"m\"],"
	    "\"with\":{\"all\":\"${steps.m.output}\"}}]}");
	id = run_start(def, big);
	cr_assert_str_eq(run_wait_end(id, 120000), "failed");
	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "events --run %s --type step_failed,step_succeeded "
	                 "--step m",
	                 id),
	    0);
	cr_expect(strstr(out, "step_succeeded") != NULL,
	    "the map step failed: %.2000s", out);
	free(out);
	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "events --run %s --type step_failed --step after", id),
	    0);
	cr_expect(strstr(out, "step input too large") != NULL &&
	        strstr(out, "over the step input limit of 8388608 bytes") !=
	            NULL,
	    "%.2000s", out);
	free(out);
	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "events --run %s --type step_dispatched --step after",
	                 id),
	    0);
	cr_expect_eq(out[0], '\0', "dispatched although over the limit");
	free(out);
	free(id);

	// A run input over 4 MiB is refused at request time.
	memset(in + 6, 'z', (4u << 20) + 10);
	snprintf(in + 6 + (4u << 20) + 10, cap - 6 - (4u << 20) - 10, "\"}");
	p = weft_cluster_write(&c, "huge-input.json", in);
	snprintf(big, sizeof(big), "%s", p);
	cr_expect_neq(weft_cluster_cli(&c, &out, "run '%s' --input '@%s' 2>&1",
	                  def, big),
	    0, "a run input over the limit was taken");
	cr_expect(strstr(out, "over the run input limit of 4194304 bytes") !=
	        NULL,
	    "%.2000s", out);
	free(out);
	free(in);
}

// --max-output takes bytes or KiB/MiB from 1 KiB to 12 MiB; anything else
// stops the coordinator at start, naming the flag and what it wants.
Test(scale, malformed_max_output_refused, .timeout = 300)
{
	static const char *const bad[] = { "", "abc", "4GiB", "13MiB", "1000",
		"-5", "4 MiB", "4mb" };

	weft_cluster_expect_flag_refused("--max-output", bad,
	    sizeof(bad) / sizeof(bad[0]), "--max-output wants a size from 1KiB to 12MiB");
}
