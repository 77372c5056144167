// auth_test: API tokens against a real coordinator started with
// --api-tokens: the HTTP API (401, 403, operate), the dashboard's login
// session, the control socket through the CLI, the WebSocket stream's
// checks before a pipe is admitted, and the loopback rule (off loopback
// without tokens the coordinator refuses to start, --insecure starts and
// says so). Every request is a real one, by curl, the CLI or a socket.
#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>

#include "clock.h"
#include "cluster.h"
#include "harness.h"
#include "wire.h"

#define OP_TOKEN "op-0123456789abcdef"
#define RD_TOKEN "rd-0123456789abcdef"

static const char *tokens_text =
    "# test tokens\n"
    "\n"
    "ops operate " OP_TOKEN "\n"
    "  viewer read " RD_TOKEN "   \n";

static weft_cluster c;

static void
up(void)
{
	weft_cluster_opts o = { .nworkers = 1, .tokens = tokens_text,
		.token = OP_TOKEN };
	weft_cluster_start_opts(&c, &o);
}

static void
down(void)
{
	weft_cluster_stop(&c);
}

TestSuite(auth, .init = up, .fini = down, .timeout = 180);

// curl runs curl with args against path on the cluster's HTTP address;
// returns the status, *body the body and, when hdr is not NULL, *hdr the
// response headers.
static int
curl(const char *args, const char *path, char **body, char **hdr)
{
	char  cmd[4096], out[600], hout[600];
	char *code;
	int   status;

	snprintf(out, sizeof(out), "%s/auth.out", c.dir);
	snprintf(hout, sizeof(hout), "%s/auth.hdr", c.dir);
	snprintf(cmd, sizeof(cmd),
	    "curl -s -D '%s' -o '%s' -w '%%{http_code}' %s 'http://%s%s'", hout,
	    out, args, c.http, path);
	cr_assert_eq(weft_h_run(cmd, &code), 0, "curl failed: %s", cmd);
	status = atoi(code);
	free(code);
	snprintf(cmd, sizeof(cmd), "cat '%s'", out);
	weft_h_run(cmd, body);
	if (hdr != NULL) {
		snprintf(cmd, sizeof(cmd), "cat '%s'", hout);
		weft_h_run(cmd, hdr);
	}
	return (status);
}

// expect_json_error checks that body is a JSON object with an error.
static void
expect_json_error(const char *what, const char *body)
{
	json_t *v = json_loads(body, 0, NULL);
	cr_expect(v != NULL && json_is_string(json_object_get(v, "error")),
	    "%s: not a JSON error: %s", what, body);
	json_decref(v);
}

#define BEARER(t) "-H 'Authorization: Bearer " t "' "
#define POST_JSON "-X POST -H 'Content-Type: application/json' "

Test(auth, http_needs_a_token)
{
	static const struct {
		const char *what, *args, *path;
		int         status;
	} rows[] = {
		{ "no token", "", "/api/v1/runs", 401 },
		{ "unknown token", BEARER("xx-0123456789abcdef"), "/api/v1/runs",
		    401 },
		{ "a token that is the start of one",
		    BEARER("op-0123456789abcde"), "/api/v1/runs", 401 },
		{ "not a Bearer", "-H 'Authorization: Basic b3A6b3A='",
		    "/api/v1/runs", 401 },
		{ "read token, GET", BEARER(RD_TOKEN), "/api/v1/runs", 200 },
		{ "operate token, GET", BEARER(OP_TOKEN), "/api/v1/workers", 200 },
		{ "read token, POST run",
		    BEARER(RD_TOKEN) POST_JSON "--data-binary '{\"definition\":"
		                               "\"x\"}'",
		    "/api/v1/runs", 403 },
		{ "read token, define",
		    BEARER(RD_TOKEN) POST_JSON "--data-binary '{}'",
		    "/api/v1/definitions", 403 },
		{ "read token, cancel", BEARER(RD_TOKEN) POST_JSON,
		    "/api/v1/runs/01NONE/cancel", 403 },
		{ "no token, POST", POST_JSON "--data-binary '{}'",
		    "/api/v1/runs", 401 },
		{ "health without a token", "", "/health", 200 },
		{ "metrics without a token", "", "/metrics", 401 },
		{ "metrics with a read token", BEARER(RD_TOKEN), "/metrics", 200 },
		{ "the dashboard's files without a token", "", "/", 200 },
	};

	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		char *body, *hdr;
		int   st = curl(rows[k].args, rows[k].path, &body, &hdr);
		cr_expect_eq(st, rows[k].status, "%s: status %d, want %d: %s",
		    rows[k].what, st, rows[k].status, body);
		if (rows[k].status == 401 || rows[k].status == 403) {
			expect_json_error(rows[k].what, body);
		}
		if (rows[k].status == 401) {
			cr_expect(strstr(hdr, "WWW-Authenticate: Bearer") != NULL,
			    "%s: no WWW-Authenticate: %s", rows[k].what, hdr);
		}
		free(body);
		free(hdr);
	}

	char   *body;
	json_t *v;
	cr_assert_eq(curl("", "/health", &body, NULL), 200);
	v = json_loads(body, 0, NULL);
	cr_expect(json_is_true(json_object_get(v, "auth")), "%s", body);
	cr_expect(json_is_false(json_object_get(v, "insecure")), "%s", body);
	json_decref(v);
	free(body);
}

Test(auth, operate_token_creates_a_run)
{
	char   *body;
	json_t *v;
	char    path[128];
	int     st;

	st = curl(BEARER(OP_TOKEN) POST_JSON
	    "--data-binary '{\"definition_json\":{\"name\":\"tk\",\"steps\":"
	    "[{\"id\":\"a\",\"type\":\"echo\"}]}}'",
	    "/api/v1/runs", &body, NULL);
	cr_assert_eq(st, 201, "operate POST run: %d %s", st, body);
	v = json_loads(body, 0, NULL);
	free(body);
	snprintf(path, sizeof(path), "/api/v1/runs/%s",
	    json_string_value(json_object_get(v, "run_id")));
	json_decref(v);
	json_decref(weft_cluster_run_end(&c, path + 13, 20000));
	cr_assert_eq(curl(BEARER(RD_TOKEN), path, &body, NULL), 200);
	cr_expect(strstr(body, "\"succeeded\"") != NULL, "%s", body);
	free(body);
}

// cookie_of returns the value of the weft_session cookie set in hdr
// (malloc'd), or NULL.
static char *
cookie_of(const char *hdr)
{
	const char *p = strstr(hdr, "Set-Cookie: weft_session=");
	if (p == NULL) {
		return (NULL);
	}
	p += strlen("Set-Cookie: weft_session=");
	return (strndup(p, strcspn(p, ";\r\n")));
}

Test(auth, login_session_logout)
{
	char *body, *hdr, *sid, args[600];
	int   st;

	st = curl(POST_JSON "--data-binary '{\"token\":\"nope-0123456789abcdef\"}'",
	    "/api/v1/login", &body, &hdr);
	cr_expect_eq(st, 401, "wrong token: %d %s", st, body);
	cr_expect_null(strstr(hdr, "Set-Cookie"), "%s", hdr);
	free(body);
	free(hdr);

	// Login is a POST like the others: from another site's page, no.
	st = curl(POST_JSON "-H 'Origin: http://evil.example' --data-binary "
	                    "'{\"token\":\"" RD_TOKEN "\"}'",
	    "/api/v1/login", &body, NULL);
	cr_expect_eq(st, 403, "foreign Origin login: %d %s", st, body);
	free(body);

	st = curl(POST_JSON "--data-binary '{\"token\":\"" RD_TOKEN "\"}'",
	    "/api/v1/login", &body, &hdr);
	cr_assert_eq(st, 200, "login: %d %s", st, body);
	cr_expect(strstr(hdr, "HttpOnly") != NULL, "%s", hdr);
	cr_expect(strstr(hdr, "SameSite=Strict") != NULL, "%s", hdr);
	cr_expect(strstr(hdr, "Path=/") != NULL, "%s", hdr);
	cr_expect(strstr(body, "\"viewer\"") != NULL, "%s", body);
	sid = cookie_of(hdr);
	cr_assert(sid != NULL && strlen(sid) == 64, "%s", hdr);
	free(body);
	free(hdr);

	snprintf(args, sizeof(args), "-H 'Cookie: weft_session=%s'", sid);
	st = curl(args, "/api/v1/runs", &body, NULL);
	cr_expect_eq(st, 200, "session GET: %d %s", st, body);
	free(body);
	st = curl(args, "/api/v1/whoami", &body, NULL);
	cr_expect_eq(st, 200);
	json_t *v = json_loads(body, 0, NULL);
	cr_expect(json_is_true(json_object_get(v, "auth")), "%s", body);
	cr_expect_str_eq(json_string_value(json_object_get(v, "name")),
	    "viewer");
	cr_expect_str_eq(json_string_value(json_object_get(v, "role")), "read");
	json_decref(v);
	free(body);
	// A read session may not change anything.
	snprintf(args, sizeof(args),
	    POST_JSON "-H 'Cookie: weft_session=%s' --data-binary '{}'", sid);
	st = curl(args, "/api/v1/runs/01NONE/cancel", &body, NULL);
	cr_expect_eq(st, 403, "read session POST: %d %s", st, body);
	free(body);

	snprintf(args, sizeof(args), POST_JSON "-H 'Cookie: weft_session=%s'",
	    sid);
	st = curl(args, "/api/v1/logout", &body, &hdr);
	cr_expect_eq(st, 200, "logout: %d %s", st, body);
	cr_expect(strstr(hdr, "Max-Age=0") != NULL, "%s", hdr);
	free(body);
	free(hdr);
	snprintf(args, sizeof(args), "-H 'Cookie: weft_session=%s'", sid);
	st = curl(args, "/api/v1/runs", &body, NULL);
	cr_expect_eq(st, 401, "after logout: %d %s", st, body);
	free(body);
	// A made-up session is nobody.
	st = curl("-H 'Cookie: weft_session=00000000000000000000000000000000"
	          "00000000000000000000000000000000'",
	    "/api/v1/whoami", &body, NULL);
	cr_expect(strstr(body, "\"name\":null") != NULL, "%s", body);
	free(body);
	free(sid);
}

Test(auth, control_socket_through_the_cli)
{
	const char *def = weft_cluster_write(&c, "cli.json",
	    "{\"name\":\"clitk\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\"}]}");
	char *out;
	int   rv;

	rv = weft_cluster_cli_token(&c, NULL, &out, "runs 2>&1");
	cr_expect_eq(rv, 1, "no token: exit %d: %s", rv, out);
	cr_expect(strstr(out, "--token") != NULL && strstr(out, "WEFT_TOKEN"),
	    "no token: the error does not say what to do: %s", out);
	free(out);

	rv = weft_cluster_cli_token(&c, NULL, &out,
	    "--token xx-0123456789abcdef runs 2>&1");
	cr_expect_eq(rv, 1, "unknown token: exit %d: %s", rv, out);
	cr_expect(strstr(out, "unknown API token") != NULL, "%s", out);
	free(out);

	rv = weft_cluster_cli_token(&c, NULL, &out,
	    "--token " RD_TOKEN " runs 2>&1");
	cr_expect_eq(rv, 0, "read token, runs: exit %d: %s", rv, out);
	free(out);

	rv = weft_cluster_cli_token(&c, RD_TOKEN, &out, "run '%s' 2>&1", def);
	cr_expect_eq(rv, 1, "read token, run: exit %d: %s", rv, out);
	cr_expect(strstr(out, "operate") != NULL, "%s", out);
	free(out);

	rv = weft_cluster_cli_token(&c, OP_TOKEN, &out,
	    "run '%s' --wait --timeout 20s 2>&1", def);
	cr_expect_eq(rv, 0, "operate token (WEFT_TOKEN), run --wait: exit "
	                    "%d: %s", rv, out);
	free(out);
}

// ---- the WebSocket stream ----

// ws_upgrade sends a WebSocket upgrade for the stream with extra header
// lines (each ending in \r\n) and returns the connected socket once the
// answer's headers are in; *status gets the HTTP status.
static int
ws_upgrade(const char *extra, int *status)
{
	char    req[2048], resp[4096];
	size_t  got = 0;
	int     fd;
	int64_t deadline;

	fd = weft_h_connect(c.http);
	cr_assert(fd >= 0, "cannot connect to %s", c.http);
	snprintf(req, sizeof(req),
	    "GET /api/v1/stream HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\n"
	    "Sec-WebSocket-Protocol: pub.sp.nanomsg.org\r\n%s\r\n",
	    c.http, extra);
	cr_assert_eq(write(fd, req, strlen(req)), (ssize_t) strlen(req));
	deadline = weft_clock_mono_ms() + weft_h_timeout_ms(5000);
	*status  = 0;
	while (got + 1 < sizeof(resp)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t       n;
		int64_t       left = deadline - weft_clock_mono_ms();
		cr_assert(left > 0, "no answer to the upgrade");
		if (poll(&p, 1, (int) left) <= 0) {
			continue;
		}
		if ((n = read(fd, resp + got, sizeof(resp) - 1 - got)) <= 0) {
			break;
		}
		got += (size_t) n;
		resp[got] = '\0';
		if (strstr(resp, "\r\n\r\n") != NULL) {
			break;
		}
	}
	resp[got] = '\0';
	sscanf(resp, "HTTP/1.1 %d", status);
	return (fd);
}

// ws_closed reports whether the server closes fd within ms.
static bool
ws_closed(int fd, int ms)
{
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(ms);
	char    buf[512];

	for (;;) {
		struct pollfd p    = { .fd = fd, .events = POLLIN };
		int64_t       left = deadline - weft_clock_mono_ms();
		if (left <= 0) {
			return (false);
		}
		if (poll(&p, 1, (int) left) > 0) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0) {
				return (true);
			}
			// A close frame (opcode 8) is a refusal too.
			if ((buf[0] & 0x0f) == 8) {
				return (true);
			}
		}
	}
}

Test(auth, websocket_stream_checks_before_admitting)
{
	static const struct {
		const char *what, *extra;
		bool        closed;
	} rows[] = {
		{ "foreign Origin, good token",
		    "Origin: http://evil.example\r\n"
		    "Authorization: Bearer " RD_TOKEN "\r\n",
		    true },
		{ "no token", "", true },
		{ "unknown token", "Authorization: Bearer xx-0123456789abcdef\r\n",
		    true },
		{ "made-up session",
		    "Cookie: weft_session=0000000000000000000000000000000000000000"
		    "000000000000000000000000\r\n",
		    true },
		{ "read token, no Origin (not a browser)",
		    "Authorization: Bearer " RD_TOKEN "\r\n", false },
	};

	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		int  st;
		int  fd = ws_upgrade(rows[k].extra, &st);
		bool closed;
		// nng completes the handshake, then the pipe callback decides.
		closed = st != 101 || ws_closed(fd, rows[k].closed ? 5000 : 1500);
		cr_expect_eq(closed, rows[k].closed, "%s: %s (status %d)",
		    rows[k].what, closed ? "closed" : "admitted", st);
		close(fd);
	}

	// The dashboard opened as localhost reaches the stream at the --http
	// address: another name of this server, on its port, is ours.
	{
		char extra2[300];
		int  st2, fd2;
		snprintf(extra2, sizeof(extra2),
		    "Origin: http://localhost:%s\r\nAuthorization: Bearer " RD_TOKEN
		    "\r\n",
		    strrchr(c.http, ':') + 1);
		fd2 = ws_upgrade(extra2, &st2);
		cr_expect(st2 == 101 && !ws_closed(fd2, 1500),
		    "Origin localhost on our port was refused (status %d)", st2);
		close(fd2);
		snprintf(extra2, sizeof(extra2),
		    "Origin: http://127.0.0.1:1\r\nAuthorization: Bearer " RD_TOKEN
		    "\r\n");
		fd2 = ws_upgrade(extra2, &st2);
		cr_expect(st2 != 101 || ws_closed(fd2, 5000),
		    "Origin on another port of this host was admitted");
		close(fd2);
	}

	// Our own Origin with a session cookie: the dashboard's way in.
	char *body, *hdr, *sid, extra[400];
	cr_assert_eq(curl(POST_JSON "--data-binary '{\"token\":\"" RD_TOKEN "\"}'",
	                 "/api/v1/login", &body, &hdr),
	    200);
	sid = cookie_of(hdr);
	cr_assert_not_null(sid);
	snprintf(extra, sizeof(extra),
	    "Origin: http://%s\r\nCookie: theme=dark; weft_session=%s\r\n", c.http,
	    sid);
	int st, fd = ws_upgrade(extra, &st);
	cr_expect(st == 101 && !ws_closed(fd, 1500),
	    "same-origin upgrade with a session was refused (status %d)", st);
	close(fd);
	free(sid);
	free(body);
	free(hdr);
}

Test(auth, websocket_stream_with_a_token_delivers_events)
{
	nng_socket sub;
	nng_dialer d;
	char       url[128];
	nng_msg   *msg;
	bool       got = false;

	snprintf(url, sizeof(url), "ws://%s/api/v1/stream", c.http);
	cr_assert_eq(nng_sub0_open(&sub), 0);
	cr_assert_eq(nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "", 0), 0);
	cr_assert_eq(nng_dialer_create(&d, sub, url), 0);
	cr_assert_eq(nng_dialer_set_string(d,
	                 NNG_OPT_WS_REQUEST_HEADER "Authorization",
	                 "Bearer " RD_TOKEN),
	    0);
	cr_assert_eq(nng_dialer_start(d, 0), 0);
	nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 500);
	// Runs until an event arrives: the subscription may need a moment
	// to be in place at the coordinator.
	int64_t deadline = weft_clock_mono_ms() + weft_h_timeout_ms(15000);
	while (!got && weft_clock_mono_ms() < deadline) {
		const char *def = weft_cluster_write(&c, "ws.json",
		    "{\"name\":\"wstk\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\"}]}");
		cr_assert_eq(weft_cluster_cli(&c, NULL, "run '%s' >/dev/null", def),
		    0);
		while (nng_recvmsg(sub, &msg, 0) == 0) {
			got = got || nng_msg_len(msg) > 4;
			nng_msg_free(msg);
		}
	}
	cr_expect(got, "no event over the WebSocket stream with a read token");
	nng_close(sub);

	// The CLI follows the same stream with --stream and its token.
	char *out;
	int   rv = weft_cluster_cli_token(&c, OP_TOKEN, &out,
	      "--stream %s run '%s' --wait --timeout 20s 2>&1", url,
	      weft_cluster_write(&c, "ws2.json",
	          "{\"name\":\"wstk2\",\"steps\":[{\"id\":\"a\",\"type\":"
	          "\"noop\"}]}"));
	cr_expect_eq(rv, 0, "run --wait over --stream: exit %d: %s", rv, out);
	cr_expect_null(strstr(out, "cannot subscribe"), "%s", out);
	free(out);
}

// ---- the loopback rule ----

static int
coordinator_refuses(const char *args, char **out)
{
	return (weft_cluster_coordinator_refuses(args, out));
}

Test(loopback, off_loopback_without_tokens_refuses_to_start,
    .timeout = 120)
{
	static const struct {
		const char *what, *args, *says;
	} rows[] = {
		{ "--http on a wildcard", "--http 0.0.0.0:0", "--api-tokens FILE" },
		{ "--control on a wildcard", "--control tcp://0.0.0.0:0",
		    "--api-tokens FILE" },
		{ "--control without a host", "--control tcp://:0",
		    "--insecure" },
	};

	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		char *out;
		int   rv = coordinator_refuses(rows[k].args, &out);
		cr_expect_eq(rv, 1, "%s: exit %d: %s", rows[k].what, rv, out);
		cr_expect(strstr(out, rows[k].says) != NULL,
		    "%s: the message does not say \"%s\": %s", rows[k].what,
		    rows[k].says, out);
		free(out);
	}
}

Test(loopback, bad_token_files_refuse_to_start, .timeout = 120)
{
	static const struct {
		const char *what, *text, *says;
		int         mode;
	} rows[] = {
		{ "two fields", "a read\n", "tokens:1: want NAME ROLE TOKEN", 0600 },
		{ "unknown role", "# c\na admin 0123456789abcdefgh\n",
		    "tokens:2: ROLE must be read or operate", 0600 },
		{ "short token", "\n\na read short\n", "tokens:3: TOKEN is too short",
		    0600 },
		{ "empty file", "# nothing\n", "no tokens", 0600 },
		{ "group-readable", "a read 0123456789abcdefgh\n",
		    "accessible by group or others", 0640 },
	};
	char *dir = weft_h_tempdir("authf");

	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		char  path[700], args[800], *out;
		FILE *f;
		int   rv;
		snprintf(path, sizeof(path), "%s/tokens", dir);
		unlink(path);
		f = fopen(path, "w");
		cr_assert_not_null(f);
		fputs(rows[k].text, f);
		fclose(f);
		chmod(path, (mode_t) rows[k].mode);
		snprintf(args, sizeof(args), "--api-tokens '%s'", path);
		rv = coordinator_refuses(args, &out);
		cr_expect_eq(rv, 1, "%s: exit %d: %s", rows[k].what, rv, out);
		cr_expect(strstr(out, rows[k].says) != NULL,
		    "%s: the message does not say \"%s\": %s", rows[k].what,
		    rows[k].says, out);
		// The message names the line, never a token's text.
		cr_expect_null(strstr(out, "0123456789abcdefgh"),
		    "%s: a token was printed: %s", rows[k].what, out);
		free(out);
	}
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	weft_h_run(cmd, NULL);
	free(dir);
}

Test(loopback, insecure_starts_and_says_so, .timeout = 120)
{
	weft_cluster      ic;
	weft_cluster_opts o = { .http = "0.0.0.0:0",
		.args = { "--insecure", NULL } };
	char              cmd[1200], *body;

	// Port 0 on the wildcard, stopped as soon as /health has answered.
	weft_cluster_start_opts(&ic, &o);
	snprintf(cmd, sizeof(cmd), "curl -s 'http://127.0.0.1:%s/health'",
	    strrchr(ic.http, ':') + 1);
	weft_h_run(cmd, &body);
	weft_h_kill(ic.coord, SIGTERM);
	ic.coord = 0;
	json_t *v = json_loads(body, 0, NULL);
	cr_expect(json_is_true(json_object_get(v, "insecure")),
	    "/health does not say insecure: %s", body);
	json_decref(v);
	free(body);
	snprintf(cmd, sizeof(cmd), "grep -c 'INSECURE.*--http' '%s/coordinator.log'",
	    ic.dir);
	cr_expect_eq(weft_h_run(cmd, NULL), 0, "no INSECURE warning in the log");
	weft_cluster_stop(&ic);
}
