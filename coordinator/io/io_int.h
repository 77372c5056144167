// io_int: what io/net.c (sockets, survey, publish, dispatch) and
// io/http.c (the HTTP API, dashboard and WebSocket stream) share. io sits
// above the engine: it posts decoded messages to the engine's mailboxes,
// reads its state, and implements the engine's io table (engine/io.h).
#ifndef WEFT_IO_INT_H
#define WEFT_IO_INT_H

#include "engine_int.h"
#include "server.h"

#include "auth.h"
#include "map.h"

enum rep_kind { REP_CONTROL, REP_RESULTS };

// The network side of one coordinator: everything io/ owns.
struct weft_server {
	weft_engine *e;

	// Sockets (net.c).
	nng_socket control, results, cluster, events;
	rep_actor *control_actors, *results_actors;
	bool       net_open;
	char       control_url[256]; // as bound (port 0 = the kernel's)
	char       cluster_url[256];
	char       results_url[256]; // as advertised to workers
	char       events_url[256];

	// The survey thread, and the wait between its rounds.
	pthread_t       survey_thread;
	bool            survey_started;
	pthread_mutex_t survey_lock; // guards survey_stop
	pthread_cond_t  survey_cv;
	bool            survey_stop;

	// The publisher thread (net.c): committed events wait here, in
	// order, to be packed and sent on the events socket, off the engine
	// thread.
	pthread_t        pub_thread;
	bool             pub_started;
	weft_mailbox     pub_jobs;   // net_pub_job, oldest first
	_Atomic size_t   pub_events; // events queued there

	// The closer thread (net.c): a worker's old dispatch socket is closed
	// there, never on the engine thread, which nng_close could hold for
	// good (nng 1.5.2, watchdog.h).
	pthread_t    closer_thread;
	bool         closer_started;
	weft_mailbox closer_jobs; // net_close_job

	// Assign exchanges whose end has not been posted yet: closing waits
	// for them.
	pthread_mutex_t ops_lock;
	pthread_cond_t  ops_cv;
	int64_t         ops_pending;

	// HTTP (http.c).
	struct http_server *http;
	char                http_addr[256]; // HOST:PORT as bound, "" = none
	bool                https;          // TLS on: https:// and wss://, and
	                                    // the session cookie is Secure
	char                dashboard[512]; // the directory it was loaded from
	weft_map            files; // dashboard files in memory: "/path" -> file

	// Who may ask (auth.c). tokens is set at open and read-only after.
	weft_tokens        tokens;    // --api-tokens; n == 0: auth off
	bool               insecure;  // listening off loopback without tokens
	pthread_mutex_t    auth_lock; // guards sessions
	struct io_session *sessions;  // the dashboard's logins, a fixed array
};

// Who made a request, as far as auth.c can tell.
typedef struct io_ident {
	enum weft_role role;                          // NONE: nobody known
	char           name[WEFT_AUTH_NAME_MAX + 1]; // the token's name
	const char    *via; // "token", "session"; NULL when auth is off
} io_ident;

// io_auth_open loads --api-tokens and applies the loopback rule: a
// --control or --http address off loopback without tokens is refused
// unless --insecure. Before any socket is bound; err says what and where.
weft_err io_auth_open(weft_server *s, char *err, size_t errlen);
void     io_auth_close(weft_server *s);

// io_auth_on reports whether API tokens are configured.
bool io_auth_on(const weft_server *s);

// io_auth_need returns the role a control request needs.
enum weft_role io_auth_need(const Weft__ControlRequest *cr);

// io_auth_control checks the token of a control request; NULL when it may
// go on, else why not (static storage). Any thread.
const char *io_auth_control(weft_server *s, const Weft__ControlRequest *cr);

// io_auth_headers finds the caller of an HTTP request or WebSocket upgrade
// from its Authorization and Cookie headers (borrowed; NULL when absent)
// and returns its role (WEFT_ROLE_OPERATE for everyone when auth is off).
// A Bearer token, when given, decides alone. Any thread.
enum weft_role io_auth_headers(weft_server *s, const char *authz,
    const char *cookies, io_ident *who);

// io_auth_cookie finds the session cookie in a Cookie header: *id points
// into cookies, *len bytes.
bool io_auth_cookie(const char *cookies, const char **id, size_t *len);

// io_session_new starts a session for token t and writes its id (64 hex
// characters and a NUL) into id. io_session_drop ends one. Any thread.
void io_session_new(weft_server *s, const weft_token *t, char id[65]);
void io_session_drop(weft_server *s, const char *id, size_t len);

// io_auth_ws_watch makes the events socket check every WebSocket pipe
// before it is admitted (Origin, and a token or session when auth is on).
int io_auth_ws_watch(weft_server *s);

// io_http_origin_ok reports whether an Origin header names this server:
// a name it answers to (the Host rule) and its port. http.c.
bool io_http_origin_ok(const weft_server *s, const char *origin);

// One rep0 context: receive a request, hand it on, send the reply later
// (from whichever thread answers), receive again.
struct rep_actor {
	weft_engine  *eng;
	weft_server  *srv;
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

weft_err http_open(weft_server *s, char *err, size_t errlen);
void     http_close(weft_server *s);
void     http_drop(http_call *h);
void     http_files_free(weft_server *s); // the dashboard's files
char    *http_metrics_text(weft_engine *e);
void     http_metrics_answer(http_call *h, char *text);

weft_err net_open(weft_server *s, char *err, size_t errlen);
weft_err net_start(weft_server *s); // threads and first receives
void     net_close(weft_server *s);

// net_route_control hands a decoded control request (env taken) to the
// thread that answers it. Any thread.
void net_route_control(weft_engine *e, Weft__Envelope *env, reply_to to);

// The engine's io table (engine/io.h), implemented in net.c.
void net_publish(weft_server *s, const weft_event *evs, size_t n);
weft_err net_peer_dial(weft_server *s, weft_peer *p, const char *url);
void     net_peer_close(weft_peer *p);
void     net_assign_send(weft_server *s, assign_op *op, nng_msg *batch);
void     net_assign_free(assign_op *op);

#endif
