// http_errors_test: every error the HTTP API answers is JSON of one shape,
// {"error": "...", "code": "E..."}, with Content-Type application/json and
// a message that names what is wrong: a wrong method (405 and Allow), a
// body over the cap (413 naming it), unknown query parameters and bad
// values (400 naming the parameter), unknown members of POST bodies and a
// run input that is not an object (400 naming the member), an unknown
// definition (404 naming it). Against a real coordinator, with curl.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cluster.h"
#include "harness.h"

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

TestSuite(http_errors, .init = up, .fini = down, .timeout = 180);

// A response as curl saw it.
typedef struct answer {
	int   status;
	char *headers; // the header block, malloc'd
	char *body;    // malloc'd
} answer;

static void
answer_free(answer *a)
{
	free(a->headers);
	free(a->body);
}

// request sends method path with body data (NULL none, "@FILE" a file);
// every request but GET says Content-Type: application/json, so that the
// browser protections (415) do not answer first.
static answer
request(const char *method, const char *path, const char *data)
{
	char   cmd[4096], hdr[600], out[600], *code;
	answer a;

	snprintf(hdr, sizeof(hdr), "%s/errors.hdr", c.dir);
	snprintf(out, sizeof(out), "%s/errors.out", c.dir);
	snprintf(cmd, sizeof(cmd),
	    "curl -s -D '%s' -o '%s' -w '%%{http_code}' -X %s %s%s%s%s "
	    "'http://%s%s'",
	    hdr, out, method,
	    strcmp(method, "GET") != 0 ? "-H 'Content-Type: application/json' "
	                               : "",
	    data ? "--data-binary '" : "", data ? data : "", data ? "'" : "",
	    c.http, path);
	cr_assert_eq(weft_h_run(cmd, &code), 0, "curl failed: %s", cmd);
	a.status = atoi(code);
	free(code);
	snprintf(cmd, sizeof(cmd), "cat '%s'", hdr);
	weft_h_run(cmd, &a.headers);
	snprintf(cmd, sizeof(cmd), "cat '%s'", out);
	weft_h_run(cmd, &a.body);
	return (a);
}

// header_has says whether the header block holds "name: value..." (name
// case-insensitive, value a prefix).
static bool
header_has(const char *headers, const char *name, const char *value)
{
	size_t n = strlen(name);

	for (const char *l = headers; l != NULL && *l != '\0';) {
		if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
			const char *v = l + n + 1 + strspn(l + n + 1, " ");
			if (strncmp(v, value, strlen(value)) == 0) {
				return (true);
			}
		}
		l = strchr(l, '\n');
		l = l != NULL ? l + 1 : NULL;
	}
	return (false);
}

// expect_json_error checks a: status want, JSON of the documented shape
// whose "error" holds says.
static void
expect_json_error(const char *what, answer *a, int want, const char *says)
{
	json_error_t je;
	json_t      *v = json_loads(a->body, 0, &je);
	const char  *msg = json_string_value(json_object_get(v, "error"));
	const char  *code = json_string_value(json_object_get(v, "code"));

	cr_expect_eq(a->status, want, "%s: status %d, want %d: %s", what,
	    a->status, want, a->body);
	cr_expect(header_has(a->headers, "Content-Type", "application/json"),
	    "%s: not JSON by its Content-Type:\n%s", what, a->headers);
	cr_expect(msg != NULL && code != NULL && code[0] == 'E' &&
	        json_object_size(v) == 2,
	    "%s: not {\"error\", \"code\"}: %s", what, a->body);
	cr_expect(msg != NULL && strstr(msg, says) != NULL,
	    "%s: the error does not say \"%s\": %s", what, says, a->body);
	json_decref(v);
}

static const char *hd = "{\"name\":\"hd\",\"steps\":[{\"id\":\"a\","
                        "\"type\":\"noop\"}]}";

Test(http_errors, every_malformed_request_gets_a_json_error)
{
	static const struct {
		const char *method, *path, *data;
		int         status;
		const char *says;
		const char *allow; // the Allow header of a 405
	} rows[] = {
		// Methods: nng's own HTML 405 page before.
		{ "PUT", "/api/v1/runs", "{}", 405, "use GET, POST, DELETE",
		    "GET, POST, DELETE" },
		{ "PATCH", "/api/v1/definitions", "{}", 405, "use GET, POST",
		    "GET, POST" },
		{ "DELETE", "/api/v1/info", NULL, 405, "use GET", "GET" },
		{ "POST", "/api/v1/events", "{}", 405, "use GET", "GET" },
		{ "PUT", "/api/v1/runs/batch", "{}", 405, "use POST", "POST" },
		{ "GET", "/api/v1/login", NULL, 405, "use POST", "POST" },
		{ "PUT", "/api/v1/login", "{}", 405, "use POST", "POST" },
		{ "DELETE", "/api/v1/schedules", NULL, 405, "use GET, POST",
		    "GET, POST" },
		{ "PUT", "/index.html", "{}", 405, "use GET, HEAD", "GET, HEAD" },
		{ "POST", "/health", "{}", 405, "use GET, HEAD", "GET, HEAD" },
		// Query parameters: unknown ones and bad values.
		{ "GET", "/api/v1/runs?status=bogus", NULL, 400,
		    "status: \"bogus\" is not one of queued, scheduled, running, "
		    "paused, succeeded, failed, cancelled, timed_out", NULL },
		{ "GET", "/api/v1/runs?after=abc", NULL, 400,
		    "unknown query parameter \"after\" (known: status, "
		    "definition, before, tag, limit, since, until)", NULL },
		{ "GET", "/api/v1/runs?limit=abc", NULL, 400, "limit:", NULL },
		{ "GET", "/api/v1/runs?bogus=1", NULL, 400,
		    "unknown query parameter \"bogus\"", NULL },
		{ "GET", "/api/v1/runs?status=failed&stauts=failed", NULL, 400,
		    "\"stauts\"", NULL },
		{ "GET", "/api/v1/runs?stat=failed", NULL, 400, "\"stat\"",
		    NULL },
		{ "GET", "/api/v1/runs?statuses=failed", NULL, 400,
		    "\"statuses\"", NULL },
		{ "GET", "/api/v1/events?bogus=1", NULL, 400, "\"bogus\"", NULL },
		{ "GET", "/api/v1/events?after=abc", NULL, 400, "after:", NULL },
		{ "GET", "/api/v1/events?limit=abc", NULL, 400, "limit:", NULL },
		{ "GET", "/api/v1/events?type=step_failed,nope", NULL, 400,
		    "type: \"nope\" is not one of run_queued", NULL },
		{ "GET", "/api/v1/info?bogus=1", NULL, 400,
		    "unknown query parameter \"bogus\" (none is taken here)",
		    NULL },
		{ "GET", "/api/v1/workers?x", NULL, 400, "\"x\"", NULL },
		{ "GET", "/api/v1/meta?=1", NULL, 400, "parameter \"\"", NULL },
		{ "GET", "/api/v1/definitions?bogus=1", NULL, 400, "\"bogus\"",
		    NULL },
		{ "GET", "/api/v1/definitions/hd?bogus=1", NULL, 400, "\"bogus\"",
		    NULL },
		{ "GET", "/api/v1/schedules?bogus=1", NULL, 400, "\"bogus\"",
		    NULL },
		{ "GET", "/api/v1/whoami?bogus=1", NULL, 400, "\"bogus\"", NULL },
		{ "GET", "/api/v1/runs/01NONE?bogus=1", NULL, 400,
		    "\"bogus\" (known: steps_after, steps_limit)", NULL },
		{ "GET", "/api/v1/runs/01NONE/output?steps_limit=1", NULL, 400,
		    "\"steps_limit\"", NULL },
		{ "POST", "/api/v1/runs?definition=hd", "{}", 400,
		    "\"definition\" (none is taken here)", NULL },
		{ "POST", "/api/v1/runs/01NONE/signals/go?rejcet=1", "{}", 400,
		    "\"rejcet\" (known: reject)", NULL },
		{ "DELETE", "/api/v1/runs?before=30d&status=bogus", NULL, 400,
		    "status: \"bogus\"", NULL },
		{ "DELETE", "/api/v1/runs?before=30d&limit=5", NULL, 400,
		    "\"limit\" (known: before, status)", NULL },
		// Unknown definitions and paths.
		{ "GET", "/api/v1/definitions/nope", NULL, 404,
		    "\"nope\"", NULL },
		{ "GET", "/api/v1/nothing-here", NULL, 404, "no such endpoint",
		    NULL },
		{ "GET", "/no-such-file.js", NULL, 404, "not found", NULL },
		// POST bodies: unknown members, input and params not objects.
		{ "POST", "/api/v1/runs", "{\"definition\":\"hd\",\"inptu\":{}}",
		    400, "unknown field \"inptu\" in a run request (known: "
		    "definition, definition_json, input, params", NULL },
		{ "POST", "/api/v1/runs", "{\"definition\":\"hd\",\"input\":[1]}",
		    400, "\"input\" must be a JSON object, not a list", NULL },
		{ "POST", "/api/v1/runs", "{\"definition\":\"hd\",\"input\":\"x\"}",
		    400, "\"input\" must be a JSON object, not a string", NULL },
		{ "POST", "/api/v1/runs", "{\"definition\":\"hd\",\"params\":3}",
		    400, "\"params\" must be a JSON object", NULL },
		{ "POST", "/api/v1/runs/batch",
		    "{\"runs\":[{\"definition\":\"hd\"}],\"atomic\":true}", 400,
		    "unknown field \"atomic\" in a batch (known: runs)", NULL },
		{ "POST", "/api/v1/schedules",
		    "{\"name\":\"s\",\"definition\":\"hd\",\"cron\":\"@daily\","
		    "\"overlpa\":\"skip\"}",
		    400, "unknown field \"overlpa\" in a schedule", NULL },
		{ "POST", "/api/v1/runs/01NONE/retry", "{\"form\":\"a\"}", 400,
		    "unknown field \"form\" in a retry (known: from)", NULL },
		{ "POST", "/api/v1/runs/bulk/cancel", "{\"stauts\":\"failed\"}",
		    400, "unknown field \"stauts\"", NULL },
		{ "POST", "/api/v1/definitions",
		    "{\"name\":\"x\",\"stesp\":[]}", 400, "\"stesp\"", NULL },
	};
	answer a = request("POST", "/api/v1/definitions", hd);

	cr_assert_eq(a.status, 201, "%s", a.body);
	answer_free(&a);
	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		char what[300];
		snprintf(what, sizeof(what), "%s %s", rows[k].method,
		    rows[k].path);
		a = request(rows[k].method, rows[k].path, rows[k].data);
		expect_json_error(what, &a, rows[k].status, rows[k].says);
		if (rows[k].allow != NULL) {
			cr_expect(header_has(a.headers, "Allow", rows[k].allow),
			    "%s: no Allow: %s:\n%s", what, rows[k].allow,
			    a.headers);
		}
		answer_free(&a);
	}
}

Test(http_errors, a_batch_item_with_an_unknown_member_fails_alone)
{
	answer  a = request("POST", "/api/v1/definitions", hd);
	json_t *v, *r;

	answer_free(&a);
	a = request("POST", "/api/v1/runs/batch",
	    "{\"runs\":[{\"definition\":\"hd\"},{\"definition\":\"hd\","
	    "\"inptu\":{}},{\"definition\":\"hd\",\"input\":[]}]}");
	cr_assert_eq(a.status, 200, "%s", a.body);
	v = json_loads(a.body, 0, NULL);
	r = json_object_get(v, "results");
	cr_assert_eq(json_array_size(r), 3, "%s", a.body);
	cr_expect_not_null(json_object_get(json_array_get(r, 0), "run_id"),
	    "%s", a.body);
	cr_expect(strstr(json_string_value(json_object_get(json_array_get(r, 1),
	                     "error")) ?: "",
	              "unknown field \"inptu\"") != NULL,
	    "%s", a.body);
	cr_expect(strstr(json_string_value(json_object_get(json_array_get(r, 2),
	                     "error")) ?: "",
	              "\"input\" must be a JSON object") != NULL,
	    "%s", a.body);
	json_decref(v);
	answer_free(&a);
}

Test(http_errors, a_body_over_the_cap_is_413_naming_it)
{
	char   file[600], cmd[800], at[610];
	answer a;

	// 20 MB: over the 13 MiB cap, under what nng collects (64 MiB); nng
	// answered its own HTML 400 page here before.
	snprintf(file, sizeof(file), "%s/big.json", c.dir);
	snprintf(cmd, sizeof(cmd),
	    "head -c 20000000 /dev/zero | tr '\\0' ' ' > '%s'", file);
	cr_assert_eq(weft_h_run(cmd, NULL), 0);
	snprintf(at, sizeof(at), "@%s", file);
	a = request("POST", "/api/v1/runs", at);
	expect_json_error("20 MB run request", &a, 413,
	    "request body: 20000000 bytes, over the limit of 13631488 bytes");
	answer_free(&a);
	a = request("POST", "/api/v1/login", at);
	expect_json_error("20 MB login", &a, 413, "over the limit");
	answer_free(&a);
	// The server carries on; GET and HEAD still work.
	a = request("GET", "/api/v1/info", NULL);
	cr_expect_eq(a.status, 200, "%s", a.body);
	answer_free(&a);
	snprintf(cmd, sizeof(cmd),
	    "curl -s -I -o /dev/null -w '%%{http_code}' 'http://%s/api/v1/runs'",
	    c.http);
	char *code;
	weft_h_run(cmd, &code);
	cr_expect_str_eq(code, "200", "HEAD /api/v1/runs");
	free(code);
}
