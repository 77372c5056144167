// garbage_test: garbage at every coordinator socket — raw bytes at the TCP
// level, and well-framed nng messages that are not weft messages, of an
// unknown version, of the wrong type, or too large. The coordinator logs,
// counts and drops them, keeps running, and still runs workflows.
#include <arpa/inet.h>
#include <errno.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/protocol/survey0/respond.h>

#include "cluster.h"
#include "harness.h"
#include "wire.h"

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

TestSuite(garbage, .init = up, .fini = down, .timeout = 120);

static int
port_of(const char *url)
{
	return (atoi(strrchr(url, ':') + 1));
}

// raw_bytes connects with plain TCP and writes n pseudo-random bytes.
static void
raw_bytes(int port, size_t n, unsigned seed)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t) port) };
	int                fd = socket(AF_INET, SOCK_STREAM, 0);
	char              *buf = malloc(n);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (size_t i = 0; i < n; i++) {
		buf[i] = (char) rand_r(&seed);
	}
	if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0) {
		ssize_t w = write(fd, buf, n);
		(void) w;
	}
	close(fd);
	free(buf);
}

// sp_oversize_closed speaks the SP handshake as protocol proto, announces
// a message one KiB over WEFT_WIRE_MAX and sends its first bytes; true when
// the peer then closes the connection within five seconds.
static bool
sp_oversize_closed(int port, uint16_t proto)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t) port) };
	struct timeval     tv = { .tv_sec = 5 };
	unsigned char      hello[8] = { 0, 'S', 'P', 0, (unsigned char) (proto >> 8),
		     (unsigned char) proto, 0, 0 };
	unsigned char      head[8], buf[4096] = { 0 };
	uint64_t           len = (uint64_t) WEFT_WIRE_MAX + 1024;
	int                fd = socket(AF_INET, SOCK_STREAM, 0);
	bool               closed = false;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
		close(fd);
		return (false);
	}
	for (int i = 0; i < 8; i++) {
		head[i] = (unsigned char) (len >> (56 - 8 * i));
	}
	(void) !send(fd, hello, sizeof(hello), MSG_NOSIGNAL);
	(void) !send(fd, head, sizeof(head), MSG_NOSIGNAL);
	(void) !send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
	// The peer's own 8-byte handshake comes first, then the close.
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			closed = true;
			break;
		}
		if (n < 0) {
			break; // timed out: still open
		}
	}
	close(fd);
	return (closed);
}

// req_exchange sends body (len bytes) on a fresh req0 socket and returns
// the reply (NULL when none came within 500 ms).
static nng_msg *
req_exchange(const char *url, const void *body, size_t len)
{
	nng_socket s;
	nng_msg   *msg, *reply = NULL;

	cr_assert_eq(nng_req0_open(&s), 0);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 500);
	cr_assert_eq(nng_dial(s, url, NULL, 0), 0);
	nng_msg_alloc(&msg, len);
	memcpy(nng_msg_body(msg), body, len);
	if (nng_sendmsg(s, msg, 0) != 0) {
		nng_msg_free(msg);
	} else if (nng_recvmsg(s, &reply, 0) != 0) {
		reply = NULL;
	}
	nng_close(s);
	return (reply);
}

// packed packs env as a node of this cluster would (with the cookie) when
// member is set, else as an intruder without it.
static nng_msg *
packed_as(Weft__Envelope *env, uint32_t version, bool member)
{
	weft_wire w;
	nng_msg  *msg;

	if (member) {
		weft_cluster_wire(&c, &w, "member");
	} else {
		weft_wire_init(&w, "intruder");
	}
	cr_assert_eq(weft_wire_pack(&w, env, NULL, &msg), WEFT_OK);
	weft_wire_fini(&w);
	if (version != WEFT_WIRE_VERSION) {
		// Re-pack with another version number.
		env->version = version;
		nng_msg_free(msg);
		size_t len = weft__envelope__get_packed_size(env);
		nng_msg_alloc(&msg, len);
		weft__envelope__pack(env, nng_msg_body(msg));
	}
	return (msg);
}

static nng_msg *
packed(Weft__Envelope *env, uint32_t version)
{
	return (packed_as(env, version, false));
}

static void
send_msg(const char *url, nng_msg *m, bool want_reply, const char *what)
{
	nng_msg *reply = req_exchange(url, nng_msg_body(m), nng_msg_len(m));
	if (want_reply) {
		cr_expect_not_null(reply, "%s: expected an error reply", what);
	} else {
		cr_expect_null(reply, "%s: expected no reply", what);
	}
	if (reply != NULL) {
		Weft__Envelope *env;
		if (weft_wire_unpack(NULL, reply, 0, &env) == WEFT_OK) {
			if (env->body_case == WEFT__ENVELOPE__BODY_CONTROL_REPLY) {
				cr_expect_neq(env->control_reply->code, 0, "%s", what);
			}
			weft_wire_free(env);
		}
		nng_msg_free(reply);
	}
	nng_msg_free(m);
}

Test(garbage, at_every_socket)
{
	const char *urls[] = { c.control, c.cluster, c.results, c.events };

	// 1. Raw bytes at the transport level: no SP handshake at all.
	for (int i = 0; i < 4; i++) {
		raw_bytes(port_of(urls[i]), 4096, (unsigned) i);
		raw_bytes(port_of(urls[i]), 8, (unsigned) i + 10);
	}

	// 2. Framed nng messages that are not weft envelopes.
	char junk[256];
	for (int i = 0; i < (int) sizeof(junk); i++) {
		junk[i] = (char) (i * 37 + 11);
	}
	nng_msg *r = req_exchange(c.control, junk, sizeof(junk));
	cr_expect_null(r, "garbage control request must be dropped");
	nng_msg_free(r);
	r = req_exchange(c.results, junk, sizeof(junk));
	cr_expect_null(r, "garbage results must not be acked");
	nng_msg_free(r);

	// 3. A weft envelope of an unknown version, and one of the wrong type.
	Weft__Envelope       env = WEFT__ENVELOPE__INIT;
	Weft__ControlRequest cr  = WEFT__CONTROL_REQUEST__INIT;
	Weft__InfoRequest    ir  = WEFT__INFO_REQUEST__INIT;
	cr.req_case   = WEFT__CONTROL_REQUEST__REQ_INFO;
	cr.info       = &ir;
	env.body_case = WEFT__ENVELOPE__BODY_CONTROL;
	env.control   = &cr;
	send_msg(c.control, packed(&env, 99), true, "control v99");
	send_msg(c.results, packed(&env, WEFT_WIRE_VERSION), false,
	    "control body on results");
	// Empty control request: valid envelope, nothing asked.
	Weft__ControlRequest empty = WEFT__CONTROL_REQUEST__INIT;
	env.control = &empty;
	env.version = 0;
	send_msg(c.control, packed(&env, WEFT_WIRE_VERSION), true, "empty request");

	// 4. Results for runs that do not exist are acked and dropped; from
	// a sender without the cookie they are not even acked.
	Weft__Envelope    renv = WEFT__ENVELOPE__INIT;
	Weft__ResultBatch rb   = WEFT__RESULT_BATCH__INIT;
	Weft__StepResult  sr   = WEFT__STEP_RESULT__INIT;
	Weft__StepResult *srs[] = { &sr };
	sr.run_id       = "01NOSUCHRUN000000000000000";
	sr.step_id      = "x";
	sr.attempt      = 1;
	sr.ok           = true;
	sr.output_json  = "{not json";
	rb.n_results    = 1;
	rb.results      = srs;
	renv.body_case  = WEFT__ENVELOPE__BODY_RESULTS;
	renv.results    = &rb;
	renv.recipient  = "coordinator";
	nng_msg *m      = packed_as(&renv, WEFT_WIRE_VERSION, true);
	r = req_exchange(c.results, nng_msg_body(m), nng_msg_len(m));
	cr_expect_not_null(r, "results for an unknown run are still acked");
	nng_msg_free(r);
	nng_msg_free(m);
	m = packed(&renv, WEFT_WIRE_VERSION);
	r = req_exchange(c.results, nng_msg_body(m), nng_msg_len(m));
	cr_expect_null(r, "results without the cookie must not be acked");
	nng_msg_free(r);
	nng_msg_free(m);

	// 5. Oversize: a message header over the receive limit closes that
	// connection at once, before the body is read. (Sent raw: an nng req
	// client closing during its own 16 MiB send can hang in nng 1.5.2.)
	cr_expect(sp_oversize_closed(port_of(c.control), 48 /* req0 */),
	    "an oversize control message must close its connection");
	cr_expect(sp_oversize_closed(port_of(c.results), 48 /* req0 */),
	    "an oversize result message must close its connection");

	// 6. A respondent answering surveys with garbage.
	nng_socket resp;
	cr_assert_eq(nng_respondent0_open(&resp), 0);
	nng_socket_set_ms(resp, NNG_OPT_RECVTIMEO, 3000);
	cr_assert_eq(nng_dial(resp, c.cluster, NULL, 0), 0);
	for (int i = 0; i < 3; i++) {
		nng_msg *sv;
		if (nng_recvmsg(resp, &sv, 0) == 0) {
			nng_msg_free(sv);
			nng_msg_alloc(&sv, sizeof(junk));
			memcpy(nng_msg_body(sv), junk, sizeof(junk));
			if (nng_sendmsg(resp, sv, 0) != 0) {
				nng_msg_free(sv);
			}
		}
	}
	nng_close(resp);

	// The coordinator is alive, still sees its worker, and runs work.
	cr_assert(weft_h_alive(c.coord), "coordinator died");
	weft_cluster_wait_workers(&c, 1);
	char *id;
	cr_assert_eq(weft_cluster_cli(&c, &id, "run '%s'",
	                 WEFT_SRC_DIR "/examples/diamond.json"),
	    0);
	id[strcspn(id, "\n")] = '\0';
	json_t *run = weft_cluster_run_end(&c, id, 30000);
	const char *st = json_string_value(json_object_get(run, "status"));
	if (strcmp(st, "succeeded") != 0) {
		weft_cluster_dump_logs(&c);
		char *out = NULL;
		weft_cluster_cli(&c, &out, "events --run %s --format table", id);
		fprintf(stderr, "== events of %s\n%s\n", id, out ? out : "");
		free(out);
		weft_cluster_cli(&c, &out, "workers --json");
		fprintf(stderr, "== workers\n%s\n", out ? out : "");
		free(out);
	}
	cr_expect_str_eq(st, "succeeded", "run %s after the garbage", id);
	json_decref(run);
	free(id);
	// And it said what it dropped.
	char *log;
	char  cmd[700];
	snprintf(cmd, sizeof(cmd), "cat '%s/coordinator.log'", c.dir);
	weft_h_run(cmd, &log);
	cr_expect(strstr(log, "WIRE-DROP") != NULL, "no drop logged");
	free(log);
}

// Bad command lines: a clear error naming the flag or the path, a usage
// exit status (2) for a malformed flag, 1 for a file it cannot write.
Test(garbage, bad_coordinator_command_lines)
{
	static const struct {
		const char *args;
		int         rc;
		const char *says;
	} rows[] = {
		{ "--ports-file /nonexistent/dir/ports.json", 1,
		    "/nonexistent/dir/ports.json" },
		{ "--lost-after 0", 2, "--lost-after" },
		{ "--survey-ms abc", 2, "--survey-ms" },
		{ "--unschedulable-after 5x", 2,
		    "--unschedulable-after wants a duration from 1s to 1d, such "
		    "as 30s, got \"5x\"" },
		{ "--unschedulable-after 500ms", 2, "--unschedulable-after" },
		{ "--unschedulable-after -1s", 2, "--unschedulable-after" },
	};
	char cmd[2048];

	for (size_t k = 0; k < sizeof(rows) / sizeof(rows[0]); k++) {
		char *out;
		snprintf(cmd, sizeof(cmd),
		    "'%s' --db 'sqlite:%s/bad.db' --control tcp://127.0.0.1:0 "
		    "--cluster tcp://127.0.0.1:0 --results tcp://127.0.0.1:0 "
		    "--events tcp://127.0.0.1:0 --http 127.0.0.1:0 %s 2>&1",
		    weft_h_bin("weft-coordinator"), c.dir, rows[k].args);
		int rc = weft_h_run(cmd, &out);
		cr_expect_eq(rc, rows[k].rc, "%s: exit %d, want %d\n%s",
		    rows[k].args, rc, rows[k].rc, out);
		cr_expect(strstr(out, rows[k].says) != NULL,
		    "%s: the error does not name %s:\n%s", rows[k].args,
		    rows[k].says, out);
		free(out);
	}
}
