// http_errors_test: every error the HTTP API answers is JSON of one shape,
// {"error": "...", "code": "E..."}, with Content-Type application/json and
// a message that names what is wrong: a wrong method (405 and Allow), a
// body over the cap (413 naming it), unknown query parameters and bad
// values (400 naming the parameter), unknown members of POST bodies and a
// run input that is not an object (400 naming the member), an unknown
// definition (404 naming it). Against a real coordinator, with curl.
#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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
	answer a;

	a.status = weft_cluster_http(&c, method, path, data, &a.body,
	    &a.headers);
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
		// /health and /metrics too (Prometheus sends no parameter).
		{ "GET", "/health?bogus=1", NULL, 400,
		    "unknown query parameter \"bogus\" (none is taken here)",
		    NULL },
		{ "GET", "/metrics?match=weft_runs", NULL, 400,
		    "unknown query parameter \"match\"", NULL },
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

	// 20 MB: over the 13 MiB cap; refused on its Content-Length, before
	// the body is read.
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
	expect_json_error("20 MB login", &a, 413,
	    "over the limit of 4096 bytes for a request that needs no token");
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

// ---- the body's length, on a raw socket ----
//
// curl cannot announce a body it does not send; these requests do: a
// Content-Length of 100 MiB with a few bytes, or none at all. An answer
// that waited for the body would never come.

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

// A raw exchange: what came back before the server closed the
// connection (or limit_ms passed), and how long it took.
typedef struct raw_answer {
	char   *text;   // malloc'd, NUL-terminated
	int     status; // of the first response
	bool    closed; // the server closed the connection
	int64_t ms;
} raw_answer;

// raw sends text (whole requests, or one with part of its body) to the
// HTTP address http on a new connection, then reads until the server
// closes it or limit_ms pass.
static raw_answer
raw(const char *http, const char *text, int limit_ms)
{
	raw_answer         r = { 0 };
	size_t             got = 0, cap = 65536;
	int64_t            start = now_ms(), deadline;
	int                fd;

	fd = weft_h_connect(http);
	cr_assert(fd >= 0, "cannot connect to %s", http);
	cr_assert_eq(send(fd, text, strlen(text), MSG_NOSIGNAL),
	    (ssize_t) strlen(text));
	r.text   = malloc(cap + 1);
	deadline = start + weft_h_timeout_ms(limit_ms);
	while (got < cap && now_ms() < deadline) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, (int) (deadline - now_ms())) <= 0) {
			continue;
		}
		ssize_t n = recv(fd, r.text + got, cap - got, 0);
		if (n <= 0) {
			r.closed = true; // EOF (or a reset after the answer)
			break;
		}
		got += (size_t) n;
	}
	r.text[got] = '\0';
	r.ms        = now_ms() - start;
	close(fd);
	if (strncmp(r.text, "HTTP/1.1 ", 9) == 0) {
		r.status = atoi(r.text + 9);
	}
	return (r);
}

// raw_expect checks a raw answer: one response only, status want, JSON of
// the documented shape saying says, Connection: close and the connection
// closed (the body was left unread), within 3 s.
static void
raw_expect(const char *what, raw_answer *r, int want, const char *says)
{
	const char *body = strstr(r->text, "\r\n\r\n");
	answer      a    = { .status = r->status };
	size_t      hlen = body != NULL ? (size_t) (body - r->text) : 0;

	cr_expect(r->ms < 3000, "%s: answered after %lld ms: %s", what,
	    (long long) r->ms, r->text);
	cr_expect(r->closed, "%s: the connection stayed open: %s", what,
	    r->text);
	cr_expect(strstr(r->text + 1, "HTTP/1.") == NULL,
	    "%s: more than one response (a body read as a request?): %s",
	    what, r->text);
	a.headers = strndup(r->text, hlen);
	a.body    = strdup(body != NULL ? body + 4 : "");
	expect_json_error(what, &a, want, says);
	cr_expect(header_has(a.headers, "Connection", "close"),
	    "%s: no Connection: close:\n%s", what, a.headers);
	answer_free(&a);
	free(r->text);
}

// A POST to path with the header lines extra (each ending in \r\n), then
// the body bytes body (which need not be all the announced body).
static char *
raw_post(const char *http, const char *path, const char *extra,
    const char *body)
{
	char *text = malloc(8192);
	int   n    = snprintf(text, 8192,
	             "POST %s HTTP/1.1\r\nHost: %s\r\n"
	             "Content-Type: application/json\r\n%s\r\n%s",
	             path, http, extra, body);

	cr_assert(n > 0 && n < 8192);
	return (text);
}

Test(http_errors, a_huge_content_length_is_413_before_the_body)
{
	static const struct {
		const char *extra, *body;
		int         status;
		const char *says;
	} rows[] = {
		// 100 MiB announced, 4 bytes sent: nng's HTML 400 before, after
		// buffering up to 64 MiB of whatever came.
		{ "Content-Length: 104857600\r\n", "{\"de", 413,
		    "request body: 104857600 bytes, over the limit of 13631488 "
		    "bytes (13 MiB)" },
		{ "Content-Length: 99999999999999999999999\r\n", "", 413,
		    "over the limit of 13631488 bytes" },
		{ "Content-Length: 13631489\r\n", "", 413,
		    "request body: 13631489 bytes, over the limit" },
		{ "Content-Length: abc\r\n", "{}", 400,
		    "Content-Length: a number of bytes, not 'abc'" },
		{ "Content-Length: -1\r\n", "{}", 400, "Content-Length:" },
		{ "Content-Length: 2, 2\r\n", "{}", 400, "Content-Length:" },
		{ "Transfer-Encoding: chunked\r\n", "2\r\n{}\r\n0\r\n\r\n", 411,
		    "send the body with a Content-Length" },
		{ "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n", "{}",
		    400, "Transfer-Encoding" },
	};

	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		char      *text = raw_post(c.http, "/api/v1/runs", rows[k].extra,
		         rows[k].body);
		raw_answer r    = raw(c.http, text, 5000);
		raw_expect(rows[k].extra, &r, rows[k].status, rows[k].says);
		free(text);
	}
	// A request that needs no token has a small cap of its own.
	char      *text = raw_post(c.http, "/api/v1/login",
	         "Content-Length: 4097\r\n", "");
	raw_answer r    = raw(c.http, text, 5000);
	raw_expect("login, 4097 bytes", &r, 413,
	    "over the limit of 4096 bytes for a request that needs no token");
	free(text);
}

// Bodies that are read leave the connection in step: two requests with
// bodies on one connection get two answers.
Test(http_errors, bodies_are_read_exactly)
{
	char      *text = malloc(8192);
	raw_answer r;

	cr_assert(snprintf(text, 8192,
	              "POST /api/v1/definitions HTTP/1.1\r\nHost: %s\r\n"
	              "Content-Type: application/json\r\n"
	              "Content-Length: %zu\r\n\r\n%s"
	              "POST /api/v1/runs HTTP/1.1\r\nHost: %s\r\n"
	              "Content-Type: application/json\r\nConnection: close\r\n"
	              "Content-Length: 19\r\n\r\n{\"definition\":\"hd\"}",
	              c.http, strlen(hd), hd, c.http) < 8192);
	r = raw(c.http, text, 5000);
	free(text);
	cr_expect_eq(r.status, 201, "%s", r.text);
	const char *second = strstr(r.text + 1, "HTTP/1.1 ");
	cr_expect(second != NULL && strncmp(second, "HTTP/1.1 201", 12) == 0,
	    "the second request not answered 201: %s", r.text);
	cr_expect(strstr(r.text, "run_id") != NULL, "%s", r.text);
	cr_expect(r.closed, "Connection: close not honoured: %s", r.text);
	free(r.text);
}

// Exactly the cap is read; one byte more is refused without being read.
Test(http_errors, a_body_of_exactly_the_cap_is_taken)
{
	static const char run[] = "{\"definition\":\"hd\"}";
	char              file[600], at[610];
	answer            a = request("POST", "/api/v1/definitions", hd);

	cr_assert_eq(a.status, 201, "%s", a.body);
	answer_free(&a);
	snprintf(file, sizeof(file), "%s/cap.json", c.dir);
	cr_assert_eq(weft_h_run_fmt(NULL,
	                 "printf '%%s' '%s' > '%s' && head -c %zu /dev/zero | "
	                 "tr '\\0' ' ' >> '%s'",
	                 run, file, (size_t) 13631488 - strlen(run), file),
	    0);
	snprintf(at, sizeof(at), "@%s", file);
	a = request("POST", "/api/v1/runs", at);
	cr_expect_eq(a.status, 201, "13 MiB exactly: %s", a.body);
	answer_free(&a);
	cr_assert_eq(weft_h_run_fmt(NULL, "printf ' ' >> '%s'", file), 0);
	a = request("POST", "/api/v1/runs", at);
	expect_json_error("13 MiB + 1", &a, 413,
	    "request body: 13631489 bytes, over the limit of 13631488 bytes");
	answer_free(&a);
}

// With tokens on, a caller without one gets its 401 before any byte of
// the body is read: it cannot make the coordinator allocate it.
Test(http_errors, no_token_is_401_before_the_body)
{
	static const weft_cluster_opts o = {
		.tokens = "ops operate op-0123456789abcdef\n",
		.token  = "op-0123456789abcdef",
		.survey_ms = 200,
	};
	weft_cluster s;
	char        *text;
	raw_answer   r;

	weft_cluster_start_opts(&s, &o);
	text = raw_post(s.http, "/api/v1/runs", "Content-Length: 104857600\r\n",
	    "");
	r = raw(s.http, text, 5000);
	raw_expect("no token, 100 MiB announced", &r, 401,
	    "an API token is needed");
	free(text);
	// Under the cap, with a body that is itself a request: still one
	// answer, and the body is not taken for a second request.
	text = raw_post(s.http, "/api/v1/runs", "Content-Length: 37\r\n",
	    "GET /health HTTP/1.1\r\nHost: x\r\n\r\n\r\n\r\n");
	r = raw(s.http, text, 5000);
	raw_expect("no token, a request as the body", &r, 401,
	    "an API token is needed");
	free(text);
	text = raw_post(s.http, "/api/v1/runs",
	    "Authorization: Bearer op-0123456789abcdef\r\n"
	    "Content-Length: 104857600\r\n",
	    "");
	r = raw(s.http, text, 5000);
	raw_expect("a token, 100 MiB announced", &r, 413,
	    "over the limit of 13631488 bytes");
	free(text);
	weft_cluster_stop(&s);
}
