// io_int: what io/net.c (sockets, survey, publish, dispatch) and
// io/http.c (the HTTP API, dashboard and WebSocket stream) share. io sits
// above the engine: it posts decoded messages to the engine's mailboxes,
// reads its state, and implements the engine's io table (engine/io.h).
#ifndef WEFT_IO_INT_H
#define WEFT_IO_INT_H

#include "engine_int.h"
#include "server.h"

enum rep_kind { REP_CONTROL, REP_RESULTS };

// One rep0 context: receive a request, hand it on, send the reply later
// (from whichever thread answers), receive again.
struct rep_actor {
	weft_engine  *eng;
	enum rep_kind kind;
	nng_ctx       ctx;
	nng_aio      *aio;
	bool          sending; // the aio is sending a reply
};

// net_rep_reply sends msg (taken) as the answer to the actor's request.
// Any thread. Failure frees the message; the actor receives again either
// way.
void net_rep_reply(rep_actor *a, nng_msg *msg);

// reply_send delivers a packed ControlReply or ResultAck (taken); any
// thread. reply_drop abandons a target (an HTTP call gets 503).
void reply_send(reply_to to, nng_msg *msg);
void reply_drop(reply_to to);

// http_answer answers an HTTP call with a packed ControlReply (taken):
// the reply's code picks the status, its body becomes the response body.
void http_answer(http_call *h, nng_msg *msg);

weft_err http_open(weft_engine *e, char *err, size_t errlen);
void     http_close(weft_engine *e);
void     http_drop(http_call *h);
char    *http_metrics_text(weft_engine *e);
void     http_metrics_answer(http_call *h, char *text);

weft_err net_open(weft_engine *e, char *err, size_t errlen);
weft_err net_start(weft_engine *e); // threads and first receives
void     net_close(weft_engine *e);

// net_route_control hands a decoded control request (env taken) to the
// thread that answers it. Any thread.
void net_route_control(weft_engine *e, Weft__Envelope *env, reply_to to);

// The engine's io table (engine/io.h), implemented in net.c.
void net_publish(weft_engine *e, const weft_event *evs, size_t n);
weft_err net_peer_dial(weft_engine *e, weft_peer *p, const char *url);
void     net_peer_close(weft_peer *p);
void     net_assign_send(weft_engine *e, assign_op *op, nng_msg *batch);
void     net_assign_free(assign_op *op);

#endif
