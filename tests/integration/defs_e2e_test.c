// defs_e2e_test: the definition language's checks and map features with
// the real binaries on loopback: parameter rules refused at run creation
// (CLI and HTTP), definitions refused at define time, and maps over
// literal lists and params with per-item `when`, map_tolerate and `[*]`
// projections, and a failed dependency's exit_code read by its dependent.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>

#include "clock.h"
#include "cluster.h"
#include "harness.h"
#include "tjson.h"

static weft_cluster c;

static void
up(void)
{
	weft_cluster_start(&c, 1, 200);
}

static void
down(void)
{
	weft_cluster_stop(&c);
}

TestSuite(defs_e2e, .init = up, .fini = down, .timeout = 180);

// write_def writes json (' stands for ") as file name in the cluster dir
// and returns its path (static, overwritten by the next call).
static const char *
write_def(const char *name, const char *json)
{
	char       *text = weft_t_dq(json);
	const char *path = weft_cluster_write(&c, name, text);

	free(text);
	return (path);
}

// cli_fails runs the CLI (stderr into the captured output) and expects a
// non-zero exit whose output says want.
static void
cli_fails(const char *want, const char *fmt, const char *arg)
{
	char  cmd[2048];
	char *out = NULL;
	int   st;

	snprintf(cmd, sizeof(cmd), fmt, arg);
	strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	st = weft_cluster_cli(&c, &out, "%s", cmd);
	cr_expect_neq(st, 0, "[%s] succeeded: %s", cmd, out);
	cr_expect(out != NULL && strstr(out, want) != NULL,
	    "[%s] output lacks \"%s\": %s", cmd, want, out ? out : "");
	free(out);
}

// step_of returns step id of a run's status body (borrowed), or fails.
static json_t *
step_of(json_t *run, const char *id)
{
	size_t  k;
	json_t *s;

	json_array_foreach (json_object_get(run, "steps"), k, s) {
		if (strcmp(json_string_value(json_object_get(s, "id")), id) ==
		    0) {
			return (s);
		}
	}
	cr_assert_fail("run has no step %s", id);
	return (NULL);
}

static const char *rules_def =
    "{'name':'rules','params':{"
    "'env':{'type':'string','enum':['dev','prod'],'default':'dev'},"
    "'n':{'type':'int','minimum':1,'maximum':100,'default':5},"
    "'tag':{'type':'string','pattern':'^v[0-9]+$','default':'v1'}},"
    "'steps':[{'id':'a','type':'echo','with':{'env':'${params.env}',"
    "'n':'${params.n}','tag':'${params.tag}'}}]}";

// A run whose params break a rule is refused before it exists, naming
// the param and the rule; one within them runs.
Test(defs_e2e, param_rules_checked_at_run_creation)
{
	const char *path = write_def("rules.json", rules_def);
	char       *out  = NULL;

	cr_assert_eq(weft_cluster_cli(&c, NULL, "define '%s'", path), 0);
	cli_fails("params.n: must be <= 100 (maximum), got 500",
	    "run rules --params '%s' --wait", "{\"n\":500}");
	cli_fails("params.n: must be >= 1 (minimum), got 0",
	    "run rules --params '%s'", "{\"n\":0}");
	cli_fails("params.env: must be one of [\"dev\",\"prod\"] (enum), got "
	          "\"test\"",
	    "run rules --params '%s'", "{\"env\":\"test\"}");
	cli_fails("params.tag: must match pattern \"^v[0-9]+$\", got \"1.0\"",
	    "run rules --params '%s'", "{\"tag\":\"1.0\"}");
	// Nothing was created by the refusals.
	json_t *runs = weft_cluster_cli_json(&c, "runs --definition rules");
	json_t *list = json_is_array(runs) ? runs : json_object_get(runs, "runs");
	cr_assert(json_is_array(list), "runs: not a list");
	cr_expect_eq(json_array_size(list), 0, "a refused run was created");
	json_decref(runs);

	json_t *run = weft_cluster_cli_json(&c,
	    "run rules --params '{\"env\":\"prod\",\"n\":100,\"tag\":\"v12\"}' "
	    "--wait");
	cr_assert_str_eq(
	    json_string_value(json_object_get(run, "status")), "succeeded");
	json_t *with = json_object_get(
	    json_object_get(json_object_get(run, "output"), "a"), "with");
	cr_expect_eq(json_integer_value(json_object_get(with, "n")), 100);
	json_decref(run);

	// Over HTTP: 400 with the same message.
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
	    "curl -s -X POST -H 'Content-Type: application/json' "
	    "--data-binary '{\"definition\":\"rules\",\"params\":{\"n\":101}}' "
	    "-w ' %%{http_code}' 'http://%s/api/v1/runs'",
	    c.http);
	cr_assert_eq(weft_h_run(cmd, &out), 0);
	cr_expect(strstr(out, "params.n: must be <= 100 (maximum), got 101") !=
	        NULL && strstr(out, " 400") != NULL,
	    "HTTP answer: %s", out);
	free(out);
}

// Definitions the coordinator refuses at define time, naming the step
// and the field.
Test(defs_e2e, define_refuses_naming_step_and_field)
{
	cli_fails("steps[0] (id \"x\"): field \"with.cmd\": required for an exec "
	          "step",
	    "define '%s'",
	    write_def("nocmd.json",
	        "{'name':'nocmd','steps':[{'id':'x','type':'exec'}]}"));
	cli_fails("steps[1] (id \"b\"): field \"with.msg\": unclosed \"${\"",
	    "define '%s'",
	    write_def("unclosed.json",
	        "{'name':'unc','steps':[{'id':'a','type':'noop'},{'id':'b',"
	        "'type':'echo','with':{'msg':'hi ${params.who'}}]}"));
	cli_fails("params.p: field \"pattern\": \"a(\" is not a valid POSIX "
	          "extended regular expression",
	    "define '%s'",
	    write_def("badpat.json",
	        "{'name':'bp','params':{'p':{'type':'string','pattern':'a('}},"
	        "'steps':[{'id':'a','type':'noop'}]}"));
	cli_fails("steps[0] (id \"m\"): field \"when\": col 1: item only in a map "
	          "step",
	    "define '%s'",
	    write_def("itemwhen.json",
	        "{'name':'iw','steps':[{'id':'m','type':'noop','when':"
	        "'item > 1'}]}"));
	cli_fails("col 15: expected \"[*]\"", "define '%s'",
	    write_def("badstar.json",
	        "{'name':'bs','steps':[{'id':'a','type':'noop','map':[1]},"
	        "{'id':'b','type':'noop','depends_on':['a'],'when':"
	        "'steps.a.output[0] > 1'}]}"));
}

// A map over a literal list with a per-item `when`, a map over a param
// with map_tolerate, and a dependent reading both through [*].
Test(defs_e2e, map_literal_when_tolerate_and_projection)
{
	const char *path = write_def("maps.json",
	    "{'name':'maps','params':{'times':{'type':'array','default':"
	    "[0,1,0]}},'steps':["
	    "{'id':'m','type':'echo','map':[{'n':1,'score':3},{'n':5,"
	    "'score':9},{'n':7,'score':4}],'when':'item.n > 2',"
	    "'with':{'score':'${item.score}'}},"
	    "{'id':'f','type':'fail','map':'params.times','map_tolerate':1,"
	    "'with':{'times':'${item}'}},"
	    "{'id':'report','type':'echo','depends_on':['m','f'],"
	    "'when':'contains(steps.m.output[*].with.score, 9)',"
	    "'with':{'scores':'${steps.m.output[*].with.score}',"
	    "'attempts':'${steps.f.output[*].attempt}'}}]}");
	json_t     *run  = weft_cluster_cli_json(&c, "run '%s' --wait", path);
	const char *id   = json_string_value(json_object_get(run, "id"));
	char       *out  = NULL;

	cr_assert_str_eq(json_string_value(json_object_get(run, "status")),
	    "succeeded", "run %s", id);
	json_t *with = json_object_get(
	    json_object_get(json_object_get(run, "output"), "report"), "with");
	char *scores = json_dumps(json_object_get(with, "scores"), JSON_COMPACT);
	char *att    = json_dumps(json_object_get(with, "attempts"), JSON_COMPACT);
	cr_expect_str_eq(scores, "[null,9,4]", "item 0 skipped: null");
	cr_expect_str_eq(att, "[1,null,1]", "item 1 failed, tolerated: null");
	free(scores);
	free(att);
	// The skipped item has its own event; the tolerated failure is named.
	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "events --run %s --type step_skipped --json", id),
	    0);
	cr_expect(strstr(out, "m[0]") != NULL && strstr(out, "m[1]") == NULL,
	    "skipped: %s", out);
	free(out);
	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "events --run %s --type step_succeeded --step f --json",
	                 id),
	    0);
	cr_expect(strstr(out, "\"failed_items\":[1]") != NULL, "f: %s", out);
	free(out);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_failed"), 1,
	    "one item failed, nothing else");
	json_decref(run);

	// Past the tolerance the map step fails, saying so.
	run = weft_cluster_cli_json(&c,
	    "run maps --params '{\"times\":[1,1,0]}' --wait");
	cr_expect_str_eq(
	    json_string_value(json_object_get(run, "status")), "failed");
	cr_assert_eq(weft_cluster_cli(&c, &out, "events --run %s --type "
	                                        "step_failed --step f --json",
	                 json_string_value(json_object_get(run, "id"))),
	    0);
	cr_expect(strstr(out, "2 of 3 items failed (map_tolerate exceeded)") !=
	        NULL,
	    "%s", out);
	free(out);
	json_decref(run);
}

// An exec step that exits 3, and an all_done step reading its error and
// exit_code from its steps document.
Test(defs_e2e, failed_dependency_exit_code_reaches_dependent)
{
	char  script[800];
	FILE *f;

	snprintf(script, sizeof(script), "%s/exit3.sh", c.exec_allow);
	cr_assert_not_null((f = fopen(script, "w")));
	fputs("#!/bin/sh\necho 'disk full' >&2\nexit 3\n", f);
	fclose(f);
	cr_assert_eq(chmod(script, 0755), 0);
	const char *path = write_def("exit.json",
	    "{'name':'exit','steps':[{'id':'a','type':'exec','with':{'cmd':"
	    "['exit3.sh']}},{'id':'report','type':'echo','depends_on':['a'],"
	    "'trigger':'all_done','when':'steps.a.exit_code == 3',"
	    "'with':{'code':'${steps.a.exit_code}','why':'${steps.a.error}'}}]}");
	json_t *run = weft_cluster_cli_json(&c, "run '%s' --wait", path);
	json_t *rep = step_of(run, "report");

	cr_assert_str_eq(json_string_value(json_object_get(rep, "status")),
	    "succeeded", "report ran (when read exit_code 3)");
	json_t *with = json_object_get(json_object_get(rep, "output"), "with");
	cr_expect_eq(json_integer_value(json_object_get(with, "code")), 3);
	const char *why = json_string_value(json_object_get(with, "why"));
	cr_expect(why != NULL && strstr(why, "3") != NULL, "error: %s",
	    why ? why : "(none)");
	json_decref(run);
}

// The examples of the definition reference run as documented.
Test(defs_e2e, examples_run)
{
	json_t *run, *with;
	char   *s;

	run = weft_cluster_cli_json(&c, "run '%s' --params '%s' --wait",
	    WEFT_SRC_DIR "/examples/params.json", "{\"version\":\"v1.2.3\"}");
	cr_expect_str_eq(
	    json_string_value(json_object_get(run, "status")), "succeeded");
	json_decref(run);
	cli_fails("params.version: must match pattern", "run deploy-params "
	    "--params '%s'", "{\"version\":\"1.2\"}");
	cli_fails("params.version: required", "run deploy-params%s", "");

	run = weft_cluster_cli_json(
	    &c, "run '%s' --wait", WEFT_SRC_DIR "/examples/map.json");
	cr_assert_str_eq(
	    json_string_value(json_object_get(run, "status")), "succeeded");
	with = json_object_get(
	    json_object_get(json_object_get(run, "output"), "report"), "with");
	s = json_dumps(with, JSON_COMPACT | JSON_SORT_KEYS);
	cr_expect_str_eq(s,
	    "{\"files\":[\"a.csv\",null,\"c.csv\"],\"probes\":[1,null,1],"
	    "\"scores\":[3,null,9]}");
	free(s);
	json_decref(run);

	cr_assert_eq(weft_h_run_fmt(NULL, "cp '%s/examples/bin/exit-with.sh' '%s/'",
	                 WEFT_SRC_DIR, c.exec_allow),
	    0);
	run = weft_cluster_cli_json(
	    &c, "run '%s' --wait", WEFT_SRC_DIR "/examples/on-failure.json");
	cr_expect_str_eq(
	    json_string_value(json_object_get(run, "status")), "failed",
	    "backup failed for good");
	with = json_object_get(
	    json_object_get(step_of(run, "report"), "output"), "with");
	s    = json_dumps(with, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(run);
	cr_expect(s != NULL && strstr(s, "\"exit_code\":3") != NULL &&
	        strstr(s, "\"status\":\"failed\"") != NULL,
	    "report: %s", s ? s : "(none)");
	free(s);
}

// wait_status waits (deadline, scaled) until step sid of run id has
// status want.
static void
wait_status(const char *id, const char *sid, const char *want)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(30000);

	for (;;) {
		json_t     *run = weft_cluster_cli_json(&c, "status %s", id);
		const char *st  = json_string_value(
		    json_object_get(step_of(run, sid), "status"));
		bool        ok  = st != NULL && strcmp(st, want) == 0;
		json_decref(run);
		if (ok) {
			return;
		}
		cr_assert(weft_clock_mono_ms() < deadline,
		    "step %s of run %s never %s", sid, id, want);
		weft_clock_sleep_ms(50);
	}
}

// A coordinator killed after a step failed and before its dependent ran:
// recovery reads the exit code back from the step's step_failed event.
Test(defs_e2e, exit_code_survives_a_coordinator_restart)
{
	char  path[800], go[700], text[1500];
	FILE *f;
	char *out = NULL;

	snprintf(path, sizeof(path), "%s/exit4.sh", c.exec_allow);
	cr_assert_not_null((f = fopen(path, "w")));
	fputs("#!/bin/sh\necho 'quota' >&2\nexit 4\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/gate.sh", c.exec_allow);
	cr_assert_not_null((f = fopen(path, "w")));
	fputs("#!/bin/sh\ni=0\nwhile [ ! -e \"$1\" ] && [ $i -lt 600 ]; do\n"
	      "  sleep 0.1; i=$((i+1))\ndone\n[ -e \"$1\" ] || exit 1\n"
	      "echo '{}'\n",
	    f);
	fclose(f);
	cr_assert_eq(weft_h_run_fmt(NULL, "chmod 755 '%s'/*.sh", c.exec_allow),
	    0);
	snprintf(go, sizeof(go), "%s/go", c.dir);
	snprintf(text, sizeof(text),
	    "{'name':'exit-restart','steps':[{'id':'a','type':'exec','with':"
	    "{'cmd':['exit4.sh']}},{'id':'gate','type':'exec','with':{'cmd':"
	    "['gate.sh','%s']}},{'id':'report','type':'echo','depends_on':"
	    "['a','gate'],'trigger':'all_done','with':{'code':"
	    "'${steps.a.exit_code}'}}]}",
	    go);
	cr_assert_eq(weft_cluster_cli(&c, &out, "run '%s'",
	                 write_def("exit-restart.json", text)),
	    0);
	out[strcspn(out, "\n")] = '\0';
	wait_status(out, "a", "failed");
	wait_status(out, "gate", "running");
	weft_h_kill(c.coord, SIGKILL);
	weft_cluster_start_coord(&c);
	weft_cluster_write(&c, "go", "");
	json_t *run = weft_cluster_run_end(&c, out, 30000);
	json_t *rep = step_of(run, "report");
	cr_expect_str_eq(json_string_value(json_object_get(rep, "status")),
	    "succeeded", "run %s", out);
	cr_expect_eq(json_integer_value(json_object_get(
	                 json_object_get(json_object_get(rep, "output"), "with"),
	                 "code")),
	    4, "the exit code read back after the restart");
	json_decref(run);
	free(out);
}
