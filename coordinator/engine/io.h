// io: what the engine needs from the network, as a table of operations
// that the io layer (io/net.c, io/http.c) registers before the engine
// starts. The engine never calls into io/ otherwise, so the dependency
// points one way (io -> engine), and the engine tests register fakes.
//
// Every operation is called from the engine's threads (the engine thread,
// or the query thread for replies and metrics) and must not block.
#ifndef WEFT_ENGINE_IO_H
#define WEFT_ENGINE_IO_H

#include <stddef.h>

#include <nng/nng.h>

#include "err.h"
#include "store.h"

typedef struct rep_actor rep_actor; // io's: a rep0 context
typedef struct http_call http_call; // io's: an HTTP request waiting

// Where the answer to a request goes: opaque to the engine, which only
// keeps it and hands it back.
typedef struct reply_to {
	rep_actor *actor;
	http_call *http;
} reply_to;

typedef struct assign_op assign_op;
typedef struct weft_peer weft_peer;

typedef struct weft_io {
	void *arg;
	// The addresses io is bound to (port 0 resolved), valid while it is
	// registered: replies and `weft info` name them.
	const char *control_url, *cluster_url, *results_url, *events_url;
	const char *http_addr; // "" when HTTP is off
	// publish sends the batch's events, in id order, after their commit.
	void (*publish)(void *arg, const weft_event *evs, size_t n);
	// reply delivers a packed ControlReply or ResultAck (taken).
	void (*reply)(void *arg, reply_to to, nng_msg *msg);
	// drop abandons a reply target: no answer will come (an HTTP call
	// gets 503).
	void (*drop)(void *arg, reply_to to);
	// metrics answers a /metrics request with the counters as they are.
	void (*metrics)(void *arg, reply_to to);
	// peer_dial (re)connects the dispatch socket to a worker; peer_close
	// closes it.
	weft_err (*peer_dial)(void *arg, weft_peer *p, const char *url);
	void (*peer_close)(void *arg, weft_peer *p);
	// assign sends an AssignBatch (taken) on op (taken); the exchange's
	// end comes back as MAIL_ASSIGN. assign_free releases op after.
	void (*assign)(void *arg, assign_op *op, nng_msg *batch);
	void (*assign_free)(void *arg, assign_op *op);
} weft_io;

#endif
