// subwf_test: sub-workflows with the real binaries: a workflow step's
// child run gives it its output unchanged; a child's failure fails it and
// a retry starts a new child; the links both ways (child_started,
// child_ended, the child's parent, the step's child_run); cancelling or
// pausing the parent cancels or pauses the child; --max-depth stops a
// recursion with a clear error; define-time refusals (an unknown child
// definition, a bad `with`); a kill -9 of the coordinator while the child
// runs; a map of workflow steps; child params refused at start;
// examples/subworkflow/.
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void
up(void)
{
	weft_cluster_opts o = { .nworkers = 1, .survey_ms = 200 };
	weft_cluster_start_opts(&c, &o);
}

static void
up_shallow(void)
{
	weft_cluster_opts o = { .nworkers = 1, .survey_ms = 200,
		.args = { "--max-depth", "2", NULL } };
	weft_cluster_start_opts(&c, &o);
}

TestSuite(subwf, .fini = down, .timeout = 240);

// define registers def (text); returns the CLI's exit code, *out its
// output (malloc'd).
static int
define(const char *def, char **out)
{
	return (weft_cluster_cli(&c, out, "define '%s' 2>&1",
	    weft_cluster_write(&c, "def.json", def)));
}

static void
must_define(const char *def)
{
	char *out;
	cr_assert_eq(define(def, &out), 0, "%s", out);
	free(out);
}

// start_run starts a run of definition name; returns its id (static).
static const char *
start_run(const char *name)
{
	static char id[64];
	char       *out;

	cr_assert_eq(weft_cluster_cli(&c, &out, "run %s", name), 0, "%s", out);
	out[strcspn(out, "\n")] = '\0';
	snprintf(id, sizeof(id), "%s", out);
	free(out);
	return (id);
}


static const char *
str_of(json_t *o, const char *key)
{
	return (json_string_value(json_object_get(o, key)));
}


// await_child waits until step sid of run id names a child run that is
// in state `status`; returns the child's id (static).
static const char *
await_child(const char *id, const char *sid, const char *status)
{
	static char child[64];
	int64_t     deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);

	for (;;) {
		json_t     *run = weft_cluster_cli_json(&c, "status %s", id);
		const char *cid = str_of(weft_cluster_step(run, sid), "child_run");
		if (cid != NULL) {
			snprintf(child, sizeof(child), "%s", cid);
			json_t *cr = weft_cluster_cli_json(&c, "status %s", child);
			bool    ok = strcmp(str_of(cr, "status"), status) == 0;
			json_decref(cr);
			if (ok) {
				json_decref(run);
				return (child);
			}
		}
		if (weft_clock_mono_ms() > deadline) {
			char *t = json_dumps(run, JSON_COMPACT);
			cr_assert_fail("step %s never had a %s child: %s", sid,
			    status, t);
		}
		json_decref(run);
		weft_clock_sleep_ms(50);
	}
}

static const char *kid_def =
    "{\"name\":\"kid\",\"params\":{\"n\":{\"type\":\"int\",\"default\":1}},"
    "\"steps\":[{\"id\":\"e\",\"type\":\"echo\",\"with\":{\"x\":"
    "\"${input.x}\",\"n\":\"${params.n}\"}}]}";

static const char *dad_def =
    "{\"name\":\"dad\",\"steps\":["
    "{\"id\":\"plan\",\"type\":\"echo\",\"with\":{\"x\":\"hi\"}},"
    "{\"id\":\"sub\",\"type\":\"workflow\",\"depends_on\":[\"plan\"],"
    "\"with\":{\"name\":\"kid\",\"input\":{\"x\":"
    "\"${steps.plan.output.with.x}\"},\"params\":{\"n\":5}}},"
    "{\"id\":\"after\",\"type\":\"echo\",\"depends_on\":[\"sub\"],"
    "\"with\":{\"got\":\"${steps.sub.output.e.with.x}\"}}]}";

Test(subwf, child_output_is_the_step_output, .init = up)
{
	must_define(kid_def);
	must_define(dad_def);
	const char *id0 = start_run("dad");
	char        id[64];
	snprintf(id, sizeof(id), "%s", id0);
	json_t *run = weft_cluster_run_end(&c, id, 30000);
	cr_assert_str_eq(str_of(run, "status"), "succeeded");
	json_t     *sub   = weft_cluster_step(run, "sub");
	const char *child = str_of(sub, "child_run");
	cr_assert_not_null(child, "the step names its child run");
	json_t *kid = weft_cluster_cli_json(&c, "status %s", child);
	cr_assert_str_eq(str_of(kid, "status"), "succeeded");
	cr_expect_str_eq(str_of(kid, "definition"), "kid");
	// The child's output, unchanged, is the step's.
	cr_expect(json_equal(json_object_get(sub, "output"),
	              json_object_get(kid, "output")),
	    "step output is the child's output");
	json_t *e = json_object_get(json_object_get(sub, "output"), "e");
	cr_expect_str_eq(str_of(json_object_get(e, "with"), "x"), "hi");
	cr_expect_eq(json_integer_value(json_object_get(json_object_get(e,
	                 "with"), "n")), 5, "the child's params");
	cr_expect_str_eq(str_of(json_object_get(json_object_get(weft_cluster_step(run,
	                     "after"), "output"), "with"), "got"), "hi");
	// The child names its parent.
	json_t *parent = json_object_get(kid, "parent");
	cr_expect_str_eq(str_of(parent, "run_id"), id);
	cr_expect_str_eq(str_of(parent, "step"), "sub");
	cr_expect(json_is_null(json_object_get(run, "parent")));
	// The CLI's table says it too: the parent line, the child run in
	// the workflow step's NODE column.
	char *text, want[200];
	cr_assert_eq(weft_cluster_cli(&c, &text, "status %s", child), 0);
	snprintf(want, sizeof(want), "parent      %s (step sub)", id);
	cr_expect(strstr(text, want) != NULL, "%s", text);
	free(text);
	cr_assert_eq(weft_cluster_cli(&c, &text, "status %s", id), 0);
	cr_expect(strstr(text, child) != NULL && strstr(text, "parent") == NULL,
	    "%s", text);
	free(text);
	// Events: child_started and child_ended in the parent's log, the
	// parent in the child's run_queued.
	json_t *ev = weft_cluster_events(&c, id, "child_started");
	cr_assert_eq(json_array_size(ev), 1);
	json_t *d = json_object_get(json_array_get(ev, 0), "data");
	cr_expect_str_eq(str_of(d, "child_run"), child);
	cr_expect_str_eq(str_of(d, "definition"), "kid");
	cr_expect_eq(json_integer_value(json_object_get(d, "version")), 1);
	json_decref(ev);
	ev = weft_cluster_events(&c, id, "child_ended");
	cr_assert_eq(json_array_size(ev), 1);
	d = json_object_get(json_array_get(ev, 0), "data");
	cr_expect_str_eq(str_of(d, "child_run"), child);
	cr_expect_str_eq(str_of(d, "status"), "succeeded");
	json_decref(ev);
	ev = weft_cluster_events(&c, child, "run_queued");
	d  = json_object_get(json_array_get(ev, 0), "data");
	cr_expect_str_eq(str_of(d, "parent_run"), id);
	cr_expect_str_eq(str_of(d, "parent_step"), "sub");
	json_decref(ev);
	json_decref(kid);
	json_decref(run);
}

Test(subwf, child_failure_fails_the_step_and_a_retry_starts_a_new_child,
    .init = up)
{
	must_define("{\"name\":\"bad\",\"steps\":[{\"id\":\"boom\",\"type\":"
	            "\"fail\"}]}");
	must_define("{\"name\":\"tries\",\"steps\":[{\"id\":\"sub\",\"type\":"
	            "\"workflow\",\"with\":{\"name\":\"bad\"},\"retry\":{"
	            "\"max_attempts\":2,\"initial_ms\":10}}]}");
	char id[64];
	snprintf(id, sizeof(id), "%s", start_run("tries"));
	json_t *run = weft_cluster_run_end(&c, id, 30000);
	cr_assert_str_eq(str_of(run, "status"), "failed");
	json_t *ev = weft_cluster_events(&c, id, "child_started");
	cr_assert_eq(json_array_size(ev), 2, "one child per attempt");
	const char *c1 = str_of(json_object_get(json_array_get(ev, 0), "data"),
	    "child_run");
	const char *c2 = str_of(json_object_get(json_array_get(ev, 1), "data"),
	    "child_run");
	cr_expect_str_neq(c1, c2, "a retry starts a new child run");
	const char *err = str_of(weft_cluster_step(run, "sub"), "error");
	cr_assert_not_null(err);
	char want[128];
	snprintf(want, sizeof(want), "child run %s failed", c2);
	cr_expect(strstr(err, want) != NULL, "error names the child: %s", err);
	json_t *ended = weft_cluster_events(&c, id, "child_ended");
	cr_expect_eq(json_array_size(ended), 2);
	cr_expect_str_eq(str_of(json_object_get(json_array_get(ended, 0),
	                     "data"), "status"), "failed");
	json_decref(ended);
	json_decref(ev);
	json_decref(run);
}

// Params the child's definition refuses, known only once `with` renders:
// the step fails for good (no retry, no child run), naming what.
Test(subwf, child_params_refused_at_start_fail_the_step, .init = up)
{
	must_define(kid_def);
	must_define("{\"name\":\"badparams\",\"steps\":[{\"id\":\"sub\","
	            "\"type\":\"workflow\",\"retry\":{\"max_attempts\":3},"
	            "\"with\":{\"name\":\"kid\",\"params\":{\"n\":"
	            "\"${input.n}\"}}}]}");
	char *out, id[64];
	cr_assert_eq(weft_cluster_cli(&c, &out, "run badparams --input "
	                 "'{\"n\": \"many\"}'"),
	    0, "%s", out);
	out[strcspn(out, "\n")] = '\0';
	snprintf(id, sizeof(id), "%s", out);
	free(out);
	json_t *run = weft_cluster_run_end(&c, id, 30000);
	cr_assert_str_eq(str_of(run, "status"), "failed");
	const char *err = str_of(weft_cluster_step(run, "sub"), "error");
	cr_assert_not_null(err);
	cr_expect_str_eq(err, "workflow step: params of kid: params.n: "
	                      "expected int, got string");
	cr_expect_eq(json_integer_value(json_object_get(weft_cluster_step(run,
	                 "sub"), "attempt")), 0, "no attempt, no retry");
	json_t *ev = weft_cluster_events(&c, id, "child_started");
	cr_expect_eq(json_array_size(ev), 0, "no child run");
	json_decref(ev);
	json_decref(run);
}

// A map of workflow steps: one child run per item, the map's output the
// children's outputs in list order.
Test(subwf, a_map_starts_one_child_per_item, .init = up)
{
	must_define(kid_def);
	must_define("{\"name\":\"fan\",\"steps\":[{\"id\":\"m\",\"type\":"
	            "\"workflow\",\"map\":[\"a\",\"b\",\"c\"],\"with\":{"
	            "\"name\":\"kid\",\"input\":{\"x\":\"${item}\"}}}]}");
	char id[64];
	snprintf(id, sizeof(id), "%s", start_run("fan"));
	json_t *run = weft_cluster_run_end(&c, id, 30000);
	cr_assert_str_eq(str_of(run, "status"), "succeeded");
	json_t *out = json_object_get(weft_cluster_step(run, "m"), "output");
	cr_assert_eq(json_array_size(out), 3);
	const char *want[] = { "a", "b", "c" };
	for (size_t k = 0; k < 3; k++) {
		json_t *e = json_object_get(json_array_get(out, k), "e");
		cr_expect_str_eq(str_of(json_object_get(e, "with"), "x"), want[k],
		    "item %zu: its child's output, in list order", k);
	}
	json_t *ev = weft_cluster_events(&c, id, "child_started");
	cr_expect_eq(json_array_size(ev), 3, "one child per item");
	json_decref(ev);
	json_decref(run);
}

static const char *slow_kid_def =
    "{\"name\":\"slowkid\",\"steps\":[{\"id\":\"nap\",\"type\":\"sleep\","
    "\"with\":{\"ms\":%d}},{\"id\":\"out\",\"type\":\"echo\","
    "\"depends_on\":[\"nap\"],\"with\":{\"v\":7}}]}";

static const char *slow_dad_def =
    "{\"name\":\"slowdad\",\"steps\":[{\"id\":\"sub\",\"type\":\"workflow\","
    "\"with\":{\"name\":\"slowkid\"}}]}";

static void
define_slow(int ms)
{
	char def[512];
	snprintf(def, sizeof(def), slow_kid_def, ms);
	must_define(def);
	must_define(slow_dad_def);
}

Test(subwf, cancelling_the_parent_cancels_the_child, .init = up)
{
	char id[64], child[64], *out;

	define_slow(60000);
	snprintf(id, sizeof(id), "%s", start_run("slowdad"));
	snprintf(child, sizeof(child), "%s", await_child(id, "sub", "running"));
	cr_assert_eq(weft_cluster_cli(&c, &out, "cancel %s", id), 0, "%s", out);
	free(out);
	json_t *kid = weft_cluster_run_end(&c, child, 20000);
	cr_expect_str_eq(str_of(kid, "status"), "cancelled");
	json_decref(kid);
	json_t *run = weft_cluster_run_end(&c, id, 20000);
	cr_expect_str_eq(str_of(run, "status"), "cancelled");
	json_decref(run);
}

Test(subwf, pausing_the_parent_pauses_the_child, .init = up)
{
	char id[64], child[64], *out;

	define_slow(1500);
	snprintf(id, sizeof(id), "%s", start_run("slowdad"));
	snprintf(child, sizeof(child), "%s", await_child(id, "sub", "running"));
	// It waits for its child, and says which.
	json_t *st = weft_cluster_cli_json(&c, "status %s", id);
	json_t *wf = json_object_get(weft_cluster_step(st, "sub"), "waiting_for");
	cr_expect_str_eq(str_of(wf, "reason"), "child");
	cr_expect_str_eq(str_of(wf, "child_run"), child);
	json_decref(st);
	cr_assert_eq(weft_cluster_cli(&c, &out, "pause %s", id), 0, "%s", out);
	free(out);
	json_t *kid = weft_cluster_cli_json(&c, "status %s", child);
	cr_expect_str_eq(str_of(kid, "status"), "paused",
	    "the child paused with its parent");
	json_decref(kid);
	cr_assert_eq(weft_cluster_cli(&c, &out, "resume %s", id), 0, "%s", out);
	free(out);
	kid = weft_cluster_cli_json(&c, "status %s", child);
	cr_expect_str_neq(str_of(kid, "status"), "paused", "resumed too");
	json_decref(kid);
	json_t *run = weft_cluster_run_end(&c, id, 30000);
	cr_expect_str_eq(str_of(run, "status"), "succeeded");
	json_decref(run);
}

Test(subwf, max_depth_stops_a_recursion, .init = up_shallow)
{
	// A definition may name itself: --max-depth ends the recursion.
	must_define("{\"name\":\"rec\",\"steps\":[{\"id\":\"again\",\"type\":"
	            "\"workflow\",\"with\":{\"name\":\"rec\"}}]}");
	char id[64];
	snprintf(id, sizeof(id), "%s", start_run("rec"));
	json_t *run = weft_cluster_run_end(&c, id, 30000);
	cr_assert_str_eq(str_of(run, "status"), "failed");
	const char *err = str_of(weft_cluster_step(run, "again"), "error");
	cr_assert_not_null(err);
	// Root (0) -> child (1) -> grandchild (2), whose step is refused.
	cr_expect(strstr(err, "would be 3 levels deep, over the "
	                      "coordinator's --max-depth of 2") != NULL,
	    "%s", err);
	cr_expect(strstr(err, "child run ") == err, "%s", err);
	json_decref(run);
}

Test(subwf, define_refuses_unknown_and_malformed, .init = up)
{
	static const struct {
		const char *with, *want;
	} cases[] = {
		{ "{\"name\":\"nosuch\"}", "\"with.name\": no definition named "
		                          "\"nosuch\"" },
		{ "{}", "a workflow step needs \"with.name\"" },
		{ "{\"name\":3}", "field \"with.name\": must be a definition "
		                  "name" },
		{ "{\"name\":\"${input.x}\"}", "(not a template)" },
		{ "{\"name\":\"kid\",\"version\":\"x\"}",
		    "field \"with.version\": must be a whole number >= 1" },
		{ "{\"name\":\"kid\",\"input\":[1]}",
		    "field \"with.input\": must be an object" },
		{ "{\"name\":\"kid\",\"params\":1}",
		    "field \"with.params\": must be an object" },
		{ "{\"name\":\"kid\",\"cmd\":1}",
		    "field \"with.cmd\": unknown for a workflow step" },
		{ "{\"name\":\"kid\",\"version\":9}", "no definition named "
		                                      "\"kid\" at that version" },
	};
	char def[512], *out;

	must_define(kid_def);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(def, sizeof(def), "{\"name\":\"p%zu\",\"steps\":[{\"id\":"
		    "\"sub\",\"type\":\"workflow\",\"with\":%s}]}", i,
		    cases[i].with);
		cr_expect_neq(define(def, &out), 0, "case %zu accepted", i);
		cr_expect(strstr(out, cases[i].want) != NULL &&
		        strstr(out, "sub") != NULL,
		    "case %zu: want %s in: %s", i, cases[i].want, out);
		free(out);
	}
	// Nothing was registered.
	cr_expect_neq(weft_cluster_cli(&c, &out, "run p0 2>&1"), 0);
	free(out);
}

Test(subwf, child_survives_a_coordinator_kill, .init = up)
{
	char id[64], child[64];

	define_slow(3000);
	snprintf(id, sizeof(id), "%s", start_run("slowdad"));
	snprintf(child, sizeof(child), "%s", await_child(id, "sub", "running"));
	weft_h_kill(c.coord, SIGKILL);
	weft_cluster_start_coord(&c);
	json_t *run = weft_cluster_run_end(&c, id, 40000);
	cr_assert_str_eq(str_of(run, "status"), "succeeded");
	json_t *sub = weft_cluster_step(run, "sub");
	cr_expect_str_eq(str_of(sub, "child_run"), child, "the same child");
	cr_expect_eq(json_integer_value(json_object_get(json_object_get(
	                 json_object_get(json_object_get(sub, "output"), "out"),
	                 "with"), "v")), 7, "the child's output");
	json_t *ev = weft_cluster_events(&c, id, "child_started");
	cr_expect_eq(json_array_size(ev), 1, "no second child");
	json_decref(ev);
	json_decref(run);
}

// The example in examples/subworkflow/ runs as its README line says.
Test(subwf, the_example_runs, .init = up)
{
	char *out;

	cr_assert_eq(weft_cluster_cli(&c, &out, "define '%s' 2>&1",
	                 WEFT_SRC_DIR "/examples/subworkflow/build-one.json"),
	    0, "%s", out);
	free(out);
	cr_assert_eq(weft_cluster_cli(&c, &out, "define '%s' 2>&1",
	                 WEFT_SRC_DIR "/examples/subworkflow/release.json"),
	    0, "%s", out);
	free(out);
	cr_assert_eq(weft_cluster_cli(&c, &out, "run release --input "
	                 "'{\"commit\": \"abc123\"}'"),
	    0, "%s", out);
	out[strcspn(out, "\n")] = '\0';
	json_t *run = weft_cluster_run_end(&c, out, 30000);
	free(out);
	cr_assert_str_eq(str_of(run, "status"), "succeeded");
	json_t *pub = json_object_get(weft_cluster_step(run, "publish"),
	    "output");
	char *pubs = json_dumps(weft_cluster_step(run, "publish"), JSON_COMPACT);
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(pub,
	                     "artifacts"), 0)), "backend.tar", "%s", pubs);
	free(pubs);
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(pub,
	                     "artifacts"), 1)), "frontend.tar");
	json_decref(run);
}
