// ops_test: issue 14's operations against a real coordinator and workers:
// older definition versions (weft run --version, GET
// /api/v1/definitions/{name}[/versions/{n}]), run tags and their filters,
// idempotency keys (CLI, API, batch items, a coordinator restart, the
// window), bulk actions over thousands of runs (--dry-run, --json, the
// engine answering meanwhile), and retry from a step (succeeded and
// failed runs, the API, a coordinator killed just after). Malformed input
// on each path is refused naming what is wrong.
#include <criterion/criterion.h>
#include <signal.h>
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
up(void)
{
	weft_cluster_start(&c, 2, 200);
	c.cli_limit_ms = 120000;
}

static void
down(void)
{
	weft_cluster_stop(&c);
}

TestSuite(ops, .init = up, .fini = down, .timeout = 420);

// ---- helpers ----

// http does one request with curl; returns the status and *body.
static int
http(const char *method, const char *path, const char *data, char **body)
{
	return (weft_cluster_http(&c, method, path, data, body, NULL));
}

static json_t *
http_json(const char *method, const char *path, const char *data, int want)
{
	char        *body;
	json_error_t je;
	int          st = http(method, path, data, &body);
	json_t      *v  = json_loads(body, JSON_DECODE_ANY, &je);

	cr_assert_eq(st, want, "%s %s: status %d, want %d: %s", method, path,
	    st, want, body);
	cr_assert_not_null(v, "%s %s: not JSON: %s", method, path, body);
	free(body);
	return (v);
}

// expect_http_error checks an error answer of status naming what.
static void
expect_http_error(const char *method, const char *path, const char *data,
    int status, const char *what)
{
	json_t     *v   = http_json(method, path, data, status);
	const char *msg = json_string_value(json_object_get(v, "error"));

	cr_expect(msg != NULL && strstr(msg, what) != NULL,
	    "%s %s %s: error \"%s\" lacks \"%s\"", method, path,
	    data ? data : "", msg, what);
	json_decref(v);
}

// expect_cli checks that the CLI command (a shell fragment, stderr
// joined) exits with want and says what.
static void
expect_cli(int want, const char *what, const char *args)
{
	char *out;
	int   rv = weft_cluster_cli(&c, &out, "%s 2>&1", args);

	cr_expect_eq(rv, want, "weft %s: exit %d, want %d: %s", args, rv, want,
	    out);
	cr_expect(strstr(out, what) != NULL, "weft %s: output lacks \"%s\": %s",
	    args, what, out);
	free(out);
}

static void
define(const char *name, const char *def)
{
	char *out;
	int   rv = weft_cluster_cli(&c, &out, "define '%s' 2>&1",
            weft_cluster_write(&c, name, def));

	cr_assert_eq(rv, 0, "define: %s", out);
	free(out);
}

// run_id starts a run with the CLI arguments args and returns its id
// (static storage).
static const char *
run_id(const char *args)
{
	static char id[64];
	char       *out;
	int         rv = weft_cluster_cli(&c, &out, "run %s", args);

	cr_assert_eq(rv, 0, "run %s: %s", args, out);
	out[strcspn(out, "\n")] = '\0';
	snprintf(id, sizeof(id), "%s", out);
	free(out);
	return (id);
}

static const char *
sv(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return (s != NULL ? s : "");
}

// step_attempt returns step sid's attempt in status body run.
static json_int_t
step_attempt(json_t *run, const char *sid)
{
	return (json_integer_value(
	    json_object_get(weft_cluster_step(run, sid), "attempt")));
}

// runs_tagged counts the runs `weft runs` lists with the filters args.
static size_t
runs_listed(const char *args)
{
	json_t *v = weft_cluster_cli_json(&c, "runs --limit 10000 %s", args);
	size_t  n = json_array_size(v);

	json_decref(v);
	return (n);
}

// ---- item 8: versions ----

Test(ops, run_an_older_version_and_list_versions)
{
	json_t *v, *run;
	char    path[256];

	define("v1.json",
	    "{\"name\":\"ver\",\"steps\":[{\"id\":\"a\",\"type\":\"echo\","
	    "\"with\":{\"v\":1}}]}");
	define("v2.json",
	    "{\"name\":\"ver\",\"steps\":[{\"id\":\"a\",\"type\":\"echo\","
	    "\"with\":{\"v\":2}},{\"id\":\"b\",\"type\":\"noop\"}]}");
	const char *id = run_id("ver --version 1");
	run            = weft_cluster_run_end(&c, id, 20000);
	cr_expect_str_eq(sv(run, "status"), "succeeded");
	cr_expect_eq(json_integer_value(json_object_get(run, "version")), 1);
	cr_expect_eq(json_integer_value(json_object_get(run, "steps_total")), 1);
	json_decref(run);
	id  = run_id("ver");
	run = weft_cluster_run_end(&c, id, 20000);
	cr_expect_eq(json_integer_value(json_object_get(run, "version")), 2);
	json_decref(run);

	v = http_json("GET", "/api/v1/definitions/ver", NULL, 200);
	json_t *vs = json_object_get(v, "versions");
	cr_assert_eq(json_array_size(vs), 2, "versions: %s",
	    json_dumps(v, 0));
	for (size_t i = 0; i < 2; i++) {
		json_t *e = json_array_get(vs, i);
		cr_expect_eq(json_integer_value(json_object_get(e, "version")),
		    (json_int_t) i + 1);
		cr_expect(json_integer_value(json_object_get(e, "created_ms")) > 0);
		cr_expect_eq(strncmp(sv(e, "hash"), "sha256:", 7), 0);
		cr_expect_eq(strlen(sv(e, "hash")), 7 + 64);
	}
	cr_expect_str_neq(sv(json_array_get(vs, 0), "hash"),
	    sv(json_array_get(vs, 1), "hash"));
	json_decref(v);
	v = http_json("GET", "/api/v1/definitions/ver/versions/1", NULL, 200);
	cr_expect_eq(json_integer_value(json_object_get(v, "version")), 1);
	cr_expect_eq(json_array_size(json_object_get(
	                 json_object_get(v, "definition"), "steps")),
	    1);
	json_decref(v);

	// The CLI: the versions as a table, one version's body.
	{
		char *out;
		cr_assert_eq(weft_cluster_cli(&c, &out, "definitions ver"), 0);
		const char *h1 = strstr(out, "sha256:");
		cr_expect(strstr(out, "HASH") != NULL && h1 != NULL &&
		        strstr(h1 + 1, "sha256:") != NULL,
		    "two versions, each with its hash: %s", out);
		free(out);
		cr_assert_eq(weft_cluster_cli(&c, &out,
		                 "definitions ver --version 1"),
		    0);
		cr_expect(strstr(out, "\"v\":1") != NULL, "%s", out);
		free(out);
	}
	expect_cli(1, "has no version 9", "definitions ver --version 9");
	expect_cli(1, "no definition named \"nosuch\"", "definitions nosuch");

	// Unknown versions and names, malformed numbers: named.
	expect_http_error("GET", "/api/v1/definitions/ver/versions/9", NULL, 404,
	    "has no version 9");
	expect_http_error("GET", "/api/v1/definitions/nosuch", NULL, 404,
	    "no definition named \"nosuch\"");
	expect_http_error("GET", "/api/v1/definitions/ver/versions/x", NULL, 400,
	    "version");
	expect_http_error("GET", "/api/v1/definitions/ver/versions/0", NULL, 400,
	    "version");
	expect_cli(1, "has no version 7", "run ver --version 7");
	expect_cli(2, "--version wants a version number", "run ver --version x");
	expect_http_error("POST", "/api/v1/runs",
	    "{\"definition\":\"ver\",\"version\":7}", 404, "has no version 7");
	expect_http_error("POST", "/api/v1/runs",
	    "{\"definition\":\"ver\",\"version\":\"1\"}", 400, "\"version\"");
	expect_http_error("POST", "/api/v1/runs",
	    "{\"definition_json\":{\"name\":\"vi\",\"steps\":[{\"id\":\"a\","
	    "\"type\":\"noop\"}]},\"version\":1}",
	    400, "version");
	snprintf(path, sizeof(path), "/api/v1/runs");
	v = http_json("POST", path, "{\"definition\":\"ver\",\"version\":1}", 201);
	run = weft_cluster_run_end(&c, sv(v, "run_id"), 20000);
	cr_expect_eq(json_integer_value(json_object_get(run, "version")), 1);
	json_decref(run);
	json_decref(v);
}

// ---- item 8: tags ----

Test(ops, tags_are_kept_and_filter_runs)
{
	json_t *v, *run;
	char    args[8192];
	size_t  o;

	define("t.json", "{\"name\":\"tg\",\"steps\":[{\"id\":\"a\",\"type\":"
	                 "\"noop\"}]}");
	const char *a = run_id("tg --tag env=prod --tag team=a");
	char        ida[64];
	snprintf(ida, sizeof(ida), "%s", a);
	run_id("tg --tag env=prod --tag team=b");
	run_id("tg --tag env=dev --tag team=a");
	v = http_json("POST", "/api/v1/runs",
	    "{\"definition\":\"tg\",\"tags\":{\"env\":\"prod\",\"team\":\"a\","
	    "\"note\":\"with spaces, and = signs\"}}",
	    201);
	json_decref(v);

	run = weft_cluster_run_end(&c, ida, 20000);
	cr_expect_str_eq(sv(json_object_get(run, "tags"), "env"), "prod");
	cr_expect_str_eq(sv(json_object_get(run, "tags"), "team"), "a");
	json_decref(run);

	cr_expect_eq(runs_listed("--tag env=prod"), 3);
	cr_expect_eq(runs_listed("--tag env=prod --tag team=a"), 2);
	cr_expect_eq(runs_listed("--tag team=a"), 2 + 0 + 1 - 0);
	cr_expect_eq(runs_listed("--tag env=none"), 0);
	cr_expect_eq(runs_listed("--tag 'note=with spaces, and = signs'"), 1);
	v = weft_cluster_cli_json(&c, "runs --tag env=dev");
	cr_expect_str_eq(
	    sv(json_object_get(json_array_get(v, 0), "tags"), "env"), "dev");
	json_decref(v);

	// The human forms show them too.
	{
		char *out;
		cr_assert_eq(weft_cluster_cli(&c, &out, "runs --tag env=dev"), 0);
		cr_expect(strstr(out, "TAGS") != NULL &&
		        strstr(out, "env=dev team=a") != NULL,
		    "%s", out);
		free(out);
		cr_assert_eq(weft_cluster_cli(&c, &out, "status %s", ida), 0);
		cr_expect(strstr(out, "env=prod team=a") != NULL, "%s", out);
		free(out);
	}
	v = http_json("GET", "/api/v1/runs?tag=env=prod&tag=team%3Db", NULL,
	    200);
	cr_expect_eq(json_array_size(json_object_get(v, "runs")), 1);
	json_decref(v);
	v = http_json("GET", "/api/v1/runs?tag=env%3Dprod", NULL, 200);
	cr_expect_eq(json_array_size(json_object_get(v, "runs")), 3);
	json_decref(v);

	// Malformed tags, on every path, name the problem.
	expect_cli(2, "use key=value", "run tg --tag noequals");
	expect_cli(2, "only A-Z a-z 0-9", "run tg --tag 'b@d=1'");
	expect_cli(2, "given twice", "run tg --tag a=1 --tag a=2");
	o = (size_t) snprintf(args, sizeof(args), "run tg");
	for (int i = 0; i < 33; i++) {
		o += (size_t) snprintf(args + o, sizeof(args) - o,
		    " --tag k%d=v", i);
	}
	expect_cli(2, "over the limit of 32", args);
	expect_cli(1, "use key=value", "runs --tag nope");
	expect_http_error("POST", "/api/v1/runs",
	    "{\"definition\":\"tg\",\"tags\":[\"env=prod\"]}", 400, "tags");
	expect_http_error("POST", "/api/v1/runs",
	    "{\"definition\":\"tg\",\"tags\":{\"env\":3}}", 400,
	    "tag \"env\": the value must be a string");
	expect_http_error("POST", "/api/v1/runs",
	    "{\"definition\":\"tg\",\"tags\":{\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
	    "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\":\"v\"}}",
	    400, "must be 1-64 bytes");
	expect_http_error("GET", "/api/v1/runs?tag=nope", NULL, 400,
	    "use key=value");
	expect_http_error("GET",
	    "/api/v1/runs?tag=a=1&tag=a=2&tag=a=3&tag=a=4&tag=a=5&tag=a=6&"
	    "tag=a=7&tag=a=8&tag=a=9",
	    NULL, 400, "at most 8");
	expect_cli(1, "over the limit of 8",
	    "runs --tag a=1 --tag a=2 --tag a=3 --tag a=4 --tag a=5 --tag a=6 "
	    "--tag a=7 --tag a=8 --tag a=9");
}

// ---- item 5: idempotency keys ----

static const char *
post_run(const char *body, int want, bool *existed)
{
	static char id[64];
	json_t     *v = http_json("POST", "/api/v1/runs", body, want);

	snprintf(id, sizeof(id), "%s", sv(v, "run_id"));
	*existed = json_is_true(json_object_get(v, "existed"));
	json_decref(v);
	return (id);
}

Test(ops, idempotency_keys_across_cli_api_batch_and_restart)
{
	char  first[64], again[64];
	char *out;
	bool  existed;

	define("i.json", "{\"name\":\"idem\",\"steps\":[{\"id\":\"a\",\"type\":"
	                 "\"noop\"}]}");
	// The CLI: the same id, and it says the run existed.
	snprintf(first, sizeof(first), "%s",
	    run_id("idem --idempotency-key k-cli"));
	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "run idem --idempotency-key k-cli 2>&1 >/dev/null"),
	    0);
	cr_expect(strstr(out, "already existed") != NULL, "%s", out);
	free(out);
	snprintf(again, sizeof(again), "%s",
	    run_id("idem --idempotency-key k-cli"));
	cr_expect_str_eq(again, first);

	// The API: 201 then 200, the first run, whatever the repeat asks.
	snprintf(first, sizeof(first), "%s",
	    post_run("{\"definition\":\"idem\",\"idempotency_key\":\"k-api\"}",
	        201, &existed));
	cr_expect(!existed);
	snprintf(again, sizeof(again), "%s",
	    post_run("{\"definition\":\"idem\",\"idempotency_key\":\"k-api\","
	             "\"input\":{\"other\":true}}",
	        200, &existed));
	cr_expect(existed);
	cr_expect_str_eq(again, first);

	// A batch: items with one key share one run; the key made above
	// answers its run too.
	json_t *v = http_json("POST", "/api/v1/runs/batch",
	    "{\"runs\":[{\"definition\":\"idem\",\"idempotency_key\":\"k-b\"},"
	    "{\"definition\":\"idem\",\"idempotency_key\":\"k-b\"},"
	    "{\"definition\":\"idem\",\"idempotency_key\":\"k-api\"},"
	    "{\"definition\":\"idem\"}]}",
	    200);
	json_t *r = json_object_get(v, "results");
	cr_assert_eq(json_array_size(r), 4);
	cr_expect_str_eq(sv(json_array_get(r, 0), "run_id"),
	    sv(json_array_get(r, 1), "run_id"));
	cr_expect(!json_is_true(json_object_get(json_array_get(r, 0), "existed")));
	cr_expect(json_is_true(json_object_get(json_array_get(r, 1), "existed")));
	cr_expect_str_eq(sv(json_array_get(r, 2), "run_id"), first);
	cr_expect_str_neq(sv(json_array_get(r, 3), "run_id"),
	    sv(json_array_get(r, 0), "run_id"));
	char batch_id[64];
	snprintf(batch_id, sizeof(batch_id), "%s",
	    sv(json_array_get(r, 0), "run_id"));
	json_decref(v);
	cr_expect_eq(runs_listed("--definition idem"), 4);

	// Across a restart: the key is in the store with its run.
	weft_h_kill(c.coord, SIGKILL);
	weft_cluster_start_coord(&c);
	snprintf(again, sizeof(again), "%s",
	    post_run("{\"definition\":\"idem\",\"idempotency_key\":\"k-api\"}",
	        200, &existed));
	cr_expect_str_eq(again, first);
	snprintf(again, sizeof(again), "%s",
	    post_run("{\"definition\":\"idem\",\"idempotency_key\":\"k-b\"}",
	        200, &existed));
	cr_expect_str_eq(again, batch_id);
	cr_expect_eq(runs_listed("--definition idem"), 4);

	// Malformed keys.
	expect_http_error("POST", "/api/v1/runs",
	    "{\"definition\":\"idem\",\"idempotency_key\":5}", 400,
	    "\"idempotency_key\" must be a string");
	expect_cli(2, "not with --count",
	    "run idem --count 2 --idempotency-key x");
}

// The window: a key older than --idempotency-window makes a new run (a
// suite of its own: its coordinator has a flag the others do not).
TestSuite(ops_window, .timeout = 240);

Test(ops_window, idempotency_window_expires)
{
	weft_cluster_opts o = { .nworkers = 1, .survey_ms = 200,
		.args = { "--idempotency-window", "1s", NULL } };
	bool    existed;
	char    first[64];
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(20000);

	weft_cluster_start_opts(&c, &o);
	define("i.json", "{\"name\":\"idem\",\"steps\":[{\"id\":\"a\",\"type\":"
	                 "\"noop\"}]}");
	snprintf(first, sizeof(first), "%s",
	    post_run("{\"definition\":\"idem\",\"idempotency_key\":\"w\"}", 201,
	        &existed));
	// Within the second, the same run; once it passed, a new one.
	for (;;) {
		char *body;
		int   st = http("POST", "/api/v1/runs",
                    "{\"definition\":\"idem\",\"idempotency_key\":\"w\"}",
                    &body);
		json_t *v = json_loads(body, 0, NULL);
		free(body);
		cr_assert(st == 200 || st == 201, "status %d", st);
		if (st == 201) {
			cr_expect_str_neq(sv(v, "run_id"), first);
			json_decref(v);
			break;
		}
		cr_expect_str_eq(sv(v, "run_id"), first);
		json_decref(v);
		cr_assert(weft_clock_mono_ms() < deadline,
		    "the key never expired");
		weft_clock_sleep_ms(100);
	}
	weft_cluster_stop(&c);
	{
		char *out;
		int   rv = weft_cluster_coordinator_refuses(
                    "--idempotency-window 0s", &out);
		cr_expect_eq(rv, 2, "%s", out);
		cr_expect(strstr(out, "--idempotency-window") != NULL, "%s", out);
		free(out);
	}
}

// ---- item 6: bulk actions ----

// count_lines counts the lines of text.
static size_t
count_lines(const char *text, const char *with)
{
	size_t n = 0;

	for (const char *p = text; *p != '\0';) {
		const char *nl  = strchr(p, '\n');
		size_t      len = nl ? (size_t) (nl - p) : strlen(p);
		char       *line = weft_xstrndup(p, len);
		n += len > 0 && (with == NULL || strstr(line, with) != NULL);
		free(line);
		p += len + (nl != NULL);
	}
	return (n);
}

Test(ops, bulk_cancel_thousands_with_a_report)
{
	const int nruns = 3000;
	char     *out, marker[700], report[700];
	struct stat st;

	define("idle.json", "{\"name\":\"idle\",\"steps\":[{\"id\":\"a\","
	                    "\"type\":\"nowhere\"}]}");
	cr_assert_eq(weft_cluster_cli(&c, NULL,
	                 "run idle --count %d --tag batch=b1 >/dev/null", nruns),
	    0);
	cr_assert_eq(weft_cluster_cli(&c, NULL,
	                 "run idle --count 5 --tag batch=b2 --tag lane=x "
	                 ">/dev/null"),
	    0);

	// A dry run reports every run and changes none.
	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "cancel --tag batch=b1 --dry-run --json"),
	    0);
	cr_expect_eq(count_lines(out, NULL), (size_t) nruns);
	cr_expect_eq(count_lines(out, "\"result\":\"done\""), (size_t) nruns);
	cr_expect_eq(count_lines(out, "dry run"), (size_t) nruns);
	free(out);
	cr_expect_eq(runs_listed("--tag batch=b1 --status cancelled"), 0);

	// The real one, in the background; the engine answers a status
	// request meanwhile, promptly (a sanity bound, not a speed claim).
	snprintf(marker, sizeof(marker), "%s/bulk.done", c.dir);
	snprintf(report, sizeof(report), "%s/bulk.jsonl", c.dir);
	cr_assert_eq(weft_h_run_fmt(NULL,
	                 "( WEFT_TIMEOUT_MS=%lld '%s' --coordinator %s cancel "
	                 "--tag batch=b1 --json > '%s' 2>&1; touch '%s' ) "
	                 "</dev/null >/dev/null 2>&1 &",
	                 (long long) weft_h_timeout_ms(30000),
	                 weft_h_bin("weft"), c.control, report, marker),
	    0);
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(120000);
	int64_t worst = 0;
	int     asked = 0;
	json_t *some  = weft_cluster_cli_json(&c, "runs --tag batch=b2");
	char    probe[64];
	snprintf(probe, sizeof(probe), "%s", sv(json_array_get(some, 0), "id"));
	json_decref(some);
	while (stat(marker, &st) != 0) {
		int64_t t0 = weft_clock_mono_ms();
		cr_assert_eq(weft_cluster_cli(&c, NULL, "status %s >/dev/null",
		                 probe),
		    0);
		int64_t took = weft_clock_mono_ms() - t0;
		worst        = took > worst ? took : worst;
		asked++;
		cr_assert(weft_clock_mono_ms() < deadline, "bulk cancel never "
		                                          "ended");
	}
	cr_log_info("bulk cancel of %d runs: %d status calls meanwhile, the "
	            "slowest %lld ms",
	    nruns, asked, (long long) worst);
	cr_expect(worst < weft_h_timeout_ms(5000),
	    "a status request took %lld ms during the bulk cancel",
	    (long long) worst);
	cr_assert_eq(weft_h_run_fmt(&out, "cat '%s'", report), 0);
	cr_expect_eq(count_lines(out, "\"result\":\"done\""), (size_t) nruns,
	    "report: %.400s", out);
	cr_expect_eq(count_lines(out, "\"run\":"), (size_t) nruns);
	free(out);
	cr_expect_eq(runs_listed("--tag batch=b1 --status cancelled"),
	    (size_t) nruns);
	cr_expect_eq(runs_listed("--tag batch=b2 --status running"), 5);

	// Again: every run is skipped (cancelled already), said why;
	// the human form is a summary.
	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "cancel --tag batch=b1 --since 1h"),
	    0);
	cr_expect(strstr(out, "3000 runs matched: 0 done, 3000 skipped, 0 "
	                      "errors") != NULL,
	    "%s", out);
	free(out);
	cr_assert_eq(weft_cluster_cli(&c, &out,
	                 "cancel --tag batch=b1 --status cancelled --json "
	                 "| head -1"),
	    0);
	cr_expect(strstr(out, "\"result\":\"skipped\"") != NULL &&
	        strstr(out, "it is cancelled") != NULL,
	    "%s", out);
	free(out);

	// The API: the same filters in the body, a report and a summary.
	json_t *v = http_json("POST", "/api/v1/runs/bulk/pause",
	    "{\"tag\":\"batch=b2\",\"definition\":\"idle\",\"dry_run\":true}",
	    200);
	cr_expect_eq(json_integer_value(json_object_get(
	                 json_object_get(v, "summary"), "done")),
	    5);
	cr_expect_eq(json_array_size(json_object_get(v, "results")), 5);
	json_decref(v);
	v = http_json("POST", "/api/v1/runs/bulk/pause",
	    "{\"tag\":[\"batch=b2\",\"lane=y\"],\"dry_run\":true}", 200);
	cr_expect_eq(json_integer_value(json_object_get(
	                 json_object_get(v, "summary"), "matched")),
	    0, "both tags must match");
	json_decref(v);
	v = http_json("POST", "/api/v1/runs/bulk/pause",
	    "{\"tag\":[\"batch=b2\",\"lane=x\"],\"status\":\"running\"}",
	    200);
	cr_expect_eq(json_integer_value(json_object_get(
	                 json_object_get(v, "summary"), "done")),
	    5);
	json_decref(v);
	cr_expect_eq(runs_listed("--tag batch=b2 --status paused"), 5);

	// Bad filters name the field.
	// The CLI checks --status itself (exit 2, nothing sent); the
	// engine's own check is still reached by HTTP.
	expect_cli(2, "--status: \"bogus\" is not one of queued",
	    "cancel --status bogus");
	expect_http_error("POST", "/api/v1/runs/bulk/cancel",
	    "{\"status\":\"bogus\"}", 400, "status \"bogus\"");
	expect_cli(2, "needs a run, or filters", "cancel");
	expect_cli(2, "not both", "cancel R1 --status running");
	expect_cli(2, "--since wants", "cancel --since yesterday");
	expect_cli(1, "use key=value", "cancel --tag nope");
	expect_http_error("POST", "/api/v1/runs/bulk/cancel",
	    "{\"stauts\":\"running\"}", 400, "unknown field \"stauts\"");
	expect_http_error("POST", "/api/v1/runs/bulk/cancel", "{}", 400,
	    "no filter");
	expect_http_error("POST", "/api/v1/runs/bulk/cancel",
	    "{\"status\":\"nope\"}", 400, "status \"nope\"");
	expect_http_error("POST", "/api/v1/runs/bulk/explode",
	    "{\"status\":\"running\"}", 400, "action \"explode\"");
	expect_http_error("POST", "/api/v1/runs/bulk/cancel",
	    "{\"tag\":5}", 400, "tag:");
	expect_http_error("POST", "/api/v1/runs/bulk/cancel",
	    "{\"since\":\"later\"}", 400, "since");
	expect_http_error("POST", "/api/v1/runs/bulk/cancel",
	    "{\"status\":\"running\",\"dry_run\":\"yes\"}", 400, "dry_run");
}

// ---- item 7: retry from a step ----

static const char *chain =
    "{\"name\":\"chain\",\"steps\":[{\"id\":\"a\",\"type\":\"echo\","
    "\"with\":{\"x\":1}},{\"id\":\"b\",\"type\":\"echo\",\"depends_on\":"
    "[\"a\"],\"with\":{\"from_a\":\"${steps.a.output.with.x}\"}},{\"id\":\"c\","
    "\"type\":\"noop\",\"depends_on\":[\"b\"]},{\"id\":\"d\",\"type\":"
    "\"noop\"}]}";

Test(ops, retry_from_a_step_of_a_succeeded_run)
{
	json_t *run;
	char    id[64], path[256];

	define("chain.json", chain);
	snprintf(id, sizeof(id), "%s", run_id("chain"));
	run = weft_cluster_run_end(&c, id, 20000);
	cr_assert_str_eq(sv(run, "status"), "succeeded");
	json_decref(run);

	cr_assert_eq(weft_cluster_cli(&c, NULL, "retry %s --from b >/dev/null",
	                 id),
	    0);
	run = weft_cluster_run_end(&c, id, 20000);
	cr_expect_str_eq(sv(run, "status"), "succeeded");
	cr_expect_eq(step_attempt(run, "a"), 1, "a kept its attempt");
	cr_expect_eq(step_attempt(run, "d"), 1, "d kept its attempt");
	cr_expect_eq(step_attempt(run, "b"), 2, "b ran again");
	cr_expect_eq(step_attempt(run, "c"), 2, "c, downstream, ran again");
	json_decref(run);
	json_t *ev = weft_cluster_events(&c, id, "run_retried");
	cr_assert_eq(json_array_size(ev), 1);
	json_t *data = json_object_get(json_array_get(ev, 0), "data");
	cr_expect_str_eq(sv(data, "from"), "b");
	cr_expect_eq(json_array_size(json_object_get(data, "steps")), 2);
	json_decref(ev);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_succeeded"), 6);

	// The API, from the last step; malformed and unknown steps.
	snprintf(path, sizeof(path), "/api/v1/runs/%s/retry", id);
	json_t *v = http_json("POST", path, "{\"from\":\"c\"}", 200);
	json_decref(v);
	run = weft_cluster_run_end(&c, id, 20000);
	cr_expect_str_eq(sv(run, "status"), "succeeded");
	cr_expect_eq(step_attempt(run, "b"), 2);
	cr_expect_eq(step_attempt(run, "c"), 3);
	json_decref(run);
	expect_http_error("POST", path, "{\"from\":5}", 400, "from:");
	expect_http_error("POST", path, "{\"from\":\"zz\"}", 404,
	    "has no step \"zz\"");
	{
		char args[128];
		snprintf(args, sizeof(args), "retry %s --from zz", id);
		expect_cli(1, "has no step \"zz\"", args);
		snprintf(args, sizeof(args), "cancel %s --from b", id);
		expect_cli(2, "does not take --from", args);
	}
	// A plain retry of a succeeded run is still refused.
	expect_http_error("POST", path, NULL, 409, "it is succeeded");
}

Test(ops, retry_from_a_failed_run_survives_a_restart)
{
	json_t *run;
	char    id[64];

	// b takes a while (the restart comes while it runs); c fails its
	// first attempt, so the run fails.
	define("f.json",
	    "{\"name\":\"flaky\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\"},"
	    "{\"id\":\"b\",\"type\":\"sleep\",\"depends_on\":[\"a\"],\"with\":"
	    "{\"ms\":1500}},{\"id\":\"c\",\"type\":\"fail\",\"depends_on\":"
	    "[\"b\"]},{\"id\":\"d\",\"type\":\"noop\",\"depends_on\":[\"c\"]}]}");
	snprintf(id, sizeof(id), "%s", run_id("flaky"));
	run = weft_cluster_run_end(&c, id, 30000);
	cr_assert_str_eq(sv(run, "status"), "failed");
	cr_expect_str_eq(sv(weft_cluster_step(run, "d"), "status"),
	    "upstream_failed");
	json_decref(run);
	size_t failed_before = weft_cluster_count_events(&c, id, "step_failed");
	cr_assert(failed_before > 0);

	// Retry from b; the coordinator dies at once and comes back.
	cr_assert_eq(weft_cluster_cli(&c, NULL, "retry %s --from b >/dev/null",
	                 id),
	    0);
	weft_h_kill(c.coord, SIGKILL);
	weft_cluster_start_coord(&c);
	run = weft_cluster_run_end(&c, id, 30000);
	// "fail" fails its first attempt only: c's new attempt (2)
	// succeeds, and d, upstream_failed before, runs.
	cr_expect_str_eq(sv(run, "status"), "succeeded", "run %s", id);
	cr_expect_eq(step_attempt(run, "a"), 1, "a kept its attempt");
	cr_expect(step_attempt(run, "b") >= 2, "b ran again");
	cr_expect_eq(step_attempt(run, "c"), 2, "c ran again, attempt 2");
	cr_expect_str_eq(sv(weft_cluster_step(run, "d"), "status"),
	    "succeeded");
	json_decref(run);
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_failed"),
	    failed_before, "no failure since the retry");
	cr_expect_eq(weft_cluster_count_events(&c, id, "run_retried"), 1);
}

// A map step and a workflow step downstream of the retried step: the map
// fans out again over its list, the workflow step starts a new child run
// (the old one stays as it ended).
Test(ops, retry_from_reruns_a_map_and_a_child_run_downstream)
{
	json_t *run, *ev;
	char    id[64];

	define("child.json", "{\"name\":\"kid\",\"steps\":[{\"id\":\"k\","
	                     "\"type\":\"noop\"}]}");
	define("mw.json",
	    "{\"name\":\"mw\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\"},"
	    "{\"id\":\"m\",\"type\":\"echo\",\"depends_on\":[\"a\"],\"map\":"
	    "[1,2,3],\"with\":{\"i\":\"${item}\"}},{\"id\":\"w\",\"type\":"
	    "\"workflow\",\"depends_on\":[\"m\"],\"with\":{\"name\":\"kid\"}},"
	    "{\"id\":\"z\",\"type\":\"noop\",\"depends_on\":[\"w\"]}]}");
	snprintf(id, sizeof(id), "%s", run_id("mw"));
	run = weft_cluster_run_end(&c, id, 30000);
	cr_assert_str_eq(sv(run, "status"), "succeeded");
	const char *child1 = sv(weft_cluster_step(run, "w"), "child_run");
	char        first_child[64];
	snprintf(first_child, sizeof(first_child), "%s", child1);
	cr_assert(first_child[0] != '\0');
	json_decref(run);

	cr_assert_eq(weft_cluster_cli(&c, NULL, "retry %s --from m >/dev/null",
	                 id),
	    0);
	run = weft_cluster_run_end(&c, id, 30000);
	cr_expect_str_eq(sv(run, "status"), "succeeded", "run %s", id);
	cr_expect_eq(step_attempt(run, "a"), 1);
	cr_expect_eq(step_attempt(run, "z"), 2);
	cr_expect_str_neq(sv(weft_cluster_step(run, "w"), "child_run"),
	    first_child, "a new child run");
	cr_expect_eq(json_array_size(json_object_get(weft_cluster_step(run, "m"),
	                 "output")),
	    3, "the map's output again");
	json_decref(run);
	// The map expanded twice, each item ran twice; two children.
	cr_expect_eq(weft_cluster_count_events(&c, id, "step_expanded"), 2);
	ev = weft_cluster_events(&c, id, "child_started");
	cr_expect_eq(json_array_size(ev), 2);
	json_decref(ev);
	run = weft_cluster_run_end(&c, first_child, 5000);
	cr_expect_str_eq(sv(run, "status"), "succeeded", "the old child stays");
	json_decref(run);
}

// A whole-run retry, the coordinator killed right after it: the steps it
// reset (the failed one and its upstream_failed dependents) are pending in
// the store too, so recovery runs them instead of ending the run again.
Test(ops, whole_retry_survives_a_restart)
{
	json_t *run;
	char    id[64];

	define("f2.json",
	    "{\"name\":\"flaky2\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\"},"
	    "{\"id\":\"b\",\"type\":\"sleep\",\"depends_on\":[\"a\"],\"with\":"
	    "{\"ms\":100}},{\"id\":\"c\",\"type\":\"fail\",\"depends_on\":"
	    "[\"a\"]},{\"id\":\"d\",\"type\":\"noop\",\"depends_on\":[\"b\","
	    "\"c\"]}]}");
	snprintf(id, sizeof(id), "%s", run_id("flaky2"));
	run = weft_cluster_run_end(&c, id, 30000);
	cr_assert_str_eq(sv(run, "status"), "failed");
	cr_expect_str_eq(sv(weft_cluster_step(run, "d"), "status"),
	    "upstream_failed");
	json_decref(run);
	// No worker, so c cannot run before the coordinator dies: recovery
	// must find c and d pending, whatever the timing.
	for (int i = 0; i < c.nworkers; i++) {
		weft_h_kill(c.workers[i], SIGKILL);
	}
	cr_assert_eq(weft_cluster_cli(&c, NULL, "retry %s >/dev/null", id), 0);
	weft_h_kill(c.coord, SIGKILL);
	weft_cluster_start_coord(&c);
	for (int i = 0; i < c.nworkers; i++) {
		weft_cluster_start_worker(&c, i);
	}
	weft_cluster_wait_workers(&c, c.nworkers);
	run = weft_cluster_run_end(&c, id, 30000);
	cr_expect_str_eq(sv(run, "status"), "succeeded", "run %s", id);
	cr_expect_eq(step_attempt(run, "b"), 1, "b kept its success");
	// 2, or 3 when the first went to a killed worker and was lost.
	cr_expect(step_attempt(run, "c") >= 2, "c ran again");
	cr_expect_str_eq(sv(weft_cluster_step(run, "d"), "status"), "succeeded");
	json_decref(run);
}
