// http: the coordinator's HTTP server (nng's): the REST API under /api/v1,
// /health, /metrics, the dashboard's static files, and the event stream
// over WebSocket on the same port.
//
// The REST API is a translation: each request becomes the same protobuf
// control request the CLI sends, routed the same way (engine or query
// thread), and the ControlReply becomes the HTTP response. One code path
// serves both front ends, so they cannot drift apart.
#include <arpa/inet.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include <sodium.h>

#include "alloc.h"
#include "clock.h"
#include "event.h"
#include "io_int.h"
#include "log.h"
#include "query.h"
#include "run.h"
#include "runreq.h"
#include "tags.h"
#include "tls.h"

// The largest request body read, from a caller who passed the Host and
// Origin checks and authentication (any caller with tokens off).
#define HTTP_BODY_MAX (13u * 1024u * 1024u)

// The largest body of a request that needs no token (login, logout,
// whoami, /health, the dashboard's files): what anyone who reaches the
// port can make the coordinator allocate. A login body is a token.
#define HTTP_BODY_OPEN_MAX 4096u

// An HTTP request waiting for the engine or the query thread. Two owners:
// the route (until it answers: call_rele) and the aio (until it is
// finished, by the answer or by a cancel); whichever lets go second frees
// it.
struct http_call {
	nng_aio *aio;
	uint16_t ok_status; // status of a successful answer (200, 201)
	bool     done;      // the aio has been finished
	int      refs;
	const struct http_page *page; // NULL for answers that are not pages
	struct http_fetch *fetch; // an output being read chunk by chunk
	json_t *batch; // POST /runs/batch: a result per item, null where
	               // the engine's answer goes (in order); else NULL
	struct http_bulk *bulk; // POST /runs/bulk/{action}: its chunks
};

// A paged answer (GET /runs, /events) as HTTP shows it: the list under
// list, beside it the cursor of the next page under field (null on the
// last page), since tools read the body and not the headers; the same
// cursor in header too. The control socket carries the bare list and the
// cursor in ControlReply.next_cursor: the CLI's wire format stays.
typedef struct http_page {
	const char *list;    // "runs"
	const char *field;   // "next_before"
	const char *header;  // "Next-Before"
	bool        numeric; // the cursor is a number (an event id)
} http_page;

static const http_page http_runs_page = { "runs", "next_before",
	"Next-Before", false };
static const http_page http_events_page = { "events", "next_after",
	"Next-After", true };

// An output fetched chunk by chunk (GET .../output): each chunk is one
// OutputRequest to the query thread, so no message ever holds the whole
// value, however large; the HTTP answer is the chunks joined.
typedef struct http_fetch {
	weft_engine *e;
	char         run[64];
	char         step[256]; // "" for the run's own output
	uint32_t     chunk;     // the one asked for
	char         blob[80];  // the blob chunk 0 named ("" none): later
	                        // chunks must be of it
	char        *buf;       // the chunks so far
	size_t       len, cap;
} http_fetch;

static void http_send(weft_engine *e, Weft__ControlRequest *cr, http_call *h);
static bool http_bulk_take(http_call *h, const Weft__ControlReply *rep);
static void http_bulk_next(http_call *h);
static nng_http_res *http_bulk_res(http_call *h);
static void http_bulk_free(struct http_bulk *b);
static void http_fetch_next(http_call *h);
static void http_route_paged(weft_engine *e, nng_aio *aio,
    Weft__ControlRequest *cr, uint16_t ok_status, const http_page *page,
    struct http_fetch *fetch);

static pthread_mutex_t http_lock = PTHREAD_MUTEX_INITIALIZER;

static void
call_rele(http_call *h)
{
	bool last;

	pthread_mutex_lock(&http_lock);
	last = --h->refs == 0;
	pthread_mutex_unlock(&http_lock);
	if (last) {
		if (h->fetch != NULL) {
			free(h->fetch->buf);
			free(h->fetch);
		}
		json_decref(h->batch);
		http_bulk_free(h->bulk);
		free(h);
	}
}

// call_finish completes the HTTP request with res (taken) unless it was
// already finished (cancelled by a closing connection).
static void
call_finish(http_call *h, nng_http_res *res)
{
	pthread_mutex_lock(&http_lock);
	if (h->done) {
		pthread_mutex_unlock(&http_lock);
		nng_http_res_free(res);
		return;
	}
	h->done = true;
	h->refs--; // the aio's
	nng_aio_set_output(h->aio, 0, res);
	nng_aio_finish(h->aio, 0);
	pthread_mutex_unlock(&http_lock);
}

static void
call_cancel(nng_aio *aio, void *arg, int rv)
{
	http_call *h = arg;

	pthread_mutex_lock(&http_lock);
	if (!h->done) {
		h->done = true;
		h->refs--; // the aio's; the route still holds its own
		nng_aio_finish(aio, rv);
	}
	pthread_mutex_unlock(&http_lock);
}

// ---- responses ----

static nng_http_res *
http_res(uint16_t status, const char *type, const void *body, size_t len)
{
	nng_http_res *res;

	if (nng_http_res_alloc(&res) != 0) {
		return (NULL);
	}
	nng_http_res_set_status(res, status);
	if (status == 413) {
		// nng 1.5.2's table of reasons lacks 413 ("Unknown HTTP
		// Status" otherwise).
		nng_http_res_set_reason(res, "Payload Too Large");
	}
	nng_http_res_set_header(res, "Content-Type", type);
	nng_http_res_set_header(res, "Cache-Control", "no-store");
	if (len > 0) {
		nng_http_res_copy_data(res, body, len);
	}
	return (res);
}

static nng_http_res *
http_json(uint16_t status, json_t *body)
{
	char         *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
	nng_http_res *res  = http_res(status, "application/json", text, strlen(text));
	free(text);
	json_decref(body);
	return (res);
}

static nng_http_res *
http_error(uint16_t status, weft_err code, const char *msg)
{
	return (http_json(status, json_pack("{s:s, s:s}", "error", msg, "code",
	    weft_err_name(code))));
}

// http_405 refuses a method: allow is the Allow header ("GET, POST"), the
// methods the path takes.
static nng_http_res *
http_405(const char *allow)
{
	char          msg[128];
	nng_http_res *res;

	snprintf(msg, sizeof(msg), "method not allowed here: use %s", allow);
	res = http_error(405, WEFT_EINVAL, msg);
	if (res != NULL) {
		nng_http_res_set_header(res, "Allow", allow);
	}
	return (res);
}

static uint16_t
http_status_of(int code)
{
	switch (code) {
	case WEFT_ENOENT:
		return (404);
	case WEFT_EINVAL:
	case WEFT_EDEF:
		return (400);
	case WEFT_ESTATE:
	case WEFT_EEXIST:
		return (409);
	case WEFT_ETOOBIG:
		return (413);
	case WEFT_EUNAVAIL:
	case WEFT_ESTORE:
		return (503);
	default:
		return (500);
	}
}

// http_fetch_take appends the chunk of rep to h's output; true when
// more chunks remain (the next one is then to be asked for).
static bool
http_fetch_take(http_call *h, const Weft__ControlReply *rep)
{
	http_fetch *f    = h->fetch;
	json_t     *meta = json_loads(rep->body_json, 0, NULL);
	uint32_t    n    = (uint32_t) json_integer_value(
            json_object_get(meta, "chunks"));
	size_t      size = (size_t) json_integer_value(
            json_object_get(meta, "size"));
	const char *blob = json_string_value(json_object_get(meta, "blob"));

	if (f->chunk == 0) {
		snprintf(f->blob, sizeof(f->blob), "%s", blob ? blob : "");
	}
	json_decref(meta);
	if (f->cap < size) {
		// The whole size is known from the first chunk: one buffer.
		f->cap = size;
		f->buf = weft_xrealloc(f->buf, f->cap);
	}
	if (f->len + rep->data.len > f->cap) {
		f->cap = f->len + rep->data.len;
		f->buf = weft_xrealloc(f->buf, f->cap);
	}
	memcpy(f->buf + f->len, rep->data.data, rep->data.len);
	f->len += rep->data.len;
	f->chunk++;
	return (f->chunk < n);
}

// http_page_res wraps the list of rep in the object pg describes:
// {"runs": [...], "next_before": "RUN" | null}. The list is copied as
// text, not parsed again: a page can be megabytes.
static nng_http_res *
http_page_res(uint16_t status, const http_page *pg,
    const Weft__ControlReply *rep)
{
	const char   *list = rep->body_json[0] != '\0' ? rep->body_json : "[]";
	const char   *cur  = rep->next_cursor;
	char         *next, *text;
	size_t        n;
	nng_http_res *res;

	if (cur[0] == '\0') {
		next = weft_xstrdup("null");
	} else if (pg->numeric) {
		next = weft_xstrdup(cur); // an event id: digits, from the store
	} else {
		json_t *v = json_string(cur);
		next      = json_dumps(v, JSON_ENCODE_ANY);
		json_decref(v);
	}
	n    = strlen(pg->list) + strlen(list) + strlen(pg->field) +
	    strlen(next) + 16;
	text = weft_xalloc(n);
	n    = (size_t) snprintf(text, n, "{\"%s\":%s,\"%s\":%s}", pg->list,
            list, pg->field, next);
	res  = http_res(status, "application/json", text, n);
	if (res != NULL && cur[0] != '\0') {
		nng_http_res_set_header(res, pg->header, cur);
	}
	free(text);
	free(next);
	return (res);
}

// http_batch_res answers POST /api/v1/runs/batch: h->batch with each null
// (an item that went to the engine) replaced, in order, by the engine's
// result for it, whose "index" counted only the items sent and becomes
// the item's place in the request. rep NULL: no item was sent.
static nng_http_res *
http_batch_res(http_call *h, const Weft__ControlReply *rep)
{
	json_t *body = rep != NULL ? json_loads(rep->body_json, 0, NULL) : NULL;
	json_t *got  = json_object_get(body, "results");
	json_t *out  = json_array(), *v;
	size_t  i, k = 0;

	json_array_foreach (h->batch, i, v) {
		json_t *r = json_is_null(v) ? json_array_get(got, k++) : v;
		if (r == NULL) {
			json_decref(body);
			json_decref(out);
			return (http_error(500, WEFT_EPROTO,
			    "internal: a batch answer without a result per run"));
		}
		r = json_copy(r);
		if (json_object_get(r, "index") != NULL) {
			json_object_set_new(r, "index", json_integer((json_int_t) i));
		}
		json_array_append_new(out, r);
	}
	json_decref(body);
	return (http_json(h->ok_status, json_pack("{s:o}", "results", out)));
}

// http_body_existed says whether a run reply (JSON text) is
// {"existed": true}.
static bool
http_body_existed(const char *b)
{
	json_t *v     = json_loads(b, 0, NULL);
	bool    found = json_is_true(json_object_get(v, "existed"));

	json_decref(v);
	return (found);
}

void
http_answer(http_call *h, nng_msg *msg)
{
	Weft__Envelope *env = NULL;
	nng_http_res   *res;

	if (weft_wire_expect(NULL, msg, WEFT__ENVELOPE__BODY_CONTROL_REPLY, &env) !=
	    WEFT_OK) {
		res = http_error(500, WEFT_EPROTO, "internal: bad reply");
	} else if (env->control_reply->code != 0) {
		res = http_error(http_status_of(env->control_reply->code),
		    (weft_err) env->control_reply->code, env->control_reply->error);
	} else if (h->fetch != NULL) {
		if (http_fetch_take(h, env->control_reply)) {
			// More chunks to come: the route keeps its hold on h.
			weft_wire_free(env);
			nng_msg_free(msg);
			http_fetch_next(h);
			return;
		}
		res = http_res(h->ok_status, "application/json", h->fetch->buf,
		    h->fetch->len);
		free(h->fetch->buf);
		h->fetch->buf = NULL;
	} else if (h->batch != NULL) {
		res = http_batch_res(h, env->control_reply);
	} else if (h->bulk != NULL) {
		if (http_bulk_take(h, env->control_reply)) {
			// More chunks to come: the route keeps its hold on h.
			weft_wire_free(env);
			nng_msg_free(msg);
			http_bulk_next(h);
			return;
		}
		res = http_bulk_res(h);
	} else if (h->page != NULL) {
		res = http_page_res(h->ok_status, h->page, env->control_reply);
	} else {
		const char *b = env->control_reply->body_json;
		// POST /api/v1/runs answering the run an idempotency key
		// already made: 200, not 201 (nothing was created).
		uint16_t st = h->ok_status == 201 && strstr(b, "\"existed\"") &&
		        http_body_existed(b)
		    ? 200
		    : h->ok_status;
		res = http_res(st, "application/json", b[0] ? b : "{}",
		    b[0] ? strlen(b) : 2);
	}
	weft_wire_free(env);
	nng_msg_free(msg);
	call_finish(h, res);
	call_rele(h);
}

void
http_drop(http_call *h)
{
	call_finish(h, http_error(503, WEFT_ECLOSED, "coordinator is stopping"));
	call_rele(h);
}

// ---- requests ----

// http_send hands a control request (built on the stack, borrowed) to the
// thread that answers it, with h as its reply target; false (h untouched)
// when it cannot be encoded.
static bool
http_send_copy(weft_engine *e, Weft__ControlRequest *cr, http_call *h)
{
	Weft__Envelope  env = WEFT__ENVELOPE__INIT;
	Weft__Envelope *copy;
	uint8_t        *buf;
	size_t          len;

	env.version   = WEFT_WIRE_VERSION;
	env.sender    = "http";
	env.body_case = WEFT__ENVELOPE__BODY_CONTROL;
	env.control   = cr;
	len           = weft__envelope__get_packed_size(&env);
	buf           = weft_xalloc(len);
	weft__envelope__pack(&env, buf);
	copy = weft__envelope__unpack(NULL, len, buf);
	free(buf);
	if (copy == NULL) {
		return (false);
	}
	net_route_control(e, copy, (reply_to) { .http = h });
	return (true);
}

static void
http_send(weft_engine *e, Weft__ControlRequest *cr, http_call *h)
{
	if (!http_send_copy(e, cr, h)) {
		call_finish(h, http_error(500, WEFT_EPROTO, "internal"));
		call_rele(h);
	}
}

// call_gone says whether the client of a call that goes on in several
// requests went away; then it lets go of the route's hold on h.
static bool
call_gone(http_call *h)
{
	bool gone;

	pthread_mutex_lock(&http_lock);
	gone = h->done;
	pthread_mutex_unlock(&http_lock);
	if (gone) {
		call_rele(h);
	}
	return (gone);
}

// http_fetch_next asks for the next chunk of h's output.
static void
http_fetch_next(http_call *h)
{
	Weft__ControlRequest cr = WEFT__CONTROL_REQUEST__INIT;
	Weft__OutputRequest  oreq = WEFT__OUTPUT_REQUEST__INIT;

	if (call_gone(h)) {
		return; // the client went away: stop reading
	}
	oreq.run_id   = h->fetch->run;
	oreq.step_id  = h->fetch->step;
	oreq.chunk    = h->fetch->chunk;
	oreq.blob     = h->fetch->blob;
	cr.req_case = WEFT__CONTROL_REQUEST__REQ_OUTPUT;
	cr.output   = &oreq;
	http_send(h->fetch->e, &cr, h);
}

// http_num_arg reads the optional numeric parameter key (0..max) into
// *out; an error response naming the parameter when it is malformed or
// too large (a larger page used to be cut silently).
static nng_http_res *
http_num_arg(const char *uri, const char *key, uint64_t max, uint64_t *out)
{
	char               v[64], msg[200];
	char              *end;
	unsigned long long n;

	if (!weft_query_get(uri, key, v, sizeof(v))) {
		return (NULL);
	}
	errno = 0;
	n     = strtoull(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 ||
	    n > max) {
		snprintf(msg, sizeof(msg), "%s: a number from 0 to %llu, not '%.40s'",
		    key, (unsigned long long) max, v);
		return (http_error(400, WEFT_EINVAL, msg));
	}
	*out = (uint64_t) n;
	return (NULL);
}

// http_route hands a control request (built on the stack, borrowed) to the
// thread that answers it, with the HTTP request as its reply target.
static void
http_route(weft_engine *e, nng_aio *aio, Weft__ControlRequest *cr,
    uint16_t ok_status)
{
	http_route_paged(e, aio, cr, ok_status, NULL, NULL);
}

// http_call_new makes the call that answers aio when the reply comes (see
// struct http_call): held by the route and by the aio.
static http_call *
http_call_new(nng_aio *aio, uint16_t ok_status, const http_page *page,
    http_fetch *fetch)
{
	http_call *h = weft_xalloc(sizeof(*h));

	memset(h, 0, sizeof(*h));
	h->aio       = aio;
	h->ok_status = ok_status;
	h->refs      = 2;
	h->page      = page;
	h->fetch     = fetch;
	nng_aio_defer(aio, call_cancel, h);
	return (h);
}

// http_route_paged is http_route for an answer that is a page (page,
// static: its shape), or an output read chunk by chunk (fetch, taken).
static void
http_route_paged(weft_engine *e, nng_aio *aio, Weft__ControlRequest *cr,
    uint16_t ok_status, const http_page *page, http_fetch *fetch)
{
	// Packed and unpacked: the receiver frees what protobuf-c
	// allocated, exactly as for a request from the control socket.
	http_send(e, cr, http_call_new(aio, ok_status, page, fetch));
}

// body_json parses the request body as a JSON object; NULL with err set.
static json_t *
body_json(nng_http_req *req, char *err, size_t errlen)
{
	void        *data;
	size_t       len;
	json_error_t je;
	json_t      *v;

	nng_http_req_get_data(req, &data, &len);
	if (len == 0) {
		snprintf(err, errlen, "request body is empty: send a JSON object");
		return (NULL);
	}
	v = json_loadb(data, len, 0, &je);
	if (v == NULL) {
		snprintf(err, errlen, "request body is not JSON: %s (line %d, "
		    "column %d)", je.text, je.line, je.column);
		return (NULL);
	}
	if (!json_is_object(v)) {
		snprintf(err, errlen, "request body must be a JSON object");
		json_decref(v);
		return (NULL);
	}
	return (v);
}

static nng_http_res *
api_post_run(weft_engine *e, nng_aio *aio, nng_http_req *req)
{
	Weft__ControlRequest cr = WEFT__CONTROL_REQUEST__INIT;
	weft_runreq          q;
	char                 err[512];
	json_t              *b = body_json(req, err, sizeof(err));

	if (b == NULL || !weft_runreq_from_json(&q, b, err, sizeof(err))) {
		json_decref(b);
		return (http_error(400, WEFT_EINVAL, err));
	}
	cr.req_case = WEFT__CONTROL_REQUEST__REQ_RUN;
	cr.run      = &q.rr;
	http_route(e, aio, &cr, 201);
	weft_runreq_fini(&q);
	json_decref(b);
	return (NULL);
}

// api_post_runs_batch answers POST /api/v1/runs/batch {"runs": [...]}: one
// RunBatchRequest for the items that make a run request (each the body
// of POST /api/v1/runs), so that one commit holds all their runs. An item
// that does not (not an object, a "definition" that is not a string)
// gets its error here, in its place: h->batch holds those, and
// http_batch_res puts the engine's answers for the others in between.
static nng_http_res *
api_post_runs_batch(weft_engine *e, nng_aio *aio, nng_http_req *req)
{
	Weft__ControlRequest  cr = WEFT__CONTROL_REQUEST__INIT;
	Weft__RunBatchRequest br = WEFT__RUN_BATCH_REQUEST__INIT;
	char                  err[512];
	json_t               *b = body_json(req, err, sizeof(err));
	json_t               *runs = json_object_get(b, "runs"), *item;
	json_t               *pre;
	weft_runreq          *qs;
	size_t                i, n = json_array_size(runs);
	http_call            *h;

	if (b == NULL) {
		return (http_error(400, WEFT_EINVAL, err));
	}
	if (!weft_query_fields(b, "runs", "a batch", err, sizeof(err))) {
		json_decref(b);
		return (http_error(400, WEFT_EINVAL, err));
	}
	if (!json_is_array(runs) || n == 0) {
		json_decref(b);
		return (http_error(400, WEFT_EINVAL,
		    "\"runs\" must be a non-empty array of run requests, each "
		    "like the body of POST /api/v1/runs"));
	}
	if (n > WEFT_WIRE_RUN_BATCH_MAX) {
		snprintf(err, sizeof(err),
		    "\"runs\" holds %zu runs, over the limit of %d per batch: "
		    "send them in several batches",
		    n, WEFT_WIRE_RUN_BATCH_MAX);
		json_decref(b);
		return (http_error(413, WEFT_ETOOBIG, err));
	}
	qs       = weft_xalloc(n * sizeof(*qs));
	br.runs  = weft_xalloc(n * sizeof(*br.runs));
	pre      = json_array();
	json_array_foreach (runs, i, item) {
		if (weft_runreq_from_json(&qs[i], item, err, sizeof(err))) {
			br.runs[br.n_runs++] = &qs[i].rr;
			json_array_append_new(pre, json_null());
		} else {
			json_array_append_new(pre,
			    json_pack("{s:I, s:s, s:s}", "index", (json_int_t) i,
			        "error", err, "code", weft_err_name(WEFT_EINVAL)));
		}
	}
	h = http_call_new(aio, 200, NULL, NULL);
	h->batch = pre;
	if (br.n_runs == 0) {
		// Nothing the engine could take: the answer is complete.
		call_finish(h, http_batch_res(h, NULL));
		call_rele(h);
	} else {
		cr.req_case  = WEFT__CONTROL_REQUEST__REQ_RUN_BATCH;
		cr.run_batch = &br;
		http_send(e, &cr, h);
	}
	for (i = 0; i < n; i++) {
		weft_runreq_fini(&qs[i]);
	}
	free(qs);
	free(br.runs);
	json_decref(b);
	return (NULL);
}

static nng_http_res *
api_post_definition(weft_engine *e, nng_aio *aio, nng_http_req *req)
{
	Weft__ControlRequest cr = WEFT__CONTROL_REQUEST__INIT;
	Weft__DefineRequest  dr = WEFT__DEFINE_REQUEST__INIT;
	void                *data;
	size_t               len;
	char                *text;

	nng_http_req_get_data(req, &data, &len);
	text               = weft_xstrndup(data, len);
	dr.definition_json = text;
	cr.req_case        = WEFT__CONTROL_REQUEST__REQ_DEFINE;
	cr.define          = &dr;
	http_route(e, aio, &cr, 201);
	free(text);
	return (NULL);
}

// http_time_arg reads an optional time parameter (RFC 3339, epoch ms, or
// an age such as 15m) into *out; false when it is there but unreadable.
static bool
http_time_arg(const char *uri, const char *key, uint64_t *out)
{
	char    v[64];
	int64_t t;

	if (!weft_query_get(uri, key, v, sizeof(v))) {
		return (true);
	}
	if (!weft_clock_parse_time(v, weft_clock_wall_ms(), &t) || t < 0) {
		return (false);
	}
	*out = (uint64_t) t;
	return (true);
}

// http_time_range reads the since and until parameters shared by the
// runs and events queries; an error response when either is unreadable.
static nng_http_res *
http_time_range(const char *uri, uint64_t *since, uint64_t *until)
{
	if (!http_time_arg(uri, "since", since) ||
	    !http_time_arg(uri, "until", until)) {
		return (http_error(400, WEFT_EINVAL,
		    "since/until: use RFC 3339, epoch ms, or an age like 15m"));
	}
	return (NULL);
}

// The names a value is checked against: the i-th of n.
static const char *
http_run_state_at(unsigned i)
{
	return (weft_run_state_name((enum weft_run_state) i));
}

static const char *
http_event_type_at(unsigned i)
{
	return (weft_event_name((enum weft_event_type) i));
}

// http_one_of refuses v (the parameter what) when it is none of the n
// names at(0..n-1), with them listed; NULL when it is one. The lists come
// from the run machine and common/event.h, so they cannot go stale.
static nng_http_res *
http_one_of(const char *what, const char *v, const char *(*at)(unsigned),
    unsigned n)
{
	const char *names[64];
	char        err[2048];

	_Static_assert(WEFT_EV_COUNT <= 64 && WEFT_RUN_NSTATES <= 64,
	    "http_one_of: names[] too small");
	for (unsigned i = 0; i < n; i++) {
		names[i] = at(i);
	}
	if (weft_query_one_of(what, v, names, n, err, sizeof(err))) {
		return (NULL);
	}
	return (http_error(400, WEFT_EINVAL, err));
}

// http_status_arg refuses a status filter that is not a run state; NULL
// when status is empty or a state.
static nng_http_res *
http_status_arg(const char *status)
{
	return (status[0] == '\0' ? NULL
	                          : http_one_of("status", status,
	                                http_run_state_at, WEFT_RUN_NSTATES));
}

// api_events translates the event-log filters of the query string.
static nng_http_res *
api_events(weft_engine *e, nng_aio *aio, const char *uri)
{
	Weft__ControlRequest cr = WEFT__CONTROL_REQUEST__INIT;
	Weft__EventsRequest  er = WEFT__EVENTS_REQUEST__INIT;
	nng_http_res        *res;
	char   run[64] = "", step[160] = "", node[128] = "", text[256] = "";
	char   types[1024] = "";
	char  *tv[32];
	size_t nt = 0;

	weft_query_get(uri, "run", run, sizeof(run));
	weft_query_get(uri, "step", step, sizeof(step));
	weft_query_get(uri, "node", node, sizeof(node));
	weft_query_get(uri, "text", text, sizeof(text));
	er.run_id  = run;
	er.step_id = step;
	er.node    = node;
	er.text    = text;
	if (weft_query_get(uri, "type", types, sizeof(types))) {
		for (char *s = strtok(types, ","); s && nt < 32; s = strtok(NULL, ",")) {
			if ((res = http_one_of("type", s, http_event_type_at,
			         WEFT_EV_COUNT)) != NULL) {
				return (res);
			}
			tv[nt++] = s;
		}
	}
	er.types   = tv;
	er.n_types = nt;
	uint64_t limit = 0;
	if ((res = http_num_arg(uri, "after", INT64_MAX, &er.after)) != NULL ||
	    (res = http_num_arg(uri, "limit", WEFT_QUERY_MAX_LIMIT, &limit)) !=
	        NULL) {
		return (res);
	}
	er.limit = (uint32_t) limit;
	if ((res = http_time_range(uri, &er.since_ms, &er.until_ms)) != NULL) {
		return (res);
	}
	cr.req_case = WEFT__CONTROL_REQUEST__REQ_EVENTS;
	cr.events   = &er;
	http_route_paged(e, aio, &cr, 200, &http_events_page, NULL);
	return (NULL);
}

// The most tag filters a query takes (store.h: WEFT_RUNS_TAGS_MAX).
#define HTTP_TAGS_MAX 8

// http_tag_args collects every "tag" parameter (?tag=k=v&tag=k2=v2, each
// percent-decoded) into buf and v (HTTP_TAGS_MAX of them), *n the count;
// an error response naming the parameter when there are more. The engine
// checks each one's form.
static nng_http_res *
http_tag_args(const char *uri,
    char buf[][WEFT_TAG_KEY_MAX + WEFT_TAG_VALUE_MAX + 2], char **v,
    size_t *n)
{
	const char *q = strchr(uri, '?');

	*n = 0;
	while (q != NULL) {
		q++;
		if (strncmp(q, "tag=", 4) == 0) {
			if (*n == HTTP_TAGS_MAX) {
				return (http_error(400, WEFT_EINVAL,
				    "tag: at most 8 tag filters"));
			}
			// weft_query_get reads the first "tag" of what it is given.
			char one[8 + WEFT_TAG_KEY_MAX + WEFT_TAG_VALUE_MAX * 3];
			snprintf(one, sizeof(one), "?%.*s", (int) strcspn(q, "&"),
			    q);
			weft_query_get(one, "tag", buf[*n], sizeof(buf[0]));
			v[*n] = buf[*n];
			(*n)++;
		}
		q = strchr(q, '&');
	}
	return (NULL);
}

static nng_http_res *
api_runs(weft_engine *e, nng_aio *aio, const char *uri)
{
	Weft__ControlRequest cr = WEFT__CONTROL_REQUEST__INIT;
	Weft__RunsRequest    rr = WEFT__RUNS_REQUEST__INIT;
	nng_http_res        *res;
	char status[32] = "", def[160] = "", before[64] = "";
	char tagbuf[HTTP_TAGS_MAX][WEFT_TAG_KEY_MAX + WEFT_TAG_VALUE_MAX + 2];
	char *tagv[HTTP_TAGS_MAX];

	weft_query_get(uri, "status", status, sizeof(status));
	weft_query_get(uri, "definition", def, sizeof(def));
	weft_query_get(uri, "before", before, sizeof(before));
	if ((res = http_status_arg(status)) != NULL) {
		return (res);
	}
	rr.status     = status;
	rr.definition = def;
	rr.before     = before;
	if ((res = http_tag_args(uri, tagbuf, tagv, &rr.n_tags)) != NULL) {
		return (res);
	}
	rr.tags = tagv;
	uint64_t limit = 0;
	if ((res = http_num_arg(uri, "limit", WEFT_QUERY_MAX_LIMIT, &limit)) !=
	    NULL) {
		return (res);
	}
	rr.limit = (uint32_t) limit;
	if ((res = http_time_range(uri, &rr.since_ms, &rr.until_ms)) != NULL) {
		return (res);
	}
	cr.req_case = WEFT__CONTROL_REQUEST__REQ_RUNS;
	cr.runs     = &rr;
	http_route_paged(e, aio, &cr, 200, &http_runs_page, NULL);
	return (NULL);
}

// api_delete_runs handles DELETE /api/v1/runs?before=T&status=S: ended
// runs are deleted (operate role); the answer is {"deleted": N}.
static nng_http_res *
api_delete_runs(weft_engine *e, nng_aio *aio, const char *uri)
{
	Weft__ControlRequest    cr = WEFT__CONTROL_REQUEST__INIT;
	Weft__DeleteRunsRequest dr = WEFT__DELETE_RUNS_REQUEST__INIT;
	char                    status[32] = "", v[64];

	if (!weft_query_get(uri, "before", v, sizeof(v))) {
		return (http_error(400, WEFT_EINVAL,
		    "before: required (the runs that ended before it are "
		    "deleted): RFC 3339, epoch ms, or an age like 30d"));
	}
	if (!http_time_arg(uri, "before", &dr.before_ms) || dr.before_ms == 0) {
		return (http_error(400, WEFT_EINVAL,
		    "before: use RFC 3339, epoch ms, or an age like 30d"));
	}
	weft_query_get(uri, "status", status, sizeof(status));
	nng_http_res *res = http_status_arg(status);
	if (res != NULL) {
		return (res);
	}
	dr.status      = status;
	cr.req_case    = WEFT__CONTROL_REQUEST__REQ_DELETE_RUNS;
	cr.delete_runs = &dr;
	http_route(e, aio, &cr, 200);
	return (NULL);
}

// http_unescape percent-decodes the path segment s (n bytes) into out
// (len); false when it does not fit or is empty.
static bool
http_unescape(const char *s, size_t n, char *out, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (o + 1 >= len) {
			return (false);
		}
		if (s[i] == '%' && i + 2 < n && sscanf(s + i + 1, "%2x", &v) == 1) {
			out[o++] = (char) v;
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return (o > 0);
}

// api_output handles GET /api/v1/runs/{id}/output and
// /api/v1/runs/{id}/steps/{step}/output (what is left after the id in
// rest): the whole value, however large, read chunk by chunk. False when
// rest is no output path; otherwise *res is the answer, or NULL (routed).
static bool
api_output(weft_engine *e, nng_aio *aio, const char *method, const char *id,
    const char *rest, nng_http_res **res)
{
	http_fetch *f;
	const char *end;
	char        step[256] = "";

	if (strncmp(rest, "steps/", 6) == 0 &&
	    (end = strstr(rest + 6, "/output")) != NULL && end[7] == '\0') {
		if (!http_unescape(rest + 6, (size_t) (end - rest - 6), step,
		        sizeof(step))) {
			*res = http_error(404, WEFT_ENOENT, "no such step");
			return (true);
		}
	} else if (strcmp(rest, "output") != 0) {
		return (false);
	}
	if (strcmp(method, "GET") != 0) {
		*res = http_405("GET");
		return (true);
	}
	Weft__ControlRequest cr = WEFT__CONTROL_REQUEST__INIT;
	Weft__OutputRequest  oreq = WEFT__OUTPUT_REQUEST__INIT;
	f = weft_xalloc(sizeof(*f));
	f->e = e;
	snprintf(f->run, sizeof(f->run), "%s", id);
	snprintf(f->step, sizeof(f->step), "%s", step);
	oreq.run_id   = f->run;
	oreq.step_id  = f->step;
	cr.req_case = WEFT__CONTROL_REQUEST__REQ_OUTPUT;
	cr.output   = &oreq;
	http_route_paged(e, aio, &cr, 200, NULL, f);
	*res = NULL;
	return (true);
}

// api_status handles GET /api/v1/runs/{id}?steps_after=&steps_limit=.
static nng_http_res *
api_status(weft_engine *e, nng_aio *aio, const char *uri, char *id)
{
	Weft__ControlRequest cr = WEFT__CONTROL_REQUEST__INIT;
	Weft__StatusRequest  sr = WEFT__STATUS_REQUEST__INIT;
	nng_http_res        *res;
	char                 after[256] = "";
	uint64_t             limit      = 0;

	if ((res = http_num_arg(uri, "steps_limit", WEFT_QUERY_MAX_LIMIT,
	         &limit)) != NULL) {
		return (res);
	}
	if (weft_query_get(uri, "steps_after", after, sizeof(after)) &&
	    after[0] == '\0') {
		return (http_error(400, WEFT_EINVAL,
		    "steps_after: a step id (the next_after of the page before)"));
	}
	sr.run_id      = id;
	sr.steps_after = after;
	sr.steps_limit = (uint32_t) limit;
	cr.req_case    = WEFT__CONTROL_REQUEST__REQ_STATUS;
	cr.status      = &sr;
	http_route(e, aio, &cr, 200);
	return (NULL);
}

// api_signal handles POST /api/v1/runs/{id}/signals/{name}[?reject=true]:
// the body (any JSON value; empty for {}) is the signal's data. The
// engine checks the data and answers; this only routes it.
static nng_http_res *
api_signal(weft_engine *e, nng_aio *aio, nng_http_req *req, const char *uri,
    char *id, const char *rest)
{
	Weft__ControlRequest cr = WEFT__CONTROL_REQUEST__INIT;
	Weft__SignalRequest  sr = WEFT__SIGNAL_REQUEST__INIT;
	char                 name[160], reject[16] = "false";
	void                *data;
	size_t               len;
	char                *text;

	if (strcmp(nng_http_req_get_method(req), "POST") != 0) {
		return (http_405("POST"));
	}
	if (!http_unescape(rest, strlen(rest), name, sizeof(name)) ||
	    name[0] == '\0' || strchr(name, '/') != NULL) {
		return (http_error(400, WEFT_EINVAL,
		    "signal name: must be 1-128 characters of A-Z a-z 0-9 _ . -"));
	}
	weft_query_get(uri, "reject", reject, sizeof(reject));
	if (strcmp(reject, "true") != 0 && strcmp(reject, "false") != 0 &&
	    strcmp(reject, "1") != 0 && strcmp(reject, "0") != 0) {
		return (http_error(400, WEFT_EINVAL,
		    "reject: true or false (query parameter)"));
	}
	nng_http_req_get_data(req, &data, &len);
	text = weft_xalloc(len + 1);
	memcpy(text, data, len);
	text[len] = '\0';
	if (strlen(text) != len) {
		free(text);
		return (http_error(400, WEFT_EINVAL,
		    "signal data: the body holds a NUL byte"));
	}
	sr.run_id    = id;
	sr.name      = name;
	sr.data_json = text;
	sr.reject    = reject[0] == 't' || reject[0] == '1';
	cr.req_case  = WEFT__CONTROL_REQUEST__REQ_SIGNAL;
	cr.signal    = &sr;
	http_route(e, aio, &cr, 200);
	free(text);
	return (NULL);
}

// api_retry_from routes a retry (cr, lr: built by api_run) with the
// body's "from" when there is a body: {"from": "STEP"} retries the run
// from that step; an empty body (or {}) retries it whole.
static nng_http_res *
api_retry_from(weft_engine *e, nng_aio *aio, nng_http_req *req,
    Weft__ControlRequest *cr, Weft__LifecycleRequest *lr)
{
	void   *data;
	size_t  len;
	char    err[512];
	json_t *b = NULL, *from;

	nng_http_req_get_data(req, &data, &len);
	if (len > 0 && (b = body_json(req, err, sizeof(err))) == NULL) {
		return (http_error(400, WEFT_EINVAL, err));
	}
	if (b != NULL &&
	    !weft_query_fields(b, "from", "a retry", err, sizeof(err))) {
		json_decref(b);
		return (http_error(400, WEFT_EINVAL, err));
	}
	from = json_object_get(b, "from");
	if (from != NULL && (!json_is_string(from) ||
	                        json_string_length(from) == 0)) {
		json_decref(b);
		return (http_error(400, WEFT_EINVAL,
		    "from: the id of a step of the run (a string)"));
	}
	lr->from = from != NULL ? (char *) json_string_value(from) : "";
	http_route(e, aio, cr, 200);
	json_decref(b);
	return (NULL);
}

// api_run handles /api/v1/runs/{id} and /api/v1/runs/{id}/{action}.
static nng_http_res *
api_run(weft_engine *e, nng_aio *aio, nng_http_req *req, const char *method,
    const char *uri, const char *rest)
{
	Weft__ControlRequest   cr = WEFT__CONTROL_REQUEST__INIT;
	Weft__LifecycleRequest lr = WEFT__LIFECYCLE_REQUEST__INIT;
	char                   id[64], action[32] = "";
	const char            *slash = strchr(rest, '/');
	size_t                 idlen = slash ? (size_t) (slash - rest) : strlen(rest);

	if (idlen == 0 || idlen >= sizeof(id)) {
		return (http_error(404, WEFT_ENOENT, "no such run"));
	}
	memcpy(id, rest, idlen);
	id[idlen] = '\0';
	if (slash != NULL) {
		nng_http_res *res;
		if (api_output(e, aio, method, id, slash + 1, &res)) {
			return (res); // NULL: routed
		}
		if (strncmp(slash + 1, "signals/", 8) == 0) {
			return (api_signal(e, aio, req, uri, id, slash + 9));
		}
		snprintf(action, sizeof(action), "%s", slash + 1);
	}
	if (action[0] == '\0') {
		if (strcmp(method, "GET") != 0) {
			return (http_405("GET"));
		}
		return (api_status(e, aio, uri, id));
	} else {
		if (strcmp(method, "POST") != 0) {
			return (http_405("POST"));
		}
		lr.run_id    = id;
		lr.action    = action;
		cr.req_case  = WEFT__CONTROL_REQUEST__REQ_LIFECYCLE;
		cr.lifecycle = &lr;
		if (strcmp(action, "retry") == 0) {
			// POST .../retry {"from": STEP}: retry from a step.
			return (api_retry_from(e, aio, req, &cr, &lr));
		}
	}
	http_route(e, aio, &cr, 200);
	return (NULL);
}

// api_simple routes the requests that carry no parameters.
static bool
api_simple(weft_engine *e, nng_aio *aio, const char *method, const char *path)
{
	Weft__ControlRequest cr = WEFT__CONTROL_REQUEST__INIT;
	Weft__InfoRequest    ir = WEFT__INFO_REQUEST__INIT;
	Weft__WorkersRequest wr = WEFT__WORKERS_REQUEST__INIT;
	Weft__DefinitionsRequest dr = WEFT__DEFINITIONS_REQUEST__INIT;

	if (strcmp(method, "GET") != 0) {
		return (false);
	}
	if (strcmp(path, "/api/v1/info") == 0) {
		cr.req_case = WEFT__CONTROL_REQUEST__REQ_INFO;
		cr.info     = &ir;
	} else if (strcmp(path, "/api/v1/workers") == 0) {
		cr.req_case = WEFT__CONTROL_REQUEST__REQ_WORKERS;
		cr.workers  = &wr;
	} else if (strcmp(path, "/api/v1/definitions") == 0) {
		cr.req_case    = WEFT__CONTROL_REQUEST__REQ_DEFINITIONS;
		cr.definitions = &dr;
	} else {
		return (false);
	}
	http_route(e, aio, &cr, 200);
	return (true);
}

// api_meta answers GET /api/v1/meta from the lists compiled in: the event
// types (common/event.h) with their scope, terminal flag and projections,
// and the step and run states, so the dashboard need not copy them. They
// never change while the process runs: no engine or store round trip.
static nng_http_res *
api_meta(void)
{
	json_t *types = json_array(), *steps = json_array();
	json_t *runs  = json_array();

	for (unsigned i = 0; i < WEFT_EV_COUNT; i++) {
		enum weft_event_type t = (enum weft_event_type) i;
		json_array_append_new(types,
		    json_pack("{s:s, s:s, s:b, s:s?, s:s?}", "name",
		        weft_event_name(t), "scope",
		        weft_event_scope_name(weft_event_scope(t)), "terminal",
		        (int) weft_event_terminal(t), "step_status",
		        weft_event_step_status(t), "run_status",
		        weft_event_run_status(t)));
	}
	for (unsigned i = 0; i < WEFT_STEP_NSTATES; i++) {
		json_array_append_new(steps,
		    json_string(weft_step_state_name((enum weft_step_state) i)));
	}
	for (unsigned i = 0; i < WEFT_RUN_NSTATES; i++) {
		json_array_append_new(runs,
		    json_string(weft_run_state_name((enum weft_run_state) i)));
	}
	return (http_json(200,
	    json_pack("{s:o, s:o, s:o}", "event_types", types, "step_states",
	        steps, "run_states", runs)));
}

// api_schedule_body fills sr from a POST /api/v1/schedules body b
// (borrowed; sr's strings point into it, input and params into *in and
// *pa, malloc'd): {name, definition, cron, timezone?, input?, params?,
// overlap?, catchup?}. NULL, or a 400 naming the member that is wrong.
static nng_http_res *
api_schedule_body(json_t *b, Weft__ScheduleRequest *sr, char **in, char **pa)
{
	static const char *const strs[] = { "name", "definition", "cron",
		"timezone", "overlap", "catchup" };
	char **fields[] = { &sr->name, &sr->definition, &sr->cron,
		&sr->timezone, &sr->overlap, &sr->catchup };
	char   err[512];
	json_t *v;

	if (!weft_query_fields(b, "name,definition,cron,timezone,input,params,"
	        "overlap,catchup", "a schedule", err, sizeof(err))) {
		return (http_error(400, WEFT_EINVAL, err));
	}
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		v = json_object_get(b, strs[i]);
		if (v == NULL && i < 3) {
			snprintf(err, sizeof(err),
			    "schedule: \"%s\" is required", strs[i]);
			return (http_error(400, WEFT_EINVAL, err));
		}
		if (v != NULL && !json_is_string(v)) {
			snprintf(err, sizeof(err),
			    "schedule: \"%s\" must be a string", strs[i]);
			return (http_error(400, WEFT_EINVAL, err));
		}
		*fields[i] = v != NULL ? (char *) json_string_value(v) : "";
	}
	static const char *const objs[] = { "input", "params" };
	char **texts[] = { in, pa };
	for (size_t i = 0; i < 2; i++) {
		v = json_object_get(b, objs[i]);
		if (v != NULL && !json_is_object(v) && !json_is_null(v)) {
			snprintf(err, sizeof(err),
			    "schedule: \"%s\" must be a JSON object", objs[i]);
			return (http_error(400, WEFT_EINVAL, err));
		}
		*texts[i] = v != NULL && json_is_object(v)
		    ? json_dumps(v, JSON_COMPACT)
		    : weft_xstrdup("");
	}
	sr->input_json  = *in;
	sr->params_json = *pa;
	return (NULL);
}

// api_schedules handles /api/v1/schedules (GET list, POST create) and
// /api/v1/schedules/{name} (GET, DELETE) and .../{name}/{pause|resume|
// trigger} (POST): each one ScheduleRequest (engine/cron.c).
static nng_http_res *
api_schedules(weft_engine *e, nng_aio *aio, nng_http_req *req,
    const char *method, const char *rest)
{
	Weft__ControlRequest  cr = WEFT__CONTROL_REQUEST__INIT;
	Weft__ScheduleRequest sr = WEFT__SCHEDULE_REQUEST__INIT;
	char                  name[160] = "", action[16] = "", err[512];
	char                 *in = NULL, *pa = NULL;
	json_t               *b = NULL;
	nng_http_res         *res = NULL;
	uint16_t              ok = 200;

	if (rest[0] != '\0') {
		const char *slash = strchr(rest, '/');
		size_t      n = slash ? (size_t) (slash - rest) : strlen(rest);
		if (n == 0 || n >= sizeof(name) ||
		    (slash != NULL && strlen(slash + 1) >= sizeof(action))) {
			return (http_error(404, WEFT_ENOENT, "no such schedule"));
		}
		memcpy(name, rest, n);
		name[n] = '\0';
		if (slash != NULL) {
			snprintf(action, sizeof(action), "%s", slash + 1);
		}
	}
	cr.req_case = WEFT__CONTROL_REQUEST__REQ_SCHEDULE;
	cr.schedule = &sr;
	sr.name     = name;
	if (name[0] == '\0' && strcmp(method, "GET") == 0) {
		sr.action = "list";
	} else if (name[0] == '\0' && strcmp(method, "POST") == 0) {
		if ((b = body_json(req, err, sizeof(err))) == NULL) {
			return (http_error(400, WEFT_EINVAL, err));
		}
		if ((res = api_schedule_body(b, &sr, &in, &pa)) != NULL) {
			goto done;
		}
		sr.action = "create";
		ok        = 201;
	} else if (name[0] == '\0') {
		return (http_405("GET, POST"));
	} else if (action[0] == '\0' && strcmp(method, "GET") == 0) {
		sr.action = "get";
	} else if (action[0] == '\0' && strcmp(method, "DELETE") == 0) {
		sr.action = "delete";
	} else if (action[0] == '\0') {
		return (http_405("GET, DELETE"));
	} else if (strcmp(action, "pause") == 0 ||
	    strcmp(action, "resume") == 0 || strcmp(action, "trigger") == 0) {
		if (strcmp(method, "POST") != 0) {
			return (http_405("POST"));
		}
		sr.action = action;
	} else {
		return (http_error(404, WEFT_ENOENT,
		    "no such endpoint (a schedule's actions: pause, resume, "
		    "trigger)"));
	}
	http_route(e, aio, &cr, ok);
done:
	free(in);
	free(pa);
	json_decref(b);
	return (res);
}

// ---- POST /api/v1/runs/bulk/{action} ----
//
// One HTTP request, many BulkRequest chunks (engine/bulk.c): each answer
// is added to the report and the next chunk is asked for from its
// next_after, so the engine serves other requests between chunks. The
// report stops at HTTP_BULK_MAX runs; its next_after then says where a
// second request ("after") goes on.

#define HTTP_BULK_MAX 100000

typedef struct http_bulk {
	weft_engine *e;
	json_t      *body;    // the request's filters (owned; strings below
	                      // point into it)
	char         action[16];
	uint64_t     since_ms, until_ms;
	char        *tags[HTTP_TAGS_MAX];
	size_t       ntags;
	char         after[64];
	json_t      *results; // the report so far
	size_t       done, skipped, errors;
	bool         more;    // the last chunk named a next one
} http_bulk;

static void
http_bulk_free(http_bulk *b)
{
	if (b != NULL) {
		json_decref(b->body);
		json_decref(b->results);
		free(b);
	}
}

static const char *
http_bulk_str(const http_bulk *b, const char *key)
{
	const char *v = json_string_value(json_object_get(b->body, key));
	return (v != NULL ? v : "");
}

static void
http_bulk_next(http_call *h)
{
	Weft__ControlRequest cr = WEFT__CONTROL_REQUEST__INIT;
	Weft__BulkRequest    q  = WEFT__BULK_REQUEST__INIT;
	http_bulk           *b  = h->bulk;

	if (call_gone(h)) {
		return; // the client went away: stop here
	}
	q.action     = b->action;
	q.status     = (char *) http_bulk_str(b, "status");
	q.definition = (char *) http_bulk_str(b, "definition");
	q.since_ms   = b->since_ms;
	q.until_ms   = b->until_ms;
	q.tags       = b->tags;
	q.n_tags     = b->ntags;
	q.dry_run    = json_is_true(json_object_get(b->body, "dry_run"));
	q.after      = b->after;
	cr.req_case  = WEFT__CONTROL_REQUEST__REQ_BULK;
	cr.bulk      = &q;
	http_send(b->e, &cr, h);
}

// http_bulk_take adds one chunk's answer to the report; true when another
// chunk is to be asked for.
static bool
http_bulk_take(http_call *h, const Weft__ControlReply *rep)
{
	http_bulk  *b    = h->bulk;
	json_t     *body = json_loads(rep->body_json, 0, NULL);
	json_t     *r;
	size_t      i;
	const char *next = json_string_value(json_object_get(body, "next_after"));

	json_array_foreach (json_object_get(body, "results"), i, r) {
		const char *res = json_string_value(json_object_get(r, "result"));
		b->done += res != NULL && strcmp(res, "done") == 0;
		b->skipped += res != NULL && strcmp(res, "skipped") == 0;
		b->errors += res != NULL && strcmp(res, "error") == 0;
		json_array_append(b->results, r);
	}
	b->more = next != NULL;
	if (b->until_ms == 0) {
		b->until_ms = (uint64_t) json_integer_value(
		    json_object_get(body, "until_ms"));
	}
	snprintf(b->after, sizeof(b->after), "%s", next != NULL ? next : "");
	json_decref(body);
	return (b->more && json_array_size(b->results) < HTTP_BULK_MAX);
}

static nng_http_res *
http_bulk_res(http_call *h)
{
	http_bulk *b = h->bulk;

	return (http_json(200,
	    json_pack("{s:s, s:b, s:O, s:{s:I, s:I, s:I, s:I}, s:o}", "action",
	        b->action, "dry_run",
	        (int) json_is_true(json_object_get(b->body, "dry_run")),
	        "results", b->results, "summary", "matched",
	        (json_int_t) json_array_size(b->results), "done",
	        (json_int_t) b->done, "skipped", (json_int_t) b->skipped,
	        "errors", (json_int_t) b->errors, "next_after",
	        b->more ? json_string(b->after) : json_null())));
}

// http_bulk_time reads body member key (a string: RFC 3339, epoch ms or
// an age; or a number of epoch ms) into *out; false when malformed.
static bool
http_bulk_time(json_t *body, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(body, key);
	int64_t t;

	if (v == NULL || json_is_null(v)) {
		return (true);
	}
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t) json_integer_value(v);
		return (true);
	}
	if (!json_is_string(v) ||
	    !weft_clock_parse_time(json_string_value(v), weft_clock_wall_ms(),
	        &t) ||
	    t < 0) {
		return (false);
	}
	*out = (uint64_t) t;
	return (true);
}

// http_bulk_parse reads the body's filters into b; an error naming the
// field when one is malformed or unknown.
static nng_http_res *
http_bulk_parse(http_bulk *b)
{
	static const char *const known[] = { "status", "definition", "since",
		"until", "tag", "dry_run", "after" };
	const char *k;
	json_t     *v, *tag = json_object_get(b->body, "tag");
	char        msg[256];
	size_t      i;

	json_object_foreach (b->body, k, v) {
		bool ok = false;
		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
			ok = ok || strcmp(k, known[i]) == 0;
		}
		if (!ok) {
			snprintf(msg, sizeof(msg), "unknown field \"%.64s\" (the "
			    "filters: status, definition, since, until, tag; "
			    "and dry_run, after)", k);
			return (http_error(400, WEFT_EINVAL, msg));
		}
		if (strcmp(k, "dry_run") != 0 && strcmp(k, "tag") != 0 &&
		    strcmp(k, "since") != 0 && strcmp(k, "until") != 0 &&
		    !json_is_string(v)) {
			snprintf(msg, sizeof(msg), "%s: must be a string", k);
			return (http_error(400, WEFT_EINVAL, msg));
		}
	}
	v = json_object_get(b->body, "dry_run");
	if (v != NULL && !json_is_boolean(v)) {
		return (http_error(400, WEFT_EINVAL, "dry_run: true or false"));
	}
	if (!http_bulk_time(b->body, "since", &b->since_ms) ||
	    !http_bulk_time(b->body, "until", &b->until_ms)) {
		return (http_error(400, WEFT_EINVAL,
		    "since/until: use RFC 3339, epoch ms, or an age like 15m"));
	}
	if (json_is_string(tag)) {
		b->tags[b->ntags++] = (char *) json_string_value(tag);
	} else if (json_is_array(tag) && json_array_size(tag) <= HTTP_TAGS_MAX) {
		json_array_foreach (tag, i, v) {
			if (!json_is_string(v)) {
				return (http_error(400, WEFT_EINVAL,
				    "tag: \"key=value\" or a list of them"));
			}
			b->tags[b->ntags++] = (char *) json_string_value(v);
		}
	} else if (tag != NULL) {
		return (http_error(400, WEFT_EINVAL,
		    "tag: \"key=value\" or a list of at most 8 of them"));
	}
	snprintf(b->after, sizeof(b->after), "%s", http_bulk_str(b, "after"));
	return (NULL);
}

// api_bulk handles POST /api/v1/runs/bulk/{action} {filters}: a report
// per run, {"action", "dry_run", "results": [{"run", "result",
// "reason"}], "summary": {"matched", "done", "skipped", "errors"},
// "next_after"}.
static nng_http_res *
api_bulk(weft_engine *e, nng_aio *aio, nng_http_req *req, const char *action)
{
	char          err[512];
	http_bulk    *b;
	http_call    *h;
	nng_http_res *res;
	json_t       *body = body_json(req, err, sizeof(err));

	if (body == NULL) {
		return (http_error(400, WEFT_EINVAL, err));
	}
	if (strlen(action) >= sizeof(b->action)) {
		json_decref(body);
		return (http_error(404, WEFT_ENOENT,
		    "no such bulk action (use cancel, pause, resume or retry)"));
	}
	b = weft_xalloc(sizeof(*b));
	memset(b, 0, sizeof(*b));
	b->e       = e;
	b->body    = body;
	b->results = json_array();
	snprintf(b->action, sizeof(b->action), "%s", action);
	if ((res = http_bulk_parse(b)) != NULL) {
		http_bulk_free(b);
		return (res);
	}
	h       = http_call_new(aio, 200, NULL, NULL);
	h->bulk = b;
	http_bulk_next(h);
	return (NULL);
}

// api_definition handles GET /api/v1/definitions/{name} (its versions)
// and /api/v1/definitions/{name}/versions/{n} (one version's body).
static nng_http_res *
api_definition(weft_engine *e, nng_aio *aio, const char *rest)
{
	Weft__ControlRequest    cr = WEFT__CONTROL_REQUEST__INIT;
	Weft__DefinitionRequest dr = WEFT__DEFINITION_REQUEST__INIT;
	char                    name[256];
	const char             *slash = strchr(rest, '/');
	size_t                  n = slash ? (size_t) (slash - rest) : strlen(rest);
	char                   *end;
	unsigned long           v = 0;

	if (!http_unescape(rest, n, name, sizeof(name)) || name[0] == '\0') {
		return (http_error(404, WEFT_ENOENT, "no such definition"));
	}
	if (slash != NULL) {
		if (strncmp(slash, "/versions/", 10) != 0) {
			return (http_error(404, WEFT_ENOENT, "no such endpoint"));
		}
		errno = 0;
		v     = strtoul(slash + 10, &end, 10);
		if (slash[10] < '1' || slash[10] > '9' || *end != '\0' ||
		    errno != 0 || v > UINT32_MAX) {
			return (http_error(400, WEFT_EINVAL,
			    "version: a whole number from 1 (in the path "
			    ".../versions/{n})"));
		}
	}
	dr.name        = name;
	dr.version     = (uint32_t) v;
	cr.req_case    = WEFT__CONTROL_REQUEST__REQ_DEFINITION;
	cr.definition  = &dr;
	http_route(e, aio, &cr, 200);
	return (NULL);
}

// http_params_of returns the query parameters a request for path takes
// (comma-separated, "" for none): any other one is refused, so that a
// misspelt filter (?stauts=failed) is an error, not every run.
static const char *
http_params_of(const char *method, const char *path)
{
	bool        get = strcmp(method, "GET") == 0;
	const char *slash;

	if (strcmp(path, "/api/v1/runs") == 0) {
		return (get ? "status,definition,before,tag,limit,since,until"
		            : strcmp(method, "DELETE") == 0 ? "before,status"
		                                            : "");
	}
	if (get && strcmp(path, "/api/v1/events") == 0) {
		return ("run,step,node,text,type,after,limit,since,until");
	}
	if (strncmp(path, "/api/v1/runs/", 13) == 0) {
		slash = strchr(path + 13, '/');
		if (get && slash == NULL) {
			return ("steps_after,steps_limit");
		}
		if (slash != NULL && strncmp(slash, "/signals/", 9) == 0) {
			return ("reject");
		}
	}
	return ("");
}

// http_methods_of returns the methods a path of the API takes (the Allow
// header of a 405), or NULL for the paths whose handlers say it
// themselves (a run, a schedule: it depends on what follows the id).
static const char *
http_methods_of(const char *path)
{
	static const struct {
		const char *path;
		const char *allow;
	} fixed[] = {
		{ "/api/v1/info", "GET" },
		{ "/api/v1/workers", "GET" },
		{ "/api/v1/meta", "GET" },
		{ "/api/v1/events", "GET" },
		{ "/api/v1/definitions", "GET, POST" },
		{ "/api/v1/runs", "GET, POST, DELETE" },
	};

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (strcmp(path, fixed[i].path) == 0) {
			return (fixed[i].allow);
		}
	}
	return (NULL);
}

// http_path copies the path of uri (no query, no trailing slashes) into
// path (len bytes); false when it does not fit.
static bool
http_path(const char *uri, char *path, size_t len)
{
	size_t plen = strcspn(uri, "?");

	if (plen >= len) {
		return (false);
	}
	memcpy(path, uri, plen);
	path[plen] = '\0';
	while (plen > 1 && path[plen - 1] == '/') {
		path[--plen] = '\0';
	}
	return (true);
}

// http_allows says whether method is one of allow ("GET, POST").
static bool
http_allows(const char *allow, const char *method)
{
	size_t n = strlen(method);

	for (const char *a = allow; *a != '\0'; a += strspn(a, ", ")) {
		size_t k = strcspn(a, ", ");
		if (k == n && strncmp(a, method, n) == 0) {
			return (true);
		}
		a += k;
	}
	return (false);
}

static nng_http_res *
api_dispatch(weft_engine *e, nng_aio *aio, nng_http_req *req)
{
	const char *method = nng_http_req_get_method(req);
	const char *uri    = nng_http_req_get_uri(req);
	const char *allow;
	char        path[512];

	if (!http_path(uri, path, sizeof(path))) {
		return (http_error(414, WEFT_EINVAL, "URI too long"));
	}
	// HEAD is GET without the body (nng drops it): the same answer.
	if (strcmp(method, "HEAD") == 0) {
		method = "GET";
	}
	// The handler takes every method (nng would answer a wrong one with
	// its HTML page): the ones a path does not take are refused here.
	if ((allow = http_methods_of(path)) != NULL &&
	    !http_allows(allow, method)) {
		return (http_405(allow));
	}
	if (api_simple(e, aio, method, path)) {
		return (NULL);
	}
	if (strcmp(path, "/api/v1/definitions") == 0 && strcmp(method, "POST") == 0) {
		return (api_post_definition(e, aio, req));
	}
	if (strcmp(path, "/api/v1/runs") == 0 &&
	    strcmp(method, "DELETE") == 0) {
		return (api_delete_runs(e, aio, uri));
	}
	if (strcmp(path, "/api/v1/runs") == 0) {
		return (strcmp(method, "POST") == 0 ? api_post_run(e, aio, req)
		                                    : api_runs(e, aio, uri));
	}
	if (strcmp(path, "/api/v1/runs/batch") == 0) {
		return (strcmp(method, "POST") == 0
		        ? api_post_runs_batch(e, aio, req)
		        : http_405("POST"));
	}
	if (strncmp(path, "/api/v1/runs/bulk/", 18) == 0) {
		return (strcmp(method, "POST") == 0
		        ? api_bulk(e, aio, req, path + 18)
		        : http_405("POST"));
	}
	if (strncmp(path, "/api/v1/definitions/", 20) == 0) {
		return (strcmp(method, "GET") == 0
		        ? api_definition(e, aio, path + 20)
		        : http_405("GET"));
	}
	if (strncmp(path, "/api/v1/runs/", 13) == 0) {
		return (api_run(e, aio, req, method, uri, path + 13));
	}
	if (strcmp(path, "/api/v1/events") == 0 && strcmp(method, "GET") == 0) {
		return (api_events(e, aio, uri));
	}
	if (strcmp(path, "/api/v1/meta") == 0 && strcmp(method, "GET") == 0) {
		return (api_meta());
	}
	if (strcmp(path, "/api/v1/schedules") == 0 ||
	    strncmp(path, "/api/v1/schedules/", 18) == 0) {
		return (api_schedules(e, aio, req, method,
		    path[17] == '/' ? path + 18 : ""));
	}
	return (http_error(404, WEFT_ENOENT, "no such endpoint"));
}

// ---- browser protections ----
//
// Always on, also on loopback: a page from another site must not be able
// to drive the API through the operator's browser.
// - Host must name this server (DNS rebinding: evil.example resolving to
//   127.0.0.1 reaches us with Host: evil.example): the --http host, the
//   loopback names when --http is on loopback, or --http-allow-host.
// - A state-changing request must say Content-Type: application/json (a
//   cross-site form or text/plain POST cannot, without a preflight we do
//   not answer) and carry no Origin, or ours (CSRF).

// http_host_part copies the host of a Host header or HOST:PORT ("[::1]:80"
// -> "::1"... kept bracketed, "a.b:80" -> "a.b") into out.
static void
http_host_part(const char *hp, char *out, size_t len)
{
	const char *end;

	if (hp[0] == '[') {
		end = strchr(hp, ']');
		end = end != NULL ? end + 1 : hp + strlen(hp);
	} else {
		end = strrchr(hp, ':');
		end = end != NULL ? end : hp + strlen(hp);
	}
	snprintf(out, len, "%.*s", (int) (end - hp), hp);
}

static bool
http_host_is_loopback(const char *h)
{
	return (strncmp(h, "127.", 4) == 0 || strcmp(h, "localhost") == 0 ||
	    strcmp(h, "[::1]") == 0);
}

// http_host_ok says whether the request's Host names this server.
static bool
http_host_ok(const weft_server *s, const char *host)
{
	char        want[256], got[256];
	const char *list = s->e->cfg.http_allow_host;

	if (host == NULL) {
		return (false);
	}
	http_host_part(host, got, sizeof(got));
	http_host_part(s->http_addr, want, sizeof(want));
	if (strcasecmp(got, want) == 0 ||
	    (http_host_is_loopback(want) && http_host_is_loopback(got))) {
		return (true);
	}
	while (list != NULL && *list != '\0') {
		size_t n = strcspn(list, ",");
		if (n == strlen(got) && strncasecmp(list, got, n) == 0) {
			return (true);
		}
		list += n + (list[n] == ',');
	}
	return (false);
}

// http_port_of returns the port of HOST[:PORT] ("[::1]:80"), or dflt.
static int
http_port_of(const char *hp, int dflt)
{
	const char *rb = hp[0] == '[' ? strchr(hp, ']') : NULL;
	const char *colon = strrchr(rb != NULL ? rb : hp, ':');

	return (colon != NULL ? atoi(colon + 1) : dflt);
}

// io_http_origin_ok: an Origin is ours when it is this server under any
// name it answers to (http_host_ok: the --http host, the loopback names
// on loopback, --http-allow-host) on its port. A page opened as
// http://localhost:PORT reaches the stream at the --http address, so the
// Origin need not name the same host as the Host header.
bool
io_http_origin_ok(const weft_server *s, const char *origin)
{
	const char *scheme = s->https ? "https://" : "http://";
	size_t      n      = strlen(scheme);
	const char *hp;

	if (strncasecmp(origin, scheme, n) != 0) {
		return (false);
	}
	hp = origin + n;
	if (hp[0] == '\0' || strpbrk(hp, "/?#@") != NULL ||
	    !http_host_ok(s, hp)) {
		return (false);
	}
	return (http_port_of(hp, s->https ? 443 : 80) ==
	    http_port_of(s->http_addr, -1));
}

// http_guard returns the refusal for a request that fails the browser
// protections, or NULL.
static nng_http_res *
http_guard(const weft_server *s, nng_http_req *req)
{
	const char *host   = nng_http_req_get_header(req, "Host");
	const char *method = nng_http_req_get_method(req);
	const char *origin, *type;

	if (!http_host_ok(s, host)) {
		return (http_error(403, WEFT_EINVAL,
		    "Host not served here: use the address the server listens "
		    "on, or add the name with --http-allow-host"));
	}
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
		return (NULL);
	}
	origin = nng_http_req_get_header(req, "Origin");
	if (origin != NULL && !io_http_origin_ok(s, origin)) {
		return (http_error(403, WEFT_EINVAL,
		    "cross-origin request refused"));
	}
	type = nng_http_req_get_header(req, "Content-Type");
	if (type == NULL || strncasecmp(type, "application/json", 16) != 0 ||
	    (type[16] != '\0' && type[16] != ';')) {
		return (http_error(415, WEFT_EINVAL,
		    "a request that changes state must have Content-Type: "
		    "application/json"));
	}
	return (NULL);
}

// ---- API tokens and the dashboard's login ----
//
// With --api-tokens, every request under /api/v1 but login, logout and
// whoami needs a Bearer token or a session cookie: read for GET, operate
// for the rest. The browser protections above apply first, to these too.

static nng_http_res *
http_unauthorized(const char *msg)
{
	nng_http_res *res = http_error(401, WEFT_EAUTH, msg);
	nng_http_res_set_header(res, "WWW-Authenticate", "Bearer realm=\"weft\"");
	return (res);
}

// http_auth returns the refusal for a request its caller may not make
// (needing role need), or NULL; *who gets the caller.
static nng_http_res *
http_auth(weft_server *s, nng_http_req *req, enum weft_role need,
    io_ident *who)
{
	enum weft_role got = io_auth_headers(s,
	    nng_http_req_get_header(req, "Authorization"),
	    nng_http_req_get_header(req, "Cookie"), who);

	if (got == WEFT_ROLE_NONE) {
		return (http_unauthorized("an API token is needed: send "
		                          "Authorization: Bearer TOKEN, or log in"));
	}
	if (got < need) {
		return (http_error(403, WEFT_EAUTH,
		    "this request needs the operate role; this token may only "
		    "read"));
	}
	return (NULL);
}

static nng_http_res *
api_whoami(weft_server *s, nng_http_req *req)
{
	io_ident who;
	bool     on = io_auth_on(s);

	io_auth_headers(s, nng_http_req_get_header(req, "Authorization"),
	    nng_http_req_get_header(req, "Cookie"), &who);
	return (http_json(200,
	    json_pack("{s:b, s:s?, s:s?, s:s?}", "auth", on, "name",
	        on && who.role != WEFT_ROLE_NONE ? who.name : NULL, "role",
	        on && who.role != WEFT_ROLE_NONE ? weft_role_name(who.role)
	                                         : NULL,
	        "via", on ? who.via : NULL)));
}

static nng_http_res *
api_login(weft_server *s, nng_http_req *req)
{
	char              err[256], id[65], cookie[160];
	json_t           *b;
	json_t           *tok;
	const weft_token *t = NULL;
	nng_http_res     *res;

	if (!io_auth_on(s)) {
		return (http_error(400, WEFT_EINVAL,
		    "API tokens are off here: there is nothing to log in to"));
	}
	if ((b = body_json(req, err, sizeof(err))) == NULL) {
		return (http_error(400, WEFT_EINVAL, err));
	}
	if (!weft_query_fields(b, "token", "a login", err, sizeof(err))) {
		json_decref(b);
		return (http_error(400, WEFT_EINVAL, err));
	}
	tok = json_object_get(b, "token");
	if (json_is_string(tok)) {
		t = weft_tokens_find(&s->tokens, json_string_value(tok),
		    json_string_length(tok));
	}
	json_decref(b);
	if (t == NULL) {
		weft_log_info("AUTH-LOGIN", "refused: unknown token");
		return (http_unauthorized("unknown token"));
	}
	io_session_new(s, t, id);
	weft_log_info("AUTH-LOGIN", "name=%s role=%s", t->name,
	    weft_role_name(t->role));
	res = http_json(200, json_pack("{s:s, s:s}", "name", t->name, "role",
	                         weft_role_name(t->role)));
	// HttpOnly: no script sees it. SameSite=Strict: no other site's page
	// sends it. Secure once the server speaks TLS (s->https).
	snprintf(cookie, sizeof(cookie),
	    "weft_session=%s; HttpOnly; SameSite=Strict; Path=/%s", id,
	    s->https ? "; Secure" : "");
	sodium_memzero(id, sizeof(id));
	nng_http_res_set_header(res, "Set-Cookie", cookie);
	sodium_memzero(cookie, sizeof(cookie));
	return (res);
}

static nng_http_res *
api_logout(weft_server *s, nng_http_req *req)
{
	const char   *cookies = nng_http_req_get_header(req, "Cookie");
	const char   *id;
	size_t        len;
	nng_http_res *res;

	if (cookies != NULL && io_auth_cookie(cookies, &id, &len)) {
		io_session_drop(s, id, len);
	}
	res = http_json(200, json_pack("{s:b}", "ok", 1));
	nng_http_res_set_header(res, "Set-Cookie",
	    "weft_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
	return (res);
}

// api_open_path says which of login, logout and whoami (the requests that
// need no token) uri is: 1, 2, 3; 0 for none.
static int
api_open_path(const char *uri)
{
	static const char *const open[] = { "/api/v1/login", "/api/v1/logout",
		"/api/v1/whoami" };
	size_t plen = strcspn(uri, "?");

	for (int i = 0; i < 3; i++) {
		if (plen == strlen(open[i]) && strncmp(uri, open[i], plen) == 0) {
			return (i + 1);
		}
	}
	return (0);
}

static bool
api_open(nng_http_req *req)
{
	return (api_open_path(nng_http_req_get_uri(req)) != 0);
}

// api_open_route answers login, logout and whoami (api_open).
static nng_http_res *
api_open_route(weft_server *s, nng_http_req *req)
{
	bool post = strcmp(nng_http_req_get_method(req), "POST") == 0;

	switch (api_open_path(nng_http_req_get_uri(req))) {
	case 1:
		return (post ? api_login(s, req) : http_405("POST"));
	case 2:
		return (post ? api_logout(s, req) : http_405("POST"));
	default:
		return (strcmp(nng_http_req_get_method(req), "GET") == 0
		        ? api_whoami(s, req)
		        : http_405("GET"));
	}
}

// http_params_ok refuses a query parameter the request's path does not
// take (http_params_of), login, logout and whoami included; NULL when
// every one is known.
static nng_http_res *
http_params_ok(nng_http_req *req)
{
	const char *method = nng_http_req_get_method(req);
	const char *uri    = nng_http_req_get_uri(req);
	char        path[512], err[1024];

	if (strchr(uri, '?') == NULL || !http_path(uri, path, sizeof(path))) {
		return (NULL); // nothing to check; too long: api_dispatch's 414
	}
	if (weft_query_check(uri,
	        http_params_of(strcmp(method, "HEAD") == 0 ? "GET" : method,
	            path),
	        err, sizeof(err))) {
		return (NULL);
	}
	return (http_error(400, WEFT_EINVAL, err));
}

// ---- request bodies ----
//
// nng collects no body (http_add): every handler first answers what needs
// no body (Host and Origin, query parameters, method, authentication),
// then hands over to http_body_then, the one read path: it checks
// Content-Length against the request's cap and reads exactly that many
// bytes from the connection (input 2 of the handler's aio) into a buffer
// of that size. A body over the cap is then a JSON 413 before a byte of it
// is read, and a caller without a token can make the coordinator allocate
// at most HTTP_BODY_OPEN_MAX. An answer given while a body is still unread
// closes the connection: its bytes would be read as the next request.

// What a handler does once the body is in req (nng_http_req_get_data; the
// data is valid until it returns): its answer, or NULL when it routed the
// request (the aio is finished later).
typedef nng_http_res *(*http_body_fn)(
    weft_server *srv, nng_aio *aio, nng_http_req *req);

// A request whose body is being read.
typedef struct http_body {
	weft_server  *srv;
	nng_aio      *aio; // the handler's: finished with the answer
	nng_aio      *rd;  // the read
	nng_http_req *req;
	http_body_fn  then;
	void         *buf; // len bytes, the body
	size_t        len;
} http_body;

// http_reply finishes the handler's aio with res (taken); close: the
// connection closes after it (a body is left unread).
static void
http_reply(nng_aio *aio, nng_http_res *res, bool close)
{
	if (res == NULL) {
		nng_aio_finish(aio, NNG_ENOMEM); // nng closes the connection
		return;
	}
	if (close) {
		nng_http_res_set_header(res, "Connection", "close");
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

// http_body_pending says whether req announces a body (unread so far).
static bool
http_body_pending(nng_http_req *req)
{
	const char *cl = nng_http_req_get_header(req, "Content-Length");

	return (nng_http_req_get_header(req, "Transfer-Encoding") != NULL ||
	    (cl != NULL && strspn(cl, "0") != strlen(cl)));
}

// http_body_check reads the body's length into *len and refuses a body
// it cannot read: chunked (411), a Content-Length that is no number
// (400), one over cap (413 naming the limit); NULL when it may be read.
// No Content-Length is no body (RFC 9112 6.3: curl -X POST without -d).
static nng_http_res *
http_body_check(nng_http_req *req, size_t cap, size_t *len)
{
	const char *cl = nng_http_req_get_header(req, "Content-Length");
	char        msg[256];
	size_t      n;

	*len = 0;
	if (nng_http_req_get_header(req, "Transfer-Encoding") != NULL) {
		return (http_error(cl != NULL ? 400 : 411, WEFT_EINVAL,
		    "Transfer-Encoding: not read here; send the body with a "
		    "Content-Length"));
	}
	if (cl == NULL) {
		return (NULL);
	}
	n = strlen(cl);
	if (n == 0 || strspn(cl, "0123456789") != n) {
		snprintf(msg, sizeof(msg),
		    "Content-Length: a number of bytes, not '%.40s'", cl);
		return (http_error(400, WEFT_EINVAL, msg));
	}
	if (n > 18 || strtoull(cl, NULL, 10) > cap) {
		snprintf(msg, sizeof(msg),
		    "request body: %.40s bytes, over the limit of %zu bytes%s", cl,
		    cap,
		    cap == HTTP_BODY_MAX ? " (13 MiB)"
		                         : " for a request that needs no token");
		return (http_error(413, WEFT_ETOOBIG, msg));
	}
	*len = (size_t) strtoull(cl, NULL, 10);
	return (NULL);
}

static void
http_body_cb(void *arg)
{
	http_body    *b  = arg;
	int           rv = nng_aio_result(b->rd);
	nng_http_res *res;

	if (rv != 0) {
		// The connection closed (or the server stops) mid-body:
		// nobody to answer; nng closes it.
		nng_aio_finish(b->aio, rv);
	} else {
		// Borrowed by req: nng frees no data it was given (and
		// resets req before the next request).
		nng_http_req_set_data(b->req, b->buf, b->len);
		if ((res = b->then(b->srv, b->aio, b->req)) != NULL) {
			http_reply(b->aio, res, false);
		}
	}
	nng_aio_reap(b->rd);
	free(b->buf);
	free(b);
}

// http_body_then answers aio with res (taken) when it is not NULL, the
// body left unread; else it reads the body (at most cap bytes) and calls
// then, whose answer (when not NULL) it gives.
static void
http_body_then(weft_server *srv, nng_aio *aio, nng_http_req *req,
    nng_http_res *res, size_t cap, http_body_fn then)
{
	http_body *b;
	nng_iov    iov;
	size_t     len = 0;

	if (res == NULL) {
		res = http_body_check(req, cap, &len);
	}
	if (res != NULL) {
		http_reply(aio, res, http_body_pending(req));
		return;
	}
	if (len == 0) {
		if ((res = then(srv, aio, req)) != NULL) {
			http_reply(aio, res, false);
		}
		return;
	}
	b = weft_xalloc(sizeof(*b));
	memset(b, 0, sizeof(*b));
	b->srv  = srv;
	b->aio  = aio;
	b->req  = req;
	b->then = then;
	b->len  = len;
	b->buf  = weft_xalloc(len);
	if (nng_aio_alloc(&b->rd, http_body_cb, b) != 0) {
		free(b->buf);
		free(b);
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	iov.iov_buf = b->buf;
	iov.iov_len = len;
	nng_aio_set_iov(b->rd, 1, &iov);
	nng_http_conn_read_all(nng_aio_get_input(aio, 2), b->rd);
}

// api_body_done goes on with an API request once its body is in.
static nng_http_res *
api_body_done(weft_server *srv, nng_aio *aio, nng_http_req *req)
{
	if (api_open(req)) {
		return (api_open_route(srv, req));
	}
	return (api_dispatch(srv->e, aio, req));
}

static void
api_cb(nng_aio *aio)
{
	nng_http_req     *req  = nng_aio_get_input(aio, 0);
	nng_http_handler *h    = nng_aio_get_input(aio, 1);
	weft_server      *srv  = nng_http_handler_get_data(h);
	bool              open = api_open(req);
	const char       *method = nng_http_req_get_method(req);
	nng_http_res     *res  = http_guard(srv, req);
	io_ident          who;

	if (res == NULL) {
		res = http_params_ok(req);
	}
	// Authentication before the body: a caller without a token gets
	// its 401 without the coordinator reading (or allocating) it.
	if (res == NULL && !open) {
		res = http_auth(srv, req,
		    strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0
		        ? WEFT_ROLE_READ
		        : WEFT_ROLE_OPERATE,
		    &who);
	}
	http_body_then(srv, aio, req, res,
	    open ? HTTP_BODY_OPEN_MAX : HTTP_BODY_MAX, api_body_done);
}

// ---- health and metrics ----

// health_answer answers /health once its body (none is taken) is read.
static nng_http_res *
health_answer(weft_server *srv, nng_aio *aio, nng_http_req *req)
{
	weft_engine *e = srv->e;
	char         why[600];
	bool         ok = engine_store_error(e, why, sizeof(why));

	(void) aio;
	(void) req;
	// store_error says why while the store is unavailable (a full disk,
	// a deleted file, PostgreSQL not up yet), null while it works.
	return (http_json(ok ? 200 : 503,
	    json_pack("{s:b, s:b, s:s, s:I, s:b, s:b, s:o}", "ok", ok,
	        "store_ok", ok, "name", e->node, "workers_alive",
	        (json_int_t) atomic_load(&e->metrics.workers_alive), "auth",
	        io_auth_on(srv), "insecure", srv->insecure, "store_error",
	        ok ? json_null() : json_string(why))));
}

static void
health_cb(nng_aio *aio)
{
	nng_http_req     *req = nng_aio_get_input(aio, 0);
	nng_http_handler *h   = nng_aio_get_input(aio, 1);
	weft_server      *srv = nng_http_handler_get_data(h);

	// No parameter is taken: ?bogus=1 is a 400, as on the API.
	http_body_then(srv, aio, req, http_params_ok(req), HTTP_BODY_OPEN_MAX,
	    health_answer);
}

static int
metrics_runs_row(void *arg, int ncols, const char **c)
{
	if (ncols >= 2 && c[0] != NULL) {
		fprintf(arg, "weft_runs{status=\"%s\"} %s\n", c[0], c[1] ? c[1] : "0");
	}
	return (0);
}

// metrics_label writes v as a Prometheus label value (quoted, escaped).
static void
metrics_label(FILE *f, const char *name, const char *v)
{
	fprintf(f, "%s=\"", name);
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"') {
			fprintf(f, "\\%c", *v);
		} else if (*v == '\n') {
			fputs("\\n", f);
		} else {
			fputc(*v, f);
		}
	}
	fputc('"', f);
}

// metrics_limit writes the three gauges of one limit (o: {"running",
// "limit", "waiting"}); labels is written by the caller's fn.
static void
metrics_limit(FILE *f, const json_t *o, const char *kind, const char *l1,
    const char *v1, const char *l2, const char *v2)
{
	static const char *const what[] = { "running", "limit", "waiting" };

	for (size_t k = 0; k < 3; k++) {
		json_t *v = json_object_get(o, what[k]);
		if (!json_is_integer(v)) {
			continue; // no limit of its own (a key's, shown once)
		}
		fprintf(f, "weft_limit_%s{", what[k]);
		metrics_label(f, "limit", kind);
		if (l1 != NULL) {
			fputc(',', f);
			metrics_label(f, l1, v1);
		}
		if (l2 != NULL) {
			fputc(',', f);
			metrics_label(f, l2, v2);
		}
		fprintf(f, "} %" JSON_INTEGER_FORMAT "\n", json_integer_value(v));
	}
}

// metrics_limits writes the concurrency limits' gauges (sched): each
// limit's running count, its limit and what waits for it.
static void
metrics_limits(weft_engine *e, FILE *f)
{
	json_t     *g = admit_gauges(e), *w = sched_waits_json(e), *o;
	const char *k;

	fprintf(f,
	    "# HELP weft_limit_running Runs (or, for step_type, attempts) "
	    "counted against a concurrency limit.\n"
	    "# TYPE weft_limit_running gauge\n"
	    "# HELP weft_limit_limit The limit (0: none).\n"
	    "# TYPE weft_limit_limit gauge\n"
	    "# HELP weft_limit_waiting Runs queued (or, for step_type, ready "
	    "steps) held back.\n"
	    "# TYPE weft_limit_waiting gauge\n");
	metrics_limit(f, json_object_get(g, "runs"), "max_running_runs", NULL,
	    NULL, NULL, NULL);
	json_object_foreach (json_object_get(g, "definitions"), k, o) {
		metrics_limit(f, o, "max_concurrent_runs", "definition", k, NULL,
		    NULL);
	}
	json_object_foreach (json_object_get(g, "keys"), k, o) {
		// "name\tkey"
		const char *tab = strchr(k, '\t');
		char        name[300];
		snprintf(name, sizeof(name), "%.*s",
		    (int) (tab != NULL ? tab - k : 0), k);
		metrics_limit(f, o, "concurrency_key", "definition", name, "key",
		    tab != NULL ? tab + 1 : k);
	}
	json_object_foreach (json_object_get(w, "types"), k, o) {
		if (json_integer_value(json_object_get(o, "limit")) > 0) {
			json_t *t = json_pack("{s:O, s:O, s:O}", "running",
			    json_object_get(o, "running"), "limit",
			    json_object_get(o, "limit"), "waiting",
			    json_object_get(o, "queued"));
			metrics_limit(f, t, "step_type", "type", k, NULL, NULL);
			json_decref(t);
		}
	}
	json_decref(g);
	json_decref(w);
}

// http_metrics_text renders /metrics (query thread: it reads the store).
char *
http_metrics_text(weft_engine *e)
{
	char  *text = NULL;
	size_t len  = 0;
	FILE  *f    = open_memstream(&text, &len);

	fprintf(f, "# HELP weft_runs Runs by status.\n# TYPE weft_runs gauge\n");
	if (atomic_load(&e->store_ready)) {
		weft_store_runs_by_status(e->qstore, metrics_runs_row, f);
	}
	fprintf(f,
	    "# HELP weft_steps_dispatched_total Step attempts sent to workers.\n"
	    "# TYPE weft_steps_dispatched_total counter\n"
	    "weft_steps_dispatched_total %" PRIu64 "\n"
	    "# HELP weft_steps_succeeded_total Step attempts that succeeded.\n"
	    "# TYPE weft_steps_succeeded_total counter\n"
	    "weft_steps_succeeded_total %" PRIu64 "\n"
	    "# HELP weft_steps_failed_total Step attempts that failed.\n"
	    "# TYPE weft_steps_failed_total counter\n"
	    "weft_steps_failed_total %" PRIu64 "\n"
	    "# HELP weft_ready_queue_depth Steps ready and waiting for a worker.\n"
	    "# TYPE weft_ready_queue_depth gauge\n"
	    "weft_ready_queue_depth %" PRIu64 "\n"
	    "# HELP weft_workers_alive Workers answering surveys.\n"
	    "# TYPE weft_workers_alive gauge\n"
	    "weft_workers_alive %" PRIu64 "\n"
	    "# HELP weft_store_up Whether the last store operation worked.\n"
	    "# TYPE weft_store_up gauge\n"
	    "weft_store_up %d\n",
	    atomic_load(&e->steps_dispatched), atomic_load(&e->steps_succeeded),
	    atomic_load(&e->steps_failed),
	    atomic_load(&e->metrics.ready_depth),
	    atomic_load(&e->metrics.workers_alive),
	    atomic_load(&e->store_ok) ? 1 : 0);
	fprintf(f,
	    "# HELP weft_runs_in_memory Runs the engine holds: live ones (an "
	    "ended run leaves in the iteration it ends).\n"
	    "# TYPE weft_runs_in_memory gauge\n"
	    "weft_runs_in_memory %" PRIu64 "\n"
	    "# HELP weft_definitions_cached Compiled definitions in memory "
	    "(bounded by --def-cache but for those live runs use).\n"
	    "# TYPE weft_definitions_cached gauge\n"
	    "weft_definitions_cached %" PRIu64 "\n",
	    atomic_load(&e->metrics.runs_in_memory),
	    atomic_load(&e->metrics.defs_cached));
	fprintf(f,
	    "# HELP weft_wire_dropped_total Messages received and dropped.\n"
	    "# TYPE weft_wire_dropped_total counter\n"
	    "weft_wire_dropped_total{reason=\"garbage\"} %" PRIu64 "\n"
	    "weft_wire_dropped_total{reason=\"version\"} %" PRIu64 "\n"
	    "weft_wire_dropped_total{reason=\"oversize\"} %" PRIu64 "\n"
	    "weft_wire_dropped_total{reason=\"unexpected\"} %" PRIu64 "\n"
	    "weft_wire_dropped_total{reason=\"auth\"} %" PRIu64 "\n"
	    "weft_wire_dropped_total{reason=\"replay\"} %" PRIu64 "\n"
	    "weft_wire_dropped_total{reason=\"skew\"} %" PRIu64 "\n",
	    atomic_load(&weft_wire_dropped.garbage),
	    atomic_load(&weft_wire_dropped.version),
	    atomic_load(&weft_wire_dropped.oversize),
	    atomic_load(&weft_wire_dropped.unexpected),
	    atomic_load(&weft_wire_dropped.auth),
	    atomic_load(&weft_wire_dropped.replay),
	    atomic_load(&weft_wire_dropped.skew));
	metrics_limits(e, f);
	weft_hist_write(f, "weft_step_duration_seconds",
	    "Duration of step attempts as the workers measured them.",
	    &e->metrics.step_seconds);
	weft_hist_write(f, "weft_store_commit_seconds",
	    "Latency of one group commit of the event store.",
	    &e->metrics.commit_seconds);
	weft_hist_write(f, "weft_store_batch_events",
	    "Events written per group commit.", &e->metrics.batch_events);
	fclose(f);
	return (text);
}

// metrics_route hands /metrics to the query thread (it reads the store).
static nng_http_res *
metrics_route(weft_server *srv, nng_aio *aio, nng_http_req *req)
{
	engine_mail *m = weft_xalloc(sizeof(*m));
	http_call   *c = weft_xalloc(sizeof(*c));

	(void) req;
	memset(c, 0, sizeof(*c));
	c->aio       = aio;
	c->ok_status = 200;
	c->refs      = 2;
	nng_aio_defer(aio, call_cancel, c);
	m->kind    = MAIL_METRICS;
	m->to.http = c;
	weft_mailbox_post(&srv->e->qmailbox, &m->node);
	return (NULL);
}

static void
metrics_cb(nng_aio *aio)
{
	nng_http_handler *h   = nng_aio_get_input(aio, 1);
	weft_server      *srv = nng_http_handler_get_data(h);
	nng_http_req     *req = nng_aio_get_input(aio, 0);
	nng_http_res     *res;
	io_ident          who;

	// With tokens on, the numbers are for readers only. (No Host check:
	// scrapers name the server in many ways, and a token is not ambient.)
	// No parameter is taken (Prometheus sends none unless told to).
	if ((res = http_auth(srv, req, WEFT_ROLE_READ, &who)) == NULL) {
		res = http_params_ok(req);
	}
	http_body_then(srv, aio, req, res, HTTP_BODY_OPEN_MAX, metrics_route);
}

void
http_metrics_answer(http_call *h, char *text)
{
	call_finish(h, http_res(200, "text/plain; version=0.0.4", text,
	    strlen(text)));
	free(text);
	call_rele(h);
}

// ---- the dashboard's files ----

static const char *
static_type(const char *path)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".mjs", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".json", "application/json" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".ico", "image/x-icon" },
		{ ".txt", "text/plain; charset=utf-8" },
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(dot, types[i].ext) == 0) {
			return (types[i].type);
		}
	}
	return ("application/octet-stream");
}

// One file of the dashboard, read into memory when the server opens: no
// file I/O in an nng callback.
typedef struct http_file {
	char       *data;
	size_t      len;
	const char *type;
	char        etag[32];
} http_file;

// http_files_load reads every regular file under dir into s->files, keyed
// by its path below dir ("/js/app.js"), and the index under "/".
static void
http_files_load(weft_server *s, const char *dir, const char *rel)
{
	char           path[1100], sub[600];
	DIR           *d;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s%s", dir, rel);
	if ((d = opendir(path)) == NULL) {
		return;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		int         fd;
		if (de->d_name[0] == '.') {
			continue; // ., .., and hidden files
		}
		snprintf(sub, sizeof(sub), "%s/%s", rel, de->d_name);
		snprintf(path, sizeof(path), "%s%s", dir, sub);
		if (stat(path, &st) != 0) {
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			http_files_load(s, dir, sub);
			continue;
		}
		if (!S_ISREG(st.st_mode) || (fd = open(path, O_RDONLY)) < 0) {
			continue;
		}
		http_file *f = weft_xalloc(sizeof(*f));
		f->data      = weft_xalloc((size_t) st.st_size + 1);
		ssize_t r    = read(fd, f->data, (size_t) st.st_size);
		close(fd);
		f->len  = r > 0 ? (size_t) r : 0;
		f->type = static_type(sub);
		// A hash of the content: browsers revalidate (no build step
		// means no hashed file names) and an unchanged file is a 304.
		uint64_t h = 1469598103934665603ull;
		for (size_t k = 0; k < f->len; k++) {
			h = (h ^ (uint8_t) f->data[k]) * 1099511628211ull;
		}
		snprintf(f->etag, sizeof(f->etag), "\"%016" PRIx64 "\"", h);
		weft_map_put(&s->files, sub, f);
	}
	closedir(d);
}

void
http_files_free(weft_server *s)
{
	const char *k;
	void       *v;

	for (size_t i = 0; weft_map_each(&s->files, &i, &k, &v);) {
		free(((http_file *) v)->data);
		free(v);
	}
	weft_map_fini(&s->files);
}

static nng_http_res *
static_file(weft_server *s, nng_http_req *req)
{
	const char   *uri = nng_http_req_get_uri(req);
	char          rel[512];
	size_t        n = strcspn(uri, "?#");
	http_file    *f;
	nng_http_res *res;
	const char   *inm;

	if (n == 0 || n + sizeof("index.html") >= sizeof(rel)) {
		return (http_error(404, WEFT_ENOENT, "not found"));
	}
	memcpy(rel, uri, n);
	rel[n] = '\0';
	if (rel[n - 1] == '/') {
		snprintf(rel + n, sizeof(rel) - n, "index.html");
	}
	if ((f = weft_map_get(&s->files, rel)) == NULL) {
		return (http_error(404, WEFT_ENOENT, "not found"));
	}
	inm = nng_http_req_get_header(req, "If-None-Match");
	if (inm != NULL && strcmp(inm, f->etag) == 0) {
		res = http_res(304, f->type, NULL, 0);
	} else {
		res = http_res(200, f->type, f->data, f->len);
	}
	nng_http_res_set_header(res, "Cache-Control", "no-cache");
	nng_http_res_set_header(res, "ETag", f->etag);
	return (res);
}

static nng_http_res *
static_answer(weft_server *srv, nng_aio *aio, nng_http_req *req)
{
	(void) aio;
	return (static_file(srv, req));
}

static void
static_cb(nng_aio *aio)
{
	nng_http_req     *req = nng_aio_get_input(aio, 0);
	nng_http_handler *h   = nng_aio_get_input(aio, 1);

	weft_server      *srv = nng_http_handler_get_data(h);
	const char       *method = nng_http_req_get_method(req);
	nng_http_res     *res;

	// The dashboard's files are only read: any other method (or one
	// that /health or /metrics does not take) is refused here in JSON,
	// since the handler takes every method.
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		res = http_405("GET, HEAD");
	} else {
		res = http_guard(srv, req);
	}
	http_body_then(srv, aio, req, res, HTTP_BODY_OPEN_MAX, static_answer);
}

// ---- lifecycle ----

static int
http_add(nng_http_server *hs, weft_server *srv, const char *path,
    const char *method, bool tree, void (*cb)(nng_aio *))
{
	nng_http_handler *h;
	int               rv;

	if ((rv = nng_http_handler_alloc(&h, path, cb)) != 0) {
		return (rv);
	}
	nng_http_handler_set_method(h, method);
	nng_http_handler_set_data(h, srv, NULL);
	nng_http_handler_collect_body(h, false, 0); // http_body_then reads it
	if (tree) {
		nng_http_handler_set_tree(h);
	}
	if ((rv = nng_http_server_add_handler(hs, h)) != 0) {
		nng_http_handler_free(h);
	}
	return (rv);
}

static void
http_find_dashboard(weft_server *s)
{
	const char *cands[] = { s->e->cfg.dashboard, WEFT_DATADIR "/dashboard",
		WEFT_SRCDIR "/dashboard" };
	struct stat st;

	for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
		char index[600];
		if (cands[i] == NULL || cands[i][0] == '\0') {
			continue;
		}
		snprintf(index, sizeof(index), "%s/index.html", cands[i]);
		if (stat(index, &st) == 0 || i == 0) {
			snprintf(s->dashboard, sizeof(s->dashboard), "%s", cands[i]);
			return;
		}
	}
	snprintf(s->dashboard, sizeof(s->dashboard), "%s", WEFT_SRCDIR "/dashboard");
}

// http_bound_addr records the address the server is bound to: --http as
// given, with the port the kernel chose when it asked for port 0.
static void
http_bound_addr(weft_server *srv, nng_http_server *hs)
{
	nng_sockaddr sa;
	const char  *colon = strrchr(srv->e->cfg.http, ':');

	snprintf(srv->http_addr, sizeof(srv->http_addr), "%s", srv->e->cfg.http);
	if (colon != NULL && strcmp(colon, ":0") == 0 &&
	    nng_http_server_get_addr(hs, &sa) == 0) {
		int port = sa.s_family == NNG_AF_INET6
		    ? ntohs(sa.s_in6.sa_port)
		    : ntohs(sa.s_in.sa_port);
		snprintf(srv->http_addr, sizeof(srv->http_addr), "%.*s:%d",
		    (int) (colon - srv->e->cfg.http), srv->e->cfg.http, port);
	}
}

weft_err
http_open(weft_server *srv, char *err, size_t errlen)
{
	char             url[300], ws[350];
	nng_url         *u;
	nng_http_server *s;
	nng_listener     l;
	weft_err         terr;
	int              rv;

	if (srv->e->cfg.http == NULL || srv->e->cfg.http[0] == '\0') {
		return (WEFT_OK); // no HTTP: --http ""
	}
	// With a certificate (--tls-cert/--tls-key) HTTP is https:// and the
	// stream wss://, on the same files.
	srv->https = srv->e->cfg.tls != NULL;
	snprintf(url, sizeof(url), "%s://%s", srv->https ? "https" : "http",
	    srv->e->cfg.http);
	if ((rv = nng_url_parse(&u, url)) != 0) {
		snprintf(err, errlen, "--http %s: not HOST:PORT", srv->e->cfg.http);
		return (WEFT_EINVAL);
	}
	rv = nng_http_server_hold(&s, u);
	nng_url_free(u);
	if (rv != 0) {
		snprintf(err, errlen, "--http %s: %s", srv->e->cfg.http, nng_strerror(rv));
		return (weft_err_from_nng(rv));
	}
	srv->http = (struct http_server *) s;
	if (srv->https &&
	    (terr = weft_tls_http(srv->e->cfg.tls, s, err, errlen)) != WEFT_OK) {
		return (terr);
	}
	http_find_dashboard(srv);
	http_files_load(srv, srv->dashboard, "");
	// The API and the files take every method (NULL): nng would answer
	// a method no handler takes with its own HTML page, they answer a
	// JSON 405. /api/v1/stream (GET, longer) is matched before /api/v1.
	if ((rv = http_add(s, srv, "/api/v1", NULL, true, api_cb)) != 0 ||
	    (rv = http_add(s, srv, "/health", "GET", false, health_cb)) != 0 ||
	    (rv = http_add(s, srv, "/metrics", "GET", false, metrics_cb)) != 0 ||
	    (rv = http_add(s, srv, "/", NULL, true, static_cb)) != 0 ||
	    (rv = nng_http_server_start(s)) != 0) {
		snprintf(err, errlen, "--http %s: %s", srv->e->cfg.http, nng_strerror(rv));
		return (weft_err_from_nng(rv));
	}
	http_bound_addr(srv, s);
	// The event stream joins the same server: nng's ws transport shares
	// a server already held for this address (the bound one: with port 0
	// another address would start a second server).
	snprintf(ws, sizeof(ws), "%s://%s/api/v1/stream",
	    srv->https ? "wss" : "ws", srv->http_addr);
	if ((rv = io_auth_ws_watch(srv)) != 0 ||
	    (rv = nng_listener_create(&l, srv->events, ws)) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", ws, nng_strerror(rv));
		return (weft_err_from_nng(rv));
	}
	if ((terr = weft_tls_http_listener(srv->e->cfg.tls, l, ws, err,
	         errlen)) != WEFT_OK) {
		return (terr);
	}
	if ((rv = nng_listener_start(l, 0)) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", ws, nng_strerror(rv));
		return (weft_err_from_nng(rv));
	}
	weft_log_notice("HTTP", "dashboard and API on %s://%s/ (files from %s)",
	    srv->https ? "https" : "http", srv->http_addr, srv->dashboard);
	return (WEFT_OK);
}

void
http_close(weft_server *srv)
{
	if (srv->http != NULL) {
		nng_http_server *s = (nng_http_server *) srv->http;
		nng_http_server_stop(s);
		nng_http_server_release(s);
		srv->http = NULL;
	}
}
