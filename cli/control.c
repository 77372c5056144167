// control: the client's two connections to the coordinator: the control
// socket (req0; every request goes through weft_cli_call) and the event
// stream (sub0).
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "cli.h"
#include "tls.h"

#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>

// control_open opens and dials the control socket once per process.
static int
control_open(weft_cli *c)
{
	nng_dialer d;
	char       err[1024];
	int        rv;

	if (c->sock_open) {
		return (WEFT_CLI_OK);
	}
	if ((rv = nng_req0_open(&c->sock)) != 0) {
		fprintf(stderr, "weft: cannot open a socket: %s\n",
		    nng_strerror(rv));
		return (WEFT_CLI_UNREACHABLE);
	}
	c->sock_open = true;
	weft_wire_socket_limits(c->sock);
	// The send and receive timeouts are set per request
	// (control_reply_ms).
	// req0 resends a request after 60 s without a reply by default. A
	// resent RunRequest would start a second run, so send once and let
	// the receive timeout decide.
	nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME,
	    NNG_DURATION_INFINITE);
	if ((rv = nng_dialer_create(&d, c->sock, c->url)) != 0) {
		fprintf(stderr, "weft: cannot reach coordinator at %s: %s\n",
		    c->url, nng_strerror(rv));
		return (WEFT_CLI_UNREACHABLE);
	}
	if (weft_tls_dialer(c->tls, d, c->url, err, sizeof(err)) != WEFT_OK) {
		fprintf(stderr, "weft: %s\n", err);
		return (WEFT_CLI_USAGE);
	}
	// A blocking dial fails now with nng's reason (connection refused,
	// bad address, a certificate refused) instead of a receive timeout
	// ten seconds later.
	if ((rv = nng_dialer_start(d, 0)) != 0) {
		fprintf(stderr, "weft: cannot reach coordinator at %s: %s\n",
		    c->url, nng_strerror(rv));
		return (WEFT_CLI_UNREACHABLE);
	}
	return (WEFT_CLI_OK);
}

// The CLI's sockets close in a thread of their own, waited for at most
// CLI_CLOSE_MS: nng 1.5.2's nng_close can hang for good on a socket that
// had traffic (nanomsg/nng#1543, fixed after 1.5.2; seen on a sub socket
// after `weft run --count 800 --wait`, and on a req socket in a test).
// Every close here is on the way out, and what is left the exit ends.
#define CLI_CLOSE_MS 2000

typedef struct cli_closer {
	nng_socket      s;
	pthread_mutex_t lock;
	pthread_cond_t  cv;
	bool            done, abandoned;
} cli_closer;

static void *
cli_close_main(void *arg)
{
	cli_closer *k = arg;
	bool        last;

	nng_close(k->s);
	pthread_mutex_lock(&k->lock);
	k->done = true;
	last    = k->abandoned;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->lock);
	if (last) {
		free(k); // the waiter gave up; nobody else holds it
	}
	return (NULL);
}

void
weft_cli_close_socket(nng_socket s)
{
	cli_closer     *k = weft_xalloc(sizeof(*k));
	pthread_t       t;
	struct timespec until;
	bool            done;

	fflush(stdout); // whatever was said is out, even if the close hangs
	k->s = s;
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->cv, NULL);
	if (pthread_create(&t, NULL, cli_close_main, k) != 0) {
		nng_close(s);
		free(k);
		return;
	}
	pthread_detach(t);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += CLI_CLOSE_MS / 1000;
	pthread_mutex_lock(&k->lock);
	while (!k->done &&
	    pthread_cond_timedwait(&k->cv, &k->lock, &until) == 0) {
	}
	done         = k->done;
	k->abandoned = !done;
	pthread_mutex_unlock(&k->lock);
	if (done) {
		free(k);
	}
}

void
weft_cli_close(weft_cli *c)
{
	if (c->sock_open) {
		weft_cli_close_socket(c->sock);
		c->sock_open = false;
	}
}

// control_reply_ms returns how long the next request may take: timeout_ms,
// cut short during a wait or a follow so that it ends when the coordinator
// will have been unreachable for unreachable_ms. At least 1 ms: giving up
// is the caller's decision, with its own message.
static int
control_reply_ms(const weft_cli *c)
{
	int64_t left;

	if (!c->waiting || c->unreachable_ms == 0) {
		return (c->timeout_ms);
	}
	left = c->heard_ms + c->unreachable_ms - weft_clock_mono_ms();
	if (left >= c->timeout_ms) {
		return (c->timeout_ms);
	}
	return (left < 1 ? 1 : (int) left);
}

// control_exchange sends one request and returns the unpacked reply.
static int
control_exchange(weft_cli *c, Weft__ControlRequest *req, Weft__Envelope **out)
{
	Weft__Envelope env = WEFT__ENVELOPE__INIT;
	nng_msg       *msg;
	weft_err       err;
	int            rv, ms;

	env.body_case = WEFT__ENVELOPE__BODY_CONTROL;
	env.control   = req;
	if (c->token != NULL) {
		req->token = (char *) c->token;
	}
	if ((err = weft_wire_pack(&c->wire, &env, NULL, &msg)) != WEFT_OK) {
		fprintf(stderr, "weft: cannot encode the request: %s\n",
		    weft_err_str(err));
		return (WEFT_CLI_USAGE);
	}
	nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, control_reply_ms(c));
	if ((rv = nng_sendmsg(c->sock, msg, 0)) != 0) {
		nng_msg_free(msg);
		fprintf(stderr, "weft: cannot send to coordinator at %s: %s\n",
		    c->url, nng_strerror(rv));
		return (WEFT_CLI_UNREACHABLE);
	}
	ms = control_reply_ms(c);
	nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, ms);
	if ((rv = nng_recvmsg(c->sock, &msg, 0)) != 0) {
		if (rv == NNG_ETIMEDOUT) {
			fprintf(stderr,
			    "weft: no reply from coordinator at %s within "
			    "%d ms\n",
			    c->url, ms);
		} else {
			fprintf(stderr,
			    "weft: no reply from coordinator at %s: %s\n",
			    c->url, nng_strerror(rv));
		}
		return (WEFT_CLI_UNREACHABLE);
	}
	// Even a reply we cannot read shows the coordinator is there.
	c->heard_ms = weft_clock_mono_ms();
	// Replies on the control socket are not verified: clients hold API
	// tokens, not the cluster cookie.
	err = weft_wire_expect(NULL, msg, WEFT__ENVELOPE__BODY_CONTROL_REPLY,
	    out);
	nng_msg_free(msg);
	if (err != WEFT_OK) {
		fprintf(stderr, "weft: bad reply from coordinator at %s: %s\n",
		    c->url, weft_err_str(err));
		return (WEFT_CLI_FAIL);
	}
	return (WEFT_CLI_OK);
}

int
weft_cli_call(weft_cli *c, Weft__ControlRequest *req, json_t **body)
{
	return (weft_cli_call_page(c, req, body, NULL, 0));
}

int
weft_cli_call_page(weft_cli *c, Weft__ControlRequest *req, json_t **body,
    char *next, size_t nextlen)
{
	Weft__Envelope     *env = NULL;
	Weft__ControlReply *rep;
	json_error_t        jerr;
	int                 rv;

	if (next != NULL && nextlen > 0) {
		next[0] = '\0';
	}
	if ((rv = control_open(c)) != WEFT_CLI_OK ||
	    (rv = control_exchange(c, req, &env)) != WEFT_CLI_OK) {
		return (rv);
	}
	rep = env->control_reply;
	if (next != NULL && nextlen > 0 && rep->code == 0) {
		snprintf(next, nextlen, "%s", rep->next_cursor);
	}
	if (rep->code != 0) {
		fprintf(stderr, "weft: %s\n",
		    rep->error[0] != '\0' ? rep->error
		                          : weft_err_str((weft_err) rep->code));
		rv = WEFT_CLI_FAIL;
		goto done;
	}
	if (rep->body_json[0] == '\0') {
		*body = json_null();
		goto done;
	}
	if ((*body = json_loads(rep->body_json, JSON_DECODE_ANY, &jerr)) ==
	    NULL) {
		fprintf(stderr, "weft: bad reply from coordinator at %s: %s\n",
		    c->url, jerr.text);
		rv = WEFT_CLI_FAIL;
	}
done:
	weft_wire_free(env);
	return (rv);
}

int
weft_cli_output(weft_cli *c, const char *run_id, const char *step_id, FILE *out)
{
	Weft__ControlRequest req  = WEFT__CONTROL_REQUEST__INIT;
	Weft__OutputRequest  oreq = WEFT__OUTPUT_REQUEST__INIT;
	Weft__Envelope      *env;
	uint32_t             chunks = 1;
	char                 blob[80] = "";
	int                  rv;

	oreq.run_id  = (char *) run_id;
	oreq.blob    = blob; // set from the first answer: later chunks are
	                     // of that value or refused
	oreq.step_id = (char *) (step_id != NULL ? step_id : "");
	req.req_case = WEFT__CONTROL_REQUEST__REQ_OUTPUT;
	req.output   = &oreq;
	if ((rv = control_open(c)) != WEFT_CLI_OK) {
		return (rv);
	}
	// One chunk (at most 1 MiB) per request: a value of any size comes
	// through without a message near the 16 MiB limit.
	for (oreq.chunk = 0; oreq.chunk < chunks; oreq.chunk++) {
		env = NULL;
		if ((rv = control_exchange(c, &req, &env)) != WEFT_CLI_OK) {
			return (rv);
		}
		Weft__ControlReply *rep = env->control_reply;
		if (rep->code != 0) {
			fprintf(stderr, "weft: %s\n",
			    rep->error[0] != '\0'
			        ? rep->error
			        : weft_err_str((weft_err) rep->code));
			weft_wire_free(env);
			return (WEFT_CLI_FAIL);
		}
		json_t *meta = json_loads(rep->body_json, 0, NULL);
		chunks       = (uint32_t) json_integer_value(
                    json_object_get(meta, "chunks"));
		if (oreq.chunk == 0) {
			snprintf(blob, sizeof(blob), "%s",
			    json_string_value(json_object_get(meta, "blob"))
			        ? json_string_value(json_object_get(meta, "blob"))
			        : "");
		}
		json_decref(meta);
		if (rep->data.len > 0 &&
		    fwrite(rep->data.data, 1, rep->data.len, out) != rep->data.len) {
			fprintf(stderr, "weft: cannot write the output\n");
			weft_wire_free(env);
			return (WEFT_CLI_FAIL);
		}
		weft_wire_free(env);
	}
	fputc('\n', out);
	return (fflush(out) == 0 ? WEFT_CLI_OK : WEFT_CLI_FAIL);
}

int
weft_cli_sub_open(weft_cli *c, nng_socket *out, const char *url,
    const char *topic, const char **used)
{
	nng_socket s;
	nng_dialer d;
	char       err[1024];
	int        rv;

	if (c->stream != NULL) {
		url = c->stream;
	}
	*used = url;
	if ((rv = nng_sub0_open(&s)) != 0) {
		return (rv);
	}
	weft_wire_socket_limits(s);
	// A deeper queue than the default 128 rides out bursts while we are
	// busy asking the coordinator for a gap. Best effort.
	nng_socket_set_int(s, NNG_OPT_RECVBUF, 8192);
	// The message starts with "<topic>\0": subscribing to the topic with
	// its terminator matches that run only, not every run whose id starts
	// the same way. A release of several runs comes whole under
	// WEFT_TOPIC_MIXED, which the reader sifts. "" subscribes to
	// everything.
	if ((rv = nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, topic,
	         topic[0] != '\0' ? strlen(topic) + 1 : 0)) != 0 ||
	    (topic[0] != '\0' &&
	        (rv = nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, WEFT_TOPIC_MIXED,
	             sizeof(WEFT_TOPIC_MIXED))) != 0) ||
	    (rv = nng_dialer_create(&d, s, url)) != 0) {
		nng_close(s);
		return (rv);
	}
	// The WebSocket stream checks the token in its upgrade request.
	if (c->token != NULL && strncmp(url, "ws", 2) == 0) {
		char hdr[600];
		snprintf(hdr, sizeof(hdr), "Bearer %s", c->token);
		rv = nng_dialer_set_string(
		    d, NNG_OPT_WS_REQUEST_HEADER "Authorization", hdr);
	}
	if (rv == 0 &&
	    weft_tls_dialer(c->tls, d, url, err, sizeof(err)) != WEFT_OK) {
		fprintf(stderr, "weft: %s\n", err);
		nng_close(s);
		return (NNG_EINVAL);
	}
	if (rv != 0 || (rv = nng_dialer_start(d, 0)) != 0) {
		nng_close(s);
		return (rv);
	}
	*out = s;
	return (0);
}

int
weft_cli_sub_recv(weft_cli *c, nng_socket s, int timeout_ms,
    Weft__Envelope **env)
{
	nng_msg *msg;
	int      rv;

	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout_ms < 0 ? 0 : timeout_ms);
	if ((rv = nng_recvmsg(s, &msg, 0)) != 0) {
		return (rv == NNG_ETIMEDOUT ? 0 : -1);
	}
	rv = weft_wire_unpack(c->wire.keyed ? &c->wire : NULL, msg, 1, env) ==
	        WEFT_OK
	    ? 1
	    : 0;
	nng_msg_free(msg);
	if (rv == 1 && (*env)->body_case != WEFT__ENVELOPE__BODY_EVENTS) {
		weft_wire_free(*env);
		rv = 0;
	}
	return (rv);
}

int
weft_cli_call_print(weft_cli *c, Weft__ControlRequest *req)
{
	json_t *body;
	int     rv;

	if ((rv = weft_cli_call(c, req, &body)) != WEFT_CLI_OK) {
		return (rv);
	}
	if (c->json) {
		weft_cli_print_json(body);
	} else {
		weft_cli_print_fields(body);
	}
	json_decref(body);
	return (WEFT_CLI_OK);
}
