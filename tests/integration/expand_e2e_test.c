// expand_e2e_test: dynamic expansion with the real binaries: the goal
// example (examples/goal/) end to end, its dependents waiting for all of
// the expansion; a nested expansion, and one deeper than max_depth; a bad
// expansion failing its step with the check's message; a kill -9 of the
// coordinator mid-expansion; a run retry expanding again; a pause holding
// the expansion; the define-time refusal of a bad "expand".
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "cluster.h"
#include "harness.h"

static weft_cluster c;

// The test's decomposer: prints the expansion its first argument names.
static const char *expander =
    "#!/bin/sh\n"
    "case \"$1\" in\n"
    "nested) cat <<'J'\n"
    "{\"steps\":[{\"id\":\"inner\",\"type\":\"exec\",\"expand\":true,"
    "\"with\":{\"cmd\":[\"expander.sh\",\"leaf\"]}},"
    "{\"id\":\"after\",\"type\":\"echo\",\"depends_on\":[\"inner\"],"
    "\"with\":{\"got\":\"${steps.inner.output.x.with.v}\"}}]}\n"
    "J\n;;\n"
    "leaf) echo '{\"steps\":[{\"id\":\"x\",\"type\":\"echo\","
    "\"with\":{\"v\":7}}]}';;\n"
    "bad) echo '{\"steps\":[{\"id\":\"a\",\"type\":\"echo\","
    "\"depends_on\":[\"zz\"]}]}';;\n"
    "slow) echo '{\"steps\":[{\"id\":\"nap\",\"type\":\"sleep\","
    "\"with\":{\"ms\":2500}},{\"id\":\"after\",\"type\":\"echo\","
    "\"depends_on\":[\"nap\"],\"with\":{\"n\":1}}]}';;\n"
    "flaky) echo '{\"steps\":[{\"id\":\"x\",\"type\":\"exec\","
    "\"with\":{\"cmd\":[\"gate.sh\"]}}]}';;\n"
    "esac\n";

// gate.sh fails until the file "open" exists beside it.
static const char *gate =
    "#!/bin/sh\n[ -e \"$(dirname \"$0\")/open\" ] || { echo shut >&2; exit 4; }\n"
    "echo '{\"ok\":1}'\n";

static void
down(void)
{
	weft_cluster_stop(&c);
}

static void
up(void)
{
	char  path[800];
	FILE *f;

	weft_cluster_opts o = { .nworkers = 1, .survey_ms = 200 };
	weft_cluster_start_opts(&c, &o);
	snprintf(path, sizeof(path), "%s/expander.sh", c.exec_allow);
	cr_assert_not_null((f = fopen(path, "w")));
	fputs(expander, f);
	fclose(f);
	cr_assert_eq(chmod(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/gate.sh", c.exec_allow);
	cr_assert_not_null((f = fopen(path, "w")));
	fputs(gate, f);
	fclose(f);
	cr_assert_eq(chmod(path, 0755), 0);
	cr_assert_eq(weft_h_run_fmt(NULL, "cp '%s/examples/goal/decompose.sh' '%s/'",
	                 WEFT_SRC_DIR, c.exec_allow),
	    0);
}

TestSuite(expand_e2e, .init = up, .fini = down, .timeout = 240);

static const char *
str_of(json_t *o, const char *key)
{
	return (json_string_value(json_object_get(o, key)));
}

// run_def registers def (text) and starts a run of it with input (JSON
// text or NULL); returns the run id (static).
static const char *
run_def(const char *name, const char *def, const char *input)
{
	static char id[64];
	char       *out;

	cr_assert_eq(weft_cluster_cli(&c, &out, "define '%s' 2>&1",
	                 weft_cluster_write(&c, "def.json", def)),
	    0, "%s", out);
	free(out);
	cr_assert_eq(weft_cluster_cli(&c, &out, "run %s --input '%s'", name,
	                 input ? input : "{}"),
	    0, "%s", out);
	out[strcspn(out, "\n")] = '\0';
	snprintf(id, sizeof(id), "%s", out);
	free(out);
	return (id);
}

// plan_def: one exec step `plan` expanding with expander.sh ARG, then
// `end` reading it; extra: more top-level fields.
static const char *
plan_def(const char *name, const char *arg, const char *extra)
{
	static char def[1024];
	snprintf(def, sizeof(def),
	    "{\"name\":\"%s\"%s,\"steps\":[{\"id\":\"plan\",\"type\":\"exec\","
	    "\"expand\":true,\"with\":{\"cmd\":[\"expander.sh\",\"%s\"]}},"
	    "{\"id\":\"end\",\"type\":\"echo\",\"depends_on\":[\"plan\"],"
	    "\"with\":{\"got\":\"${steps.plan.output}\"}}]}",
	    name, extra, arg);
	return (def);
}

// seq_of gives the seq of the first event of events (array) about step.
static json_int_t
seq_of(json_t *events, const char *step)
{
	size_t  k;
	json_t *ev;

	json_array_foreach (events, k, ev) {
		if (str_of(ev, "step") != NULL && strcmp(str_of(ev, "step"), step) == 0) {
			return (json_integer_value(json_object_get(ev, "seq")));
		}
	}
	cr_assert_fail("no event about %s", step);
	return (-1);
}

Test(expand_e2e, the_goal_example_runs)
{
	char  id[64], *out;
	FILE *f = fopen(WEFT_SRC_DIR "/examples/goal/goal.json", "r");
	char  def[4096];
	size_t n;

	cr_assert_not_null(f);
	n = fread(def, 1, sizeof(def) - 1, f);
	def[n] = '\0';
	fclose(f);
	snprintf(id, sizeof(id), "%s", run_def("goal", def,
	    "{\"goal\": \"Build user authentication system\"}"));
	json_t *run = weft_cluster_run_end(&c, id, 60000);
	cr_assert_str_eq(str_of(run, "status"), "succeeded");
	// Progress counts the spliced steps: 2 + 5 of 7.
	cr_expect_eq(json_integer_value(json_object_get(run, "steps_total")), 7);
	cr_expect_eq(json_integer_value(json_object_get(run, "steps_done")), 7);
	static const char *const ids[] = { "plan", "plan.design",
		"plan.backend", "plan.frontend", "plan.test", "plan.deploy",
		"summary" };
	for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
		json_t *s = weft_cluster_step(run, ids[k]);
		cr_assert_not_null(s, "step %s in weft status", ids[k]);
		cr_expect_str_eq(str_of(s, "status"), "succeeded", "%s", ids[k]);
	}
	// pass steps: an output is the step's with, nothing nested.
	json_t *sum = json_object_get(weft_cluster_step(run, "summary"),
	    "output");
	cr_expect_str_eq(str_of(sum, "deployed"),
	    "deploy user authentication system");
	cr_expect_eq(json_array_size(json_object_get(sum, "suites")), 4,
	    "unit, integration, e2e, security");
	json_t *design = json_object_get(weft_cluster_step(run, "plan.design"),
	    "output");
	cr_expect_str_eq(str_of(design, "goal"), "Build user authentication "
	    "system", "design read plan's output");
	json_decref(run);
	// step_expanded carries the sub-graph in full ids.
	// (plan.test, a map, has its own step_expanded {count}.)
	json_t *ex = weft_cluster_events(&c, id, "step_expanded");
	cr_assert_eq(json_array_size(ex), 2);
	cr_assert_str_eq(str_of(json_array_get(ex, 0), "step"), "plan");
	json_t *steps = json_object_get(json_object_get(json_array_get(ex, 0),
	    "data"), "steps");
	cr_expect_eq(json_array_size(steps), 5);
	cr_expect_str_eq(str_of(json_array_get(steps, 1), "id"), "plan.backend");
	cr_expect_str_eq(json_string_value(json_array_get(json_object_get(
	                     json_array_get(steps, 1), "depends_on"), 0)),
	    "plan.design");
	json_decref(ex);
	// summary waited for all of plan: it started after plan.deploy ended.
	json_t *ended   = weft_cluster_events(&c, id, "step_succeeded");
	json_t *started = weft_cluster_events(&c, id, "step_ready");
	cr_expect_gt(seq_of(started, "summary"), seq_of(ended, "plan.deploy"));
	cr_expect_gt(seq_of(ended, "plan"), seq_of(ended, "plan.deploy"));
	json_decref(ended);
	json_decref(started);
	// No goal: the decomposer refuses, and says why.
	cr_assert_eq(weft_cluster_cli(&c, &out, "run goal"), 0, "%s", out);
	out[strcspn(out, "\n")] = '\0';
	run = weft_cluster_run_end(&c, out, 60000);
	free(out);
	cr_expect_str_eq(str_of(run, "status"), "failed");
	json_decref(run);
}

Test(expand_e2e, nested_expansion)
{
	char id[64];

	snprintf(id, sizeof(id), "%s", run_def("nest",
	    plan_def("nest", "nested", ""), NULL));
	json_t *run = weft_cluster_run_end(&c, id, 60000);
	cr_assert_str_eq(str_of(run, "status"), "succeeded");
	json_t *x = weft_cluster_step(run, "plan.inner.x");
	cr_assert_not_null(x);
	cr_expect_str_eq(str_of(x, "status"), "succeeded");
	// plan's output: its leaves' (after), by their own ids.
	json_t *end = json_object_get(json_object_get(json_object_get(
	    weft_cluster_step(run, "end"), "output"), "with"), "got");
	cr_expect_eq(json_integer_value(json_object_get(json_object_get(
	                 json_object_get(end, "after"), "with"), "got")), 7);
	json_decref(run);
}

Test(expand_e2e, nested_deeper_than_max_depth_fails)
{
	char id[64];

	snprintf(id, sizeof(id), "%s", run_def("shallow",
	    plan_def("shallow", "nested", ",\"max_depth\":1"), NULL));
	json_t *run = weft_cluster_run_end(&c, id, 60000);
	cr_assert_str_eq(str_of(run, "status"), "failed");
	const char *err = str_of(weft_cluster_step(run, "plan"), "error");
	cr_assert(err != NULL && strstr(err, "expansion of step plan.inner: "
	    "depth 2 exceeds the definition's max_depth of 1") != NULL,
	    "error: %s", err ? err : "(none)");
	cr_expect_str_eq(str_of(weft_cluster_step(run, "end"), "status"),
	    "upstream_failed");
	json_decref(run);
}

Test(expand_e2e, bad_expansion_fails_the_step)
{
	char        id[64];
	const char *want = "expansion of step plan: steps[0] (id \"a\"): "
	                   "unknown dependency \"zz\"";

	snprintf(id, sizeof(id), "%s", run_def("bad", plan_def("bad", "bad", ""),
	    NULL));
	json_t *run = weft_cluster_run_end(&c, id, 60000);
	cr_assert_str_eq(str_of(run, "status"), "failed");
	cr_expect_str_eq(str_of(weft_cluster_step(run, "plan"), "error"), want);
	cr_expect_null(weft_cluster_step(run, "plan.a"), "nothing spliced");
	json_decref(run);
	json_t *f = weft_cluster_events(&c, id, "step_failed");
	cr_assert_eq(json_array_size(f), 1);
	cr_expect_str_eq(str_of(json_object_get(json_array_get(f, 0), "data"),
	                     "error"), want);
	json_decref(f);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_expanded"), 0);
}

Test(expand_e2e, survives_a_coordinator_kill_mid_expansion)
{
	char    id[64];
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(30000);

	snprintf(id, sizeof(id), "%s", run_def("slowx",
	    plan_def("slowx", "slow", ""), NULL));
	for (;;) {
		json_t *st = weft_cluster_cli_json(&c, "status %s", id);
		json_t *nap = weft_cluster_step(st, "plan.nap");
		bool    on = nap != NULL &&
		    strcmp(str_of(nap, "status"), "running") == 0;
		if (on) {
			// Why each waits: plan for its expansion, plan.after
			// for plan.nap (its depends_on, in full).
			json_t *plan = weft_cluster_step(st, "plan");
			json_t *after = weft_cluster_step(st, "plan.after");
			cr_expect_str_eq(str_of(json_object_get(plan,
			                     "waiting_for"), "reason"), "expansion");
			cr_expect_eq(json_integer_value(json_object_get(
			                 json_object_get(plan, "expansion"), "total")), 2);
			cr_expect_str_eq(json_string_value(json_array_get(
			                     json_object_get(after, "depends_on"), 0)),
			    "plan.nap");
			cr_expect_str_eq(str_of(json_object_get(after,
			                     "waiting_for"), "reason"), "dependencies");
		}
		json_decref(st);
		if (on) {
			break;
		}
		cr_assert_lt(weft_clock_mono_ms(), deadline, "plan.nap never ran");
		weft_clock_sleep_ms(50);
	}
	weft_h_kill(c.coord, SIGKILL);
	weft_cluster_start_coord(&c);
	json_t *run = weft_cluster_run_end(&c, id, 60000);
	char   *text = json_dumps(run, JSON_COMPACT);
	cr_assert_str_eq(str_of(run, "status"), "succeeded", "%s", text);
	free(text);
	cr_expect_str_eq(str_of(weft_cluster_step(run, "plan.after"), "status"),
	    "succeeded");
	cr_expect_str_eq(str_of(weft_cluster_step(run, "end"), "status"),
	    "succeeded");
	json_decref(run);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_expanded"), 1,
	    "not expanded again");
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_dispatched"), 4,
	    "plan, plan.nap, plan.after and end once each");
}

// A definition whose "expand" is not a bool is refused at define time.
Test(expand_e2e, bad_expand_field_is_refused)
{
	char *out;

	cr_assert_neq(weft_cluster_cli(&c, &out, "define '%s' 2>&1",
	                  weft_cluster_write(&c, "bad.json",
	                      "{\"name\":\"x\",\"steps\":[{\"id\":\"a\","
	                      "\"type\":\"exec\",\"expand\":\"yes\","
	                      "\"with\":{\"cmd\":[\"a\"]}}]}")),
	    0);
	cr_expect(strstr(out, "steps[0] (id \"a\"): field \"expand\": expected "
	                      "bool, got string") != NULL, "%s", out);
	free(out);
}

// A run retry: plan failed because a step of its expansion did; retried,
// plan's program runs again and expands anew (a second step_expanded),
// and the run succeeds.
Test(expand_e2e, retry_expands_again)
{
	char  id[64], *out;

	snprintf(id, sizeof(id), "%s", run_def("flaky",
	    plan_def("flaky", "flaky", ""), NULL));
	json_t *run = weft_cluster_run_end(&c, id, 60000);
	cr_assert_str_eq(str_of(run, "status"), "failed");
	const char *err = str_of(weft_cluster_step(run, "plan"), "error");
	const char *want = "expansion failed: step plan.x failed: ";
	cr_assert(err != NULL && strncmp(err, want, strlen(want)) == 0,
	    "error: %s", err ? err : "(none)");
	json_decref(run);
	cr_assert_eq(weft_h_run_fmt(NULL, "touch '%s/open'", c.exec_allow), 0);
	cr_assert_eq(weft_cluster_cli(&c, &out, "retry %s", id), 0, "%s", out);
	free(out);
	run = weft_cluster_run_end(&c, id, 60000);
	cr_assert_str_eq(str_of(run, "status"), "succeeded");
	cr_expect_str_eq(str_of(weft_cluster_step(run, "plan.x"), "status"),
	    "succeeded");
	json_decref(run);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_expanded"), 2,
	    "expanded again");
	cr_assert_eq(weft_h_run_fmt(NULL, "rm -f '%s/open'", c.exec_allow), 0);
}

// Pause mid-expansion: what becomes ready in it waits for the resume.
Test(expand_e2e, pause_holds_the_expansion)
{
	char    id[64], *out;
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(30000);

	snprintf(id, sizeof(id), "%s", run_def("pausex",
	    plan_def("pausex", "slow", ""), NULL));
	for (;;) {
		json_t *st  = weft_cluster_cli_json(&c, "status %s", id);
		json_t *nap = weft_cluster_step(st, "plan.nap");
		bool    on  = nap != NULL &&
		    strcmp(str_of(nap, "status"), "running") == 0;
		json_decref(st);
		if (on) {
			break;
		}
		cr_assert_lt(weft_clock_mono_ms(), deadline, "plan.nap never ran");
		weft_clock_sleep_ms(50);
	}
	cr_assert_eq(weft_cluster_cli(&c, &out, "pause %s", id), 0, "%s", out);
	free(out);
	// plan.nap ends (in flight), plan.after becomes ready and stays so.
	deadline = weft_clock_mono_ms() + weft_h_timeout_ms(30000);
	for (;;) {
		json_t *st    = weft_cluster_cli_json(&c, "status %s", id);
		json_t *after = weft_cluster_step(st, "plan.after");
		bool    ready = after != NULL &&
		    strcmp(str_of(after, "status"), "ready") == 0;
		cr_assert_str_eq(str_of(st, "status"), "paused");
		json_decref(st);
		if (ready) {
			break;
		}
		cr_assert_lt(weft_clock_mono_ms(), deadline, "plan.after never ready");
		weft_clock_sleep_ms(50);
	}
	cr_assert_eq(weft_cluster_cli(&c, &out, "resume %s", id), 0, "%s", out);
	free(out);
	json_t *run = weft_cluster_run_end(&c, id, 60000);
	cr_assert_str_eq(str_of(run, "status"), "succeeded");
	json_decref(run);
}
