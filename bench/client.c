// client: weft-bench's control connection to the coordinator: protobuf
// Envelopes over req0, as the CLI sends them, without a process per request
// so the bench's own overhead stays out of the figures.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#include <nng/protocol/reqrep0/req.h>

bool
bench_client_open(bench_client *c, const char *url, int timeout_ms,
    char *err, size_t errlen)
{
	int rv;

	memset(c, 0, sizeof(*c));
	weft_wire_init(&c->wire, "weft-bench");
	c->timeout_ms = timeout_ms;
	if ((rv = nng_req0_open(&c->sock)) != 0) {
		snprintf(err, errlen, "req0 socket: %s", nng_strerror(rv));
		return (false);
	}
	c->open = true;
	weft_wire_socket_limits(c->sock);
	nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, timeout_ms);
	nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, timeout_ms);
	// A resent RunRequest would start a second run: send once only.
	nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME,
	    NNG_DURATION_INFINITE);
	if ((rv = nng_dial(c->sock, url, NULL, 0)) != 0) {
		snprintf(err, errlen, "cannot reach %s: %s", url,
		    nng_strerror(rv));
		bench_client_close(c);
		return (false);
	}
	return (true);
}

void
bench_client_close(bench_client *c)
{
	if (c->open) {
		nng_close(c->sock);
		c->open = false;
	}
}

json_t *
bench_client_call(bench_client *c, Weft__ControlRequest *req, char *err,
    size_t errlen)
{
	Weft__Envelope      env = WEFT__ENVELOPE__INIT;
	Weft__Envelope     *rep = NULL;
	Weft__ControlReply *cr;
	nng_msg            *msg;
	json_t             *body = NULL;
	json_error_t        je;
	weft_err            werr;
	int                 rv;

	env.body_case = WEFT__ENVELOPE__BODY_CONTROL;
	env.control   = req;
	if ((werr = weft_wire_pack(&c->wire, &env, NULL, &msg)) != WEFT_OK) {
		snprintf(err, errlen, "pack: %s", weft_err_str(werr));
		return (NULL);
	}
	if ((rv = nng_sendmsg(c->sock, msg, 0)) != 0) {
		nng_msg_free(msg);
		snprintf(err, errlen, "send: %s", nng_strerror(rv));
		return (NULL);
	}
	if ((rv = nng_recvmsg(c->sock, &msg, 0)) != 0) {
		snprintf(err, errlen, "no reply within %d ms: %s", c->timeout_ms,
		    nng_strerror(rv));
		return (NULL);
	}
	werr = weft_wire_expect(NULL, msg, WEFT__ENVELOPE__BODY_CONTROL_REPLY, &rep);
	nng_msg_free(msg);
	if (werr != WEFT_OK) {
		snprintf(err, errlen, "bad reply: %s", weft_err_str(werr));
		return (NULL);
	}
	cr = rep->control_reply;
	if (cr->code != 0) {
		snprintf(err, errlen, "%s",
		    cr->error[0] != '\0' ? cr->error
		                         : weft_err_str((weft_err) cr->code));
	} else if (cr->body_json[0] == '\0') {
		body = json_null();
	} else if ((body = json_loads(cr->body_json, JSON_DECODE_ANY, &je)) ==
	    NULL) {
		snprintf(err, errlen, "reply is not JSON: %s", je.text);
	}
	weft_wire_free(rep);
	return (body);
}

bool
bench_client_define(bench_client *c, const char *text, char *err,
    size_t errlen)
{
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__DefineRequest  dr  = WEFT__DEFINE_REQUEST__INIT;
	json_t              *body;

	dr.definition_json = (char *) text;
	req.req_case       = WEFT__CONTROL_REQUEST__REQ_DEFINE;
	req.define         = &dr;
	if ((body = bench_client_call(c, &req, err, errlen)) == NULL) {
		return (false);
	}
	json_decref(body);
	return (true);
}

bool
bench_client_run(bench_client *c, const char *name, char *id, size_t idlen,
    char *err, size_t errlen)
{
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__RunRequest     rr  = WEFT__RUN_REQUEST__INIT;
	json_t              *body;
	const char          *rid;
	bool                 ok = false;

	rr.definition = (char *) name;
	req.req_case  = WEFT__CONTROL_REQUEST__REQ_RUN;
	req.run       = &rr;
	if ((body = bench_client_call(c, &req, err, errlen)) == NULL) {
		return (false);
	}
	if ((rid = json_string_value(json_object_get(body, "run_id"))) ==
	    NULL) {
		snprintf(err, errlen, "run reply without run_id");
	} else {
		snprintf(id, idlen, "%s", rid);
		ok = true;
	}
	json_decref(body);
	return (ok);
}

bool
bench_client_run_batch(bench_client *c, const char *name, size_t n,
    char *ids, size_t idlen, char *err, size_t errlen)
{
	Weft__ControlRequest   req = WEFT__CONTROL_REQUEST__INIT;
	Weft__RunBatchRequest  br  = WEFT__RUN_BATCH_REQUEST__INIT;
	Weft__RunRequest       rr  = WEFT__RUN_REQUEST__INIT;
	Weft__RunRequest     **runs;
	size_t                 per = n < WEFT_WIRE_RUN_BATCH_MAX
	                    ? n
	                    : WEFT_WIRE_RUN_BATCH_MAX;
	bool                   ok  = true;

	runs = calloc(per > 0 ? per : 1, sizeof(*runs));
	if (runs == NULL) {
		snprintf(err, errlen, "out of memory");
		return (false);
	}
	rr.definition = (char *) name;
	for (size_t i = 0; i < per; i++) {
		runs[i] = &rr;
	}
	req.req_case  = WEFT__CONTROL_REQUEST__REQ_RUN_BATCH;
	req.run_batch = &br;
	br.runs       = runs;
	for (size_t done = 0; ok && done < n; done += br.n_runs) {
		json_t *body, *res;
		br.n_runs = n - done < per ? n - done : per;
		if ((body = bench_client_call(c, &req, err, errlen)) == NULL) {
			ok = false;
			break;
		}
		res = json_object_get(body, "results");
		for (size_t i = 0; ok && i < br.n_runs; i++) {
			json_t     *r  = json_array_get(res, i);
			const char *id = json_string_value(
			    json_object_get(r, "run_id"));
			if (id == NULL) {
				snprintf(err, errlen, "run %zu of the batch: %s",
				    done + i,
				    r != NULL ? json_string_value(json_object_get(
				                    r, "error"))
				              : "no result");
				ok = false;
			} else {
				snprintf(ids + (done + i) * idlen, idlen, "%s", id);
			}
		}
		json_decref(body);
	}
	free(runs);
	return (ok);
}

json_t *
bench_client_info(bench_client *c, char *err, size_t errlen)
{
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__InfoRequest    ir  = WEFT__INFO_REQUEST__INIT;

	req.req_case = WEFT__CONTROL_REQUEST__REQ_INFO;
	req.info     = &ir;
	return (bench_client_call(c, &req, err, errlen));
}

json_t *
bench_client_runs(bench_client *c, const char *name, uint32_t limit,
    char *err, size_t errlen)
{
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__RunsRequest    rr  = WEFT__RUNS_REQUEST__INIT;

	rr.definition = (char *) name;
	rr.limit      = limit;
	req.req_case  = WEFT__CONTROL_REQUEST__REQ_RUNS;
	req.runs      = &rr;
	return (bench_client_call(c, &req, err, errlen));
}

json_t *
bench_client_status(bench_client *c, const char *run_id, char *err,
    size_t errlen)
{
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__StatusRequest  sr  = WEFT__STATUS_REQUEST__INIT;

	sr.run_id    = (char *) run_id;
	req.req_case = WEFT__CONTROL_REQUEST__REQ_STATUS;
	req.status   = &sr;
	return (bench_client_call(c, &req, err, errlen));
}
