// retain_test: retention with the real binaries: --retain deleting ended
// runs as they age while a running one stays, `weft runs delete` and
// DELETE /api/v1/runs with API tokens, and malformed --retain, "retain"
// and --before refused with a message naming them.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cluster.h"
#include "harness.h"

#define OP_TOKEN "op-0123456789abcdef"
#define RD_TOKEN "rd-0123456789abcdef"

static const char *tokens_text = "ops operate " OP_TOKEN "\n"
                                 "viewer read " RD_TOKEN "\n";

static weft_cluster c;

static const char *const DEF_QUICK =
    "{\"name\":\"quick\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\"}]}";
static const char *const DEF_FAIL =
    "{\"name\":\"boom\",\"steps\":[{\"id\":\"a\",\"type\":\"fail\","
    "\"with\":{\"times\":9}}]}";
static const char *const DEF_LONG =
    "{\"name\":\"long\",\"steps\":[{\"id\":\"a\",\"type\":\"sleep\","
    "\"with\":{\"ms\":120000}}]}";

static void
down(void)
{
	weft_cluster_stop(&c);
}

// run_ended runs def (written to file) and waits for its end; returns the
// run id (malloc'd) after checking its status.
static char *
run_ended(const char *file, const char *def, const char *want)
{
	json_t *run = weft_cluster_cli_json(&c, "run '%s' --wait",
	    weft_cluster_write(&c, file, def));
	const char *st = json_string_value(json_object_get(run, "status"));
	cr_assert(st != NULL && strcmp(st, want) == 0, "run %s: %s, want %s",
	    file, st ? st : "(none)", want);
	char *id = strdup(json_string_value(json_object_get(run, "id")));
	json_decref(run);
	return (id);
}

// run_gone says whether the coordinator no longer knows run id.
static bool
run_gone(const char *id)
{
	char *out = NULL;
	int   rv  = weft_cluster_cli(&c, &out, "status %s 2>&1", id);
	bool  gone = rv == 1 && out != NULL && strstr(out, "no such run");
	free(out);
	return (gone);
}

Test(retain, ended_run_deleted_as_it_ages_running_run_stays,
    .init = NULL, .fini = down, .timeout = 180)
{
	weft_cluster_opts o = { .nworkers = 1,
		.args = { "--retain", "2s", NULL } };
	weft_cluster_start_opts(&c, &o);

	char   *quick = run_ended("quick.json", DEF_QUICK, "succeeded");
	json_t *lr    = weft_cluster_cli_json(&c, "run '%s'",
	       weft_cluster_write(&c, "long.json", DEF_LONG));
	char   *lid   = strdup(json_string_value(json_object_get(lr, "run_id")));
	json_decref(lr);

	// --retain 2s: gone once it is 2 s past its end (the sweep looks
	// every 500 ms). The deadline is generous for a loaded machine.
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(30000);
	while (!run_gone(quick) && weft_clock_mono_ms() < deadline) {
		weft_clock_sleep_ms(200);
	}
	cr_assert(run_gone(quick), "run %s not deleted by --retain 2s", quick);
	char *out = NULL;
	cr_expect_eq(weft_cluster_cli(&c, &out, "events --run %s", quick), 0);
	cr_expect_str_eq(out, "", "its events went with it");
	free(out);
	// The audit record says what went.
	cr_assert_geq(weft_cluster_count_events(&c, NULL, "runs_deleted"), 1);
	json_t *au = weft_cluster_cli_json(&c,
	    "events --type runs_deleted --limit 1");
	json_t *d = json_object_get(au, "data");
	cr_expect_eq(json_integer_value(json_object_get(d, "count")), 1);
	cr_expect_str_eq(json_string_value(json_object_get(d, "by")), "retain");
	json_decref(au);

	// The long run, running all along, is untouched.
	json_t *st = weft_cluster_cli_json(&c, "status %s", lid);
	cr_expect_str_eq(json_string_value(json_object_get(st, "status")),
	    "running");
	json_decref(st);
	cr_expect_eq(weft_cluster_count_events(&c, lid, "run_started"), 1);
	weft_cluster_cli(&c, NULL, "cancel %s", lid);
	free(quick);
	free(lid);
}

// curl_delete sends DELETE /api/v1/runs?QUERY with token; returns the
// status and *body.
static int
curl_delete(const char *token, const char *query, char **body)
{
	char  cmd[2048];
	char *code;
	int   status;

	snprintf(cmd, sizeof(cmd),
	    "curl -s -o '%s/del.out' -w '%%{http_code}' -X DELETE -H "
	    "'Content-Type: application/json' -H 'Authorization: Bearer %s' "
	    "'http://%s/api/v1/runs?%s'",
	    c.dir, token, c.http, query);
	cr_assert_eq(weft_h_run(cmd, &code), 0, "curl failed: %s", cmd);
	status = atoi(code);
	free(code);
	snprintf(cmd, sizeof(cmd), "cat '%s/del.out'", c.dir);
	weft_h_run(cmd, body);
	return (status);
}

Test(retain, runs_delete_by_cli_and_http_with_tokens, .init = NULL,
    .fini = down, .timeout = 180)
{
	weft_cluster_opts o = { .nworkers = 1, .tokens = tokens_text,
		.token = OP_TOKEN };
	char *out = NULL, *body = NULL;

	weft_cluster_start_opts(&c, &o);
	char *ok1  = run_ended("q1.json", DEF_QUICK, "succeeded");
	char *bad1 = run_ended("f1.json", DEF_FAIL, "failed");
	char *bad2 = run_ended("f2.json", DEF_FAIL, "failed");

	// Refused: a status that is not an ending, no or a bad --before, a
	// read token.
	cr_expect_eq(weft_cluster_cli(&c, &out,
	                 "runs delete --before 0s --status running 2>&1"),
	    1);
	cr_expect(strstr(out, "\"running\" is not an ending") != NULL, "%s",
	    out);
	free(out);
	cr_expect_eq(weft_cluster_cli(&c, &out, "runs delete 2>&1"), 2);
	cr_expect(strstr(out, "--before TIME is required") != NULL, "%s", out);
	free(out);
	cr_expect_eq(weft_cluster_cli(&c, &out,
	                 "runs delete --before yesterday 2>&1"),
	    2);
	cr_expect(strstr(out, "--before") != NULL &&
	        strstr(out, "yesterday") != NULL,
	    "%s", out);
	free(out);
	cr_expect_eq(weft_cluster_cli(&c, &out, "runs frobnicate 2>&1"), 2);
	free(out);
	cr_expect_eq(weft_cluster_cli_token(&c, RD_TOKEN, &out,
	                 "runs delete --before 0s 2>&1"),
	    1);
	cr_expect(strstr(out, "operate role") != NULL, "%s", out);
	free(out);
	cr_expect_not(run_gone(ok1), "nothing deleted by refused requests");

	// The CLI: only the failed ones ended before now.
	cr_expect_eq(weft_cluster_cli(&c, &out,
	                 "runs delete --before 0s --status failed"),
	    0);
	cr_expect_str_eq(out, "deleted 2 runs\n");
	free(out);
	cr_expect(run_gone(bad1) && run_gone(bad2));
	cr_expect_not(run_gone(ok1));
	// retry of a deleted run: it is gone.
	cr_expect_eq(weft_cluster_cli(&c, &out, "retry %s 2>&1", bad1), 1);
	cr_expect(strstr(out, "no such run") != NULL, "%s", out);
	free(out);

	// HTTP: read token refused, bad or missing before refused, then
	// the operate token deletes the rest.
	cr_expect_eq(curl_delete(RD_TOKEN, "before=0s", &body), 403, "%s", body);
	free(body);
	cr_expect_eq(curl_delete(OP_TOKEN, "status=failed", &body), 400);
	cr_expect(strstr(body, "before") != NULL, "%s", body);
	free(body);
	cr_expect_eq(curl_delete(OP_TOKEN, "before=soon", &body), 400);
	cr_expect(strstr(body, "before") != NULL, "%s", body);
	free(body);
	cr_expect_eq(curl_delete(OP_TOKEN, "before=0s&status=paused", &body),
	    400, "%s", body);
	free(body);
	cr_expect_not(run_gone(ok1));
	cr_expect_eq(curl_delete(OP_TOKEN, "before=0s", &body), 200, "%s", body);
	cr_expect_str_eq(body, "{\"deleted\":1}");
	free(body);
	cr_expect(run_gone(ok1));
	cr_expect_eq(weft_cluster_count_events(&c, NULL, "runs_deleted"), 2);
	free(ok1);
	free(bad1);
	free(bad2);
}

Test(retain, malformed_retain_refused, .timeout = 120)
{
	static const char *const bad[] = { "30", "30x", "-1d", "0s", "d", "" };

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		char  args[64];
		char *out = NULL;
		snprintf(args, sizeof(args), "--retain '%s'", bad[k]);
		cr_expect_eq(weft_cluster_coordinator_refuses(args, &out), 2, "--retain %s",
		    bad[k]);
		cr_expect(out != NULL && strstr(out, "--retain wants a duration"),
		    "--retain %s: %s", bad[k], out);
		free(out);
	}
}
