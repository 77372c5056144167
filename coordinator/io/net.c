// net: the coordinator's sockets and their callbacks.
//
// Callbacks run on nng's threads and never block: they check the result,
// decode, post to a mailbox and re-arm. The survey loop has its own thread
// because a survey is a blocking send-then-collect cycle by nature.
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/protocol/survey0/survey.h>

#include "alloc.h"
#include "clock.h"
#include "io_int.h"
#include "log.h"
#include "tls.h"

// Requests served at once per rep socket: a context each. Many runs
// submitted together then land in one engine iteration and one commit.
#define NET_ACTORS 64
#define NET_ASSIGN_TIMEOUT_MS 10000

static void
net_post(weft_mailbox *mb, enum mail_kind kind, Weft__Envelope *env,
    rep_actor *a, assign_op *op, uint64_t round)
{
	engine_mail *m = weft_xalloc(sizeof(*m));
	m->kind        = kind;
	m->env         = env;
	m->to.actor    = a;
	m->op          = op;
	m->round       = round;
	weft_mailbox_post(mb, &m->node);
}

// ---- rep actors: control and results ----

static void
rep_recv(rep_actor *a)
{
	a->sending = false;
	if (atomic_load(&a->eng->stopping)) {
		return; // shutting down: no new requests
	}
	nng_ctx_recv(a->ctx, a->aio);
}

void
reply_send(reply_to to, nng_msg *msg)
{
	if (to.http != NULL) {
		http_answer(to.http, msg);
	} else if (to.actor != NULL) {
		net_rep_reply(to.actor, msg);
	} else {
		nng_msg_free(msg);
	}
}

// reply_drop abandons a request without an answer: an HTTP call gets 503;
// a rep context is armed for the next request (rep0 discards the one it
// held, and its sender, a worker's outbox, times out and sends it again).
// Without the re-arm each dropped result would cost one of the socket's
// NET_ACTORS contexts for good.
void
reply_drop(reply_to to)
{
	if (to.http != NULL) {
		http_drop(to.http);
	} else if (to.actor != NULL) {
		rep_recv(to.actor);
	}
}

void
net_rep_reply(rep_actor *a, nng_msg *msg)
{
	a->sending = true;
	nng_aio_set_msg(a->aio, msg);
	nng_ctx_send(a->ctx, a->aio);
}

void
net_route_control(weft_engine *e, Weft__Envelope *env, reply_to to)
{
	engine_mail *m = weft_xalloc(sizeof(*m));

	m->kind = MAIL_CONTROL;
	m->env  = env;
	m->to   = to;
	// Queries read the store and must not wait behind the engine: they
	// go to the query thread. Everything else changes state.
	switch (env->control->req_case) {
	case WEFT__CONTROL_REQUEST__REQ_STATUS:
	case WEFT__CONTROL_REQUEST__REQ_RUNS:
	case WEFT__CONTROL_REQUEST__REQ_EVENTS:
	case WEFT__CONTROL_REQUEST__REQ_DEFINITIONS:
	case WEFT__CONTROL_REQUEST__REQ_INFO:
	case WEFT__CONTROL_REQUEST__REQ_OUTPUT:
	case WEFT__CONTROL_REQUEST__REQ_DEFINITION:
		weft_mailbox_post(&e->qmailbox, &m->node);
		break;
	default:
		weft_mailbox_post(&e->mailbox, &m->node);
		break;
	}
}

// What a worker sends on the results socket.
static const Weft__Envelope__BodyCase rep_results_bodies[] = {
	WEFT__ENVELOPE__BODY_RESULTS,
	WEFT__ENVELOPE__BODY_GOODBYE,
};

static void
rep_cb(void *arg)
{
	rep_actor      *a  = arg;
	int             rv = nng_aio_result(a->aio);
	nng_msg        *msg;
	Weft__Envelope *env;
	weft_err        err;
	const char     *name = a->kind == REP_CONTROL ? "control" : "results";

	if (a->sending) {
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(a->aio));
		}
		if (rv != NNG_ECLOSED) {
			rep_recv(a);
		}
		return;
	}
	if (rv != 0) {
		if (rv != NNG_ECLOSED) {
			rep_recv(a);
		}
		return;
	}
	msg = nng_aio_get_msg(a->aio);
	// Results (and a stopping worker's goodbye) come from workers, who
	// hold the cookie: tag and replay checked. Control requests come
	// from clients, who hold API tokens.
	err = a->kind == REP_CONTROL
	    ? weft_wire_expect(NULL, msg, WEFT__ENVELOPE__BODY_CONTROL, &env)
	    : weft_wire_expect_any(&a->eng->wire, msg, rep_results_bodies, 2,
	          &env);
	if (err != WEFT_OK) {
		weft_wire_log_drop(name, err, msg);
	}
	nng_msg_free(msg);
	if (err != WEFT_OK) {
		if (a->kind == REP_CONTROL && err != WEFT_EPROTO) {
			// A weft peer of another version: tell it why.
			net_rep_reply(a, engine_control_reply(a->eng, err,
			    "request rejected: unknown protocol version or "
			    "message type", NULL));
			return;
		}
		rep_recv(a);
		return;
	}
	if (a->kind == REP_CONTROL) {
		const char *why = io_auth_control(a->srv, env->control);
		if (why != NULL) {
			weft_wire_free(env);
			net_rep_reply(a, engine_control_reply(a->eng, WEFT_EAUTH,
			    why, NULL));
			return;
		}
		net_route_control(a->eng, env, (reply_to) { .actor = a });
	} else {
		net_post(&a->eng->mailbox,
		    env->body_case == WEFT__ENVELOPE__BODY_GOODBYE ? MAIL_GOODBYE
		                                                   : MAIL_RESULTS,
		    env, a, NULL, 0);
	}
}

static weft_err
rep_actors_open(weft_server *s, nng_socket sock, enum rep_kind kind,
    rep_actor **out)
{
	weft_engine *e = s->e;
	rep_actor *as = weft_xalloc(NET_ACTORS * sizeof(*as));
	int        rv;

	*out = as;
	for (int i = 0; i < NET_ACTORS; i++) {
		as[i].eng  = e;
		as[i].srv  = s;
		as[i].kind = kind;
		if ((rv = nng_ctx_open(&as[i].ctx, sock)) != 0 ||
		    (rv = nng_aio_alloc(&as[i].aio, rep_cb, &as[i])) != 0) {
			return (weft_err_from_nng(rv));
		}
	}
	return (WEFT_OK);
}

static void
rep_actors_close(rep_actor *as)
{
	if (as == NULL) {
		return;
	}
	for (int i = 0; i < NET_ACTORS; i++) {
		if (as[i].aio != NULL) {
			nng_aio_stop(as[i].aio);
		}
	}
	for (int i = 0; i < NET_ACTORS; i++) {
		if (as[i].aio != NULL) {
			nng_aio_free(as[i].aio);
		}
		nng_ctx_close(as[i].ctx);
	}
	free(as);
}

// ---- listening ----

// net_listen listens s on url (with tls for a tls+tcp:// url); a tcp or
// tls+tcp port 0 becomes the bound port in `actual` (size 256), which is
// what peers must be told.
static weft_err
net_listen(nng_socket s, weft_tls *tls, const char *url, char *actual,
    char *err, size_t errlen)
{
	nng_listener l;
	int          rv, port = 0;
	weft_err     terr;

	weft_wire_socket_limits(s);
	if ((rv = nng_listener_create(&l, s, url)) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", url,
		    nng_strerror(rv));
		return (weft_err_from_nng(rv));
	}
	if ((terr = weft_tls_listener(tls, l, url, err, errlen)) != WEFT_OK) {
		return (terr);
	}
	if ((rv = nng_listener_start(l, 0)) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", url,
		    nng_strerror(rv));
		return (weft_err_from_nng(rv));
	}
	snprintf(actual, 256, "%s", url);
	// tcp:// and tls+tcp:// both know their bound port.
	if (nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
		const char *colon = strrchr(url, ':');
		if (colon != NULL && strcmp(colon, ":0") == 0) {
			snprintf(actual, 256, "%.*s:%d", (int) (colon - url), url,
			    port);
		}
	}
	return (WEFT_OK);
}

static void *net_pub_main(void *arg);
static void *net_closer_main(void *arg);

weft_err
net_open(weft_server *s, char *err, size_t errlen)
{
	weft_engine *e = s->e;
	weft_err rv;
	int      n;

	if ((n = nng_rep0_open(&s->control)) != 0 ||
	    (n = nng_rep0_open(&s->results)) != 0 ||
	    (n = nng_surveyor0_open(&s->cluster)) != 0 ||
	    (n = nng_pub0_open(&s->events)) != 0) {
		snprintf(err, errlen, "cannot open sockets: %s", nng_strerror(n));
		return (weft_err_from_nng(n));
	}
	// The event stream is a fast path; a deep buffer drops less under
	// bursts (subscribers fill gaps from the store either way).
	nng_socket_set_int(s->events, NNG_OPT_SENDBUF, 8192);
	nng_socket_set_int(s->results, NNG_OPT_RECVBUF, 1024);
	nng_socket_set_ms(s->cluster, NNG_OPT_SURVEYOR_SURVEYTIME,
	    e->cfg.survey_ms * 3 / 4);
	if ((rv = net_listen(s->control, e->cfg.tls, e->cfg.control_url,
	         s->control_url, err, errlen)) != WEFT_OK ||
	    (rv = net_listen(s->results, e->cfg.tls, e->cfg.results_url,
	         s->results_url, err, errlen)) != WEFT_OK ||
	    (rv = net_listen(s->cluster, e->cfg.tls, e->cfg.cluster_url,
	         s->cluster_url, err, errlen)) != WEFT_OK ||
	    (rv = net_listen(s->events, e->cfg.tls, e->cfg.events_url,
	         s->events_url, err, errlen)) != WEFT_OK) {
		return (rv);
	}
	if ((rv = rep_actors_open(s, s->control, REP_CONTROL,
	         &s->control_actors)) != WEFT_OK ||
	    (rv = rep_actors_open(s, s->results, REP_RESULTS,
	         &s->results_actors)) != WEFT_OK) {
		snprintf(err, errlen, "cannot open socket contexts");
		return (rv);
	}
	s->net_open = true;
	// The publisher starts here, before the engine's io table points
	// at us: the engine thread never sees pub_started change.
	if (pthread_create(&s->pub_thread, NULL, net_pub_main, s) != 0) {
		snprintf(err, errlen, "cannot start the publisher thread");
		return (WEFT_EUNAVAIL);
	}
	s->pub_started = true;
	if (pthread_create(&s->closer_thread, NULL, net_closer_main, s) != 0) {
		snprintf(err, errlen, "cannot start the closer thread");
		return (WEFT_EUNAVAIL);
	}
	s->closer_started = true;
	return (WEFT_OK);
}

// ---- the survey loop ----

static void
survey_send(weft_server *s, uint64_t round)
{
	weft_engine *e = s->e;
	Weft__Envelope env    = WEFT__ENVELOPE__INIT;
	Weft__Survey   survey = WEFT__SURVEY__INIT;
	nng_msg       *msg;
	json_t        *jm;
	size_t         k;
	bool           packed;
	Weft__Refusal *rs;

	// The list is copied into the message under the lock; the send,
	// which may wait, happens after it.
	pthread_mutex_lock(&e->members_lock);
	survey.n_members = json_array_size(e->members);
	survey.members = weft_xalloc((survey.n_members + 1) * sizeof(void *));
	Weft__Member *ms = weft_xalloc((survey.n_members + 1) * sizeof(*ms));
	json_array_foreach (e->members, k, jm) {
		weft__member__init(&ms[k]);
		ms[k].name    = (char *) json_string_value(json_object_get(jm, "name"));
		ms[k].role    = (char *) json_string_value(json_object_get(jm, "role"));
		ms[k].address = (char *) json_string_value(json_object_get(jm, "address"));
		ms[k].state   = (char *) json_string_value(json_object_get(jm, "state"));
		survey.members[k] = &ms[k];
	}
	survey.n_refused = json_array_size(e->refusals);
	survey.refused = weft_xalloc((survey.n_refused + 1) * sizeof(void *));
	rs = weft_xalloc((survey.n_refused + 1) * sizeof(*rs));
	json_array_foreach (e->refusals, k, jm) {
		weft__refusal__init(&rs[k]);
		rs[k].name   = (char *) json_string_value(json_object_get(jm, "name"));
		rs[k].reason = (char *) json_string_value(json_object_get(jm, "reason"));
		rs[k].incarnation = strtoull(
		    json_string_value(json_object_get(jm, "incarnation")), NULL, 10);
		survey.refused[k] = &rs[k];
	}
	survey.round       = round;
	survey.results_url = s->results_url;
	env.body_case      = WEFT__ENVELOPE__BODY_SURVEY;
	env.survey         = &survey;
	packed = weft_wire_pack(&e->wire, &env, NULL, &msg) == WEFT_OK;
	pthread_mutex_unlock(&e->members_lock);
	free(ms);
	free(survey.members);
	free(rs);
	free(survey.refused);
	if (packed && nng_sendmsg(s->cluster, msg, 0) != 0) {
		nng_msg_free(msg);
	}
}

// survey_collect receives answers until the survey time is over.
static bool
survey_collect(weft_server *s, uint64_t round)
{
	weft_engine *e = s->e;
	nng_msg        *msg;
	Weft__Envelope *env;
	weft_err        err;
	int             rv;
	nng_sockaddr    sa;

	for (;;) {
		engine_mail *m;
		if ((rv = nng_recvmsg(s->cluster, &msg, 0)) != 0) {
			return (rv != NNG_ECLOSED);
		}
		err = weft_wire_expect(&e->wire, msg,
		    WEFT__ENVELOPE__BODY_WORKER_INFO, &env);
		if (err == WEFT_OK && env->worker_info->round != round) {
			// An answer held back and played into a later round.
			weft_wire_free(env);
			err = WEFT_EREPLAY;
		}
		if (err != WEFT_OK) {
			weft_wire_log_drop("cluster", err, msg);
			nng_msg_free(msg);
			continue;
		}
		m        = weft_xalloc(sizeof(*m));
		m->kind  = MAIL_WORKER_INFO;
		m->env   = env;
		m->round = round;
		if (nng_pipe_get_addr(nng_msg_get_pipe(msg), NNG_OPT_REMADDR,
		        &sa) == 0 &&
		    sa.s_family == NNG_AF_INET) {
			inet_ntop(AF_INET, &sa.s_in.sa_addr, m->peer,
			    sizeof(m->peer));
		}
		nng_msg_free(msg);
		weft_mailbox_post(&e->mailbox, &m->node);
	}
}

static bool
survey_stopped(weft_server *s)
{
	bool stop;
	pthread_mutex_lock(&s->survey_lock);
	stop = s->survey_stop;
	pthread_mutex_unlock(&s->survey_lock);
	return (stop);
}

static void *
survey_main(void *arg)
{
	weft_server *s     = arg;
	weft_engine *e     = s->e;
	uint64_t     round = 0;

	weft_thread_name("survey");
	while (!atomic_load(&e->stopping) && !survey_stopped(s)) {
		int64_t start = weft_clock_mono_ms();
		survey_send(s, ++round);
		if (!survey_collect(s, round)) {
			break;
		}
		net_post(&e->mailbox, MAIL_SURVEY_END, NULL, NULL, NULL, round);
		// Until the next round is due, or net_close says stop.
		struct timespec due = weft_clock_mono_ts(start + e->cfg.survey_ms);
		pthread_mutex_lock(&s->survey_lock);
		while (!s->survey_stop &&
		    pthread_cond_timedwait(&s->survey_cv, &s->survey_lock, &due) ==
		        0) {
		}
		pthread_mutex_unlock(&s->survey_lock);
	}
	return (NULL);
}

weft_err
net_start(weft_server *s)
{
	for (int i = 0; i < NET_ACTORS; i++) {
		rep_recv(&s->control_actors[i]);
		rep_recv(&s->results_actors[i]);
	}
	if (pthread_create(&s->survey_thread, NULL, survey_main, s) != 0) {
		return (WEFT_EUNAVAIL);
	}
	s->survey_started = true;
	return (WEFT_OK);
}

// net_close shuts the sockets down. Called once the engine and query
// threads have stopped (nothing replies any more): the contexts' aios are
// stopped first, so no callback runs on a closed socket and nng_close has
// nothing to wait for.
void
net_close(weft_server *s)
{
	if (!s->net_open) {
		return;
	}
	s->net_open = false;
	rep_actors_close(s->control_actors);
	rep_actors_close(s->results_actors);
	s->control_actors = s->results_actors = NULL;
	pthread_mutex_lock(&s->survey_lock);
	s->survey_stop = true;
	pthread_cond_signal(&s->survey_cv);
	pthread_mutex_unlock(&s->survey_lock);
	if (s->pub_started) {
		// The engine has stopped: what it committed last is
		// published before the socket closes.
		weft_mailbox_close(&s->pub_jobs);
		pthread_join(s->pub_thread, NULL);
		s->pub_started = false;
	}
	if (s->closer_started) {
		weft_mailbox_close(&s->closer_jobs);
		pthread_join(s->closer_thread, NULL);
		s->closer_started = false;
	}
	nng_close(s->control);
	nng_close(s->results);
	nng_close(s->cluster);
	nng_close(s->events);
	if (s->survey_started) {
		pthread_join(s->survey_thread, NULL);
		s->survey_started = false;
	}
}

// ---- the event stream ----

// Most events in one published message.
#define NET_PUBLISH_MAX 1000

static void
event_topic(const weft_event *ev, char *buf, size_t len)
{
	if (ev->run_id != NULL) {
		snprintf(buf, len, "run:%s", ev->run_id);
	} else {
		snprintf(buf, len, "node:%s", ev->node ? ev->node : "");
	}
}

static void
event_to_pb(const weft_event *ev, Weft__Event *pe)
{
	weft__event__init(pe);
	pe->id        = ev->id;
	pe->run_id    = (char *) (ev->run_id ? ev->run_id : "");
	pe->seq       = ev->seq;
	pe->ts_ms     = (uint64_t) ev->ts_ms;
	pe->type      = (char *) weft_event_name(ev->type);
	pe->step_id   = (char *) (ev->step_id ? ev->step_id : "");
	pe->attempt   = ev->attempt;
	pe->node      = (char *) (ev->node ? ev->node : "");
	pe->data_json = (char *) ev->data_text;
}

// net_publish_msg publishes evs[0..n) as one message under topic.
static void
net_publish_msg(weft_server *s, const weft_event *evs, size_t n,
    const char *topic, Weft__Event *pes, Weft__Event **ptrs)
{
	weft_engine *e = s->e;
	Weft__Envelope   env   = WEFT__ENVELOPE__INIT;
	Weft__EventBatch batch = WEFT__EVENT_BATCH__INIT;
	nng_msg         *msg;

	for (size_t k = 0; k < n; k++) {
		event_to_pb(&evs[k], &pes[k]);
		ptrs[k] = &pes[k];
	}
	batch.n_events = n;
	batch.events   = ptrs;
	env.body_case  = WEFT__ENVELOPE__BODY_EVENTS;
	env.events     = &batch;
	if (weft_wire_pack(&e->wire, &env, topic, &msg) != WEFT_OK) {
		if (n > 1) {
			// Too large for one message: halves keep the order.
			net_publish_msg(s, evs, n / 2, topic, pes, ptrs);
			net_publish_msg(s, evs + n / 2, n - n / 2, topic, pes, ptrs);
		}
		return;
	}
	if (nng_sendmsg(s->events, msg, NNG_FLAG_NONBLOCK) != 0) {
		nng_msg_free(msg);
	}
}

// same_topic tells whether a and b go under one topic: the same run, or
// the same node's cluster events.
static bool
same_topic(const weft_event *a, const weft_event *b)
{
	if (a->run_id != NULL || b->run_id != NULL) {
		return (a->run_id != NULL && b->run_id != NULL &&
		    strcmp(a->run_id, b->run_id) == 0);
	}
	return (strcmp(a->node ? a->node : "", b->node ? b->node : "") == 0);
}

// net_publish_now publishes evs[0..n), one release, in id order and
// NET_PUBLISH_MAX events to a message: under their topic when they all
// have one ("run:<id>", "node:<name>"), under WEFT_TOPIC_MIXED when they
// span several. A message per run (the way before) cost a frame, its tag
// and a write to each subscriber per run: W3 releases ~1,000 runs at a
// time, and sending and reading those messages took ~40% of its CPU.
static void
net_publish_now(weft_server *s, const weft_event *evs, size_t n)
{
	size_t        most = n < NET_PUBLISH_MAX ? n : NET_PUBLISH_MAX;
	Weft__Event  *pes  = weft_xalloc((most ? most : 1) * sizeof(*pes));
	Weft__Event **ptrs = weft_xalloc((most ? most : 1) * sizeof(*ptrs));
	char          topic[128];
	bool          one = true;

	for (size_t k = 1; k < n && one; k++) {
		one = same_topic(&evs[0], &evs[k]);
	}
	if (n > 0 && one) {
		event_topic(&evs[0], topic, sizeof(topic));
	} else {
		snprintf(topic, sizeof(topic), "%s", WEFT_TOPIC_MIXED);
	}
	for (size_t from = 0; from < n; from += most) {
		size_t k = n - from < most ? n - from : most;
		net_publish_msg(s, evs + from, k, topic, pes, ptrs);
	}
	free(pes);
	free(ptrs);
}

// Committed events are published by their own thread: packing a message
// per run (protobuf, the frame's mac) and nng's copy to each subscriber
// took about half of the engine thread's time at a batch's release on
// 1,000 interleaved runs (perf, weft-bench W3), time in which the engine
// did nothing else. The engine now copies a batch's events into one block
// (net_publish) and goes on; the publisher sends them in commit order.
// Publishing stays after the commit (a job is queued at the release), and
// lossy as before: past NET_PUB_BACKLOG queued events a job is dropped
// (subscribers fill gaps from the store, like a full subscriber buffer).
#define NET_PUB_BACKLOG 1000000

typedef struct net_pub_job {
	weft_mail   node; // first: posted to s->pub_jobs
	size_t      n;
	weft_event *evs; // n, their strings in text
	char       *text;
} net_pub_job;

// pub_copy appends string str (NULL stays NULL) at *at; returns the copy.
static const char *
pub_copy(char **at, const char *str)
{
	char  *to = *at;
	size_t n;

	if (str == NULL) {
		return (NULL);
	}
	n = strlen(str) + 1;
	memcpy(to, str, n);
	*at += n;
	return (to);
}

// net_pub_job_new copies what publishing reads of evs[0..n): the events
// and their strings, in one block for the strings.
static net_pub_job *
net_pub_job_new(const weft_event *evs, size_t n)
{
	net_pub_job *j    = weft_xalloc(sizeof(*j));
	size_t       size = 1;
	char        *at;

	for (size_t k = 0; k < n; k++) {
		const weft_event *v = &evs[k];
		size += (v->run_id ? strlen(v->run_id) + 1 : 0) +
		    (v->step_id ? strlen(v->step_id) + 1 : 0) +
		    (v->node ? strlen(v->node) + 1 : 0) +
		    (v->data_text ? strlen(v->data_text) + 1 : 0);
	}
	j->n    = n;
	j->evs  = weft_xalloc((n ? n : 1) * sizeof(*j->evs));
	j->text = weft_xalloc(size);
	at      = j->text;
	for (size_t k = 0; k < n; k++) {
		weft_event *c = &j->evs[k];
		memset(c, 0, sizeof(*c));
		c->id        = evs[k].id;
		c->seq       = evs[k].seq;
		c->ts_ms     = evs[k].ts_ms;
		c->type      = evs[k].type;
		c->attempt   = evs[k].attempt;
		c->run_id    = pub_copy(&at, evs[k].run_id);
		c->step_id   = pub_copy(&at, evs[k].step_id);
		c->node      = pub_copy(&at, evs[k].node);
		c->data_text = pub_copy(&at, evs[k].data_text);
	}
	return (j);
}

static void
net_pub_job_free(net_pub_job *j)
{
	free(j->evs);
	free(j->text);
	free(j);
}

void
net_publish(weft_server *s, const weft_event *evs, size_t n)
{
	net_pub_job *j;

	if (!s->pub_started) {
		net_publish_now(s, evs, n); // before the threads start
		return;
	}
	if (atomic_fetch_add(&s->pub_events, n) + n > NET_PUB_BACKLOG) {
		atomic_fetch_sub(&s->pub_events, n);
		return;
	}
	j = net_pub_job_new(evs, n);
	weft_mailbox_post(&s->pub_jobs, &j->node);
}

// net_pub_main is the publisher thread: it sends the queued jobs in order
// until net_close closes their mailbox, and what is queued then too.
static void *
net_pub_main(void *arg)
{
	weft_server *s = arg;
	weft_mail   *m;

	weft_thread_name("publish");
	while ((m = weft_mailbox_drain(&s->pub_jobs, -1)) != NULL) {
		while (m != NULL) {
			net_pub_job *j = (net_pub_job *) m;
			m              = m->next;
			net_publish_now(s, j->evs, j->n);
			atomic_fetch_sub(&s->pub_events, j->n);
			net_pub_job_free(j);
		}
	}
	return (NULL);
}

// ---- dispatch to workers ----

// A worker back at a new address gets a new dispatch socket; the old one
// is closed by the closer thread. nng 1.5.2 can hang in nng_close for good
// (watchdog.h): on the engine thread that would stop every run; here it
// stops only later closes, and the stop's teardown is bounded.
typedef struct net_close_job {
	weft_mail  node; // first: posted to s->closer_jobs
	nng_socket sock;
} net_close_job;

static void *
net_closer_main(void *arg)
{
	weft_server *s = arg;
	weft_mail   *m;

	weft_thread_name("closer");
	while ((m = weft_mailbox_drain(&s->closer_jobs, -1)) != NULL) {
		while (m != NULL) {
			net_close_job *j = (net_close_job *) m;
			m                = m->next;
			nng_close(j->sock);
			free(j);
		}
	}
	return (NULL);
}

// net_peer_retire hands p's socket to the closer thread, which runs from
// net_open on: before the engine can dial a peer, until net_close, after
// which peers are closed directly (net_peer_close).
static void
net_peer_retire(weft_server *s, weft_peer *p)
{
	net_close_job *j;

	if (!p->open) {
		return;
	}
	p->open = false;
	j       = weft_xalloc(sizeof(*j));
	j->sock = p->sock;
	weft_mailbox_post(&s->closer_jobs, &j->node);
}

weft_err
net_peer_dial(weft_server *s, weft_peer *p, const char *url)
{
	weft_engine *e = s->e;
	nng_dialer   d;
	weft_err     terr = WEFT_OK;
	char         why[512];
	int          rv   = 0;

	if (p->open && strcmp(p->url, url) == 0) {
		return (WEFT_OK);
	}
	net_peer_retire(s, p);
	if ((rv = nng_req0_open(&p->sock)) != 0) {
		return (weft_err_from_nng(rv));
	}
	weft_wire_socket_limits(p->sock);
	// We time out and re-dispatch ourselves; nng's resend would
	// deliver an assignment twice.
	nng_socket_set_ms(p->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if ((rv = nng_dialer_create(&d, p->sock, url)) != 0 ||
	    (terr = weft_tls_dialer(e->cfg.tls, d, url, why, sizeof(why))) !=
	        WEFT_OK ||
	    (rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
		nng_close(p->sock);
		weft_log_warn("DISPATCH-DIAL", "worker=%s url=%s: %s", p->name,
		    url, rv != 0 ? nng_strerror(rv) : why);
		return (rv != 0 ? weft_err_from_nng(rv) : terr);
	}
	snprintf(p->url, sizeof(p->url), "%s", url);
	p->open = true;
	return (WEFT_OK);
}

void
net_peer_close(weft_peer *p)
{
	if (p->open) {
		nng_close(p->sock);
		p->open = false;
	}
}

// assign_end hands an exchange that ended to the engine; the last one
// wakes weft_server_close.
static void
assign_end(weft_server *s, assign_op *op)
{
	weft_engine *e = s->e;
	net_post(&e->mailbox, MAIL_ASSIGN, NULL, NULL, op, 0);
	pthread_mutex_lock(&s->ops_lock);
	if (--s->ops_pending == 0) {
		pthread_cond_broadcast(&s->ops_cv);
	}
	pthread_mutex_unlock(&s->ops_lock);
}

// assign_cb runs once the worker's answer came, or the exchange failed.
// NNG_ESTATE means the request never left (the receive found nothing
// sent): the send's own result says why, and that send is over.
static void
assign_cb(void *arg)
{
	assign_op *op = arg;
	int        rv = nng_aio_result(op->aio);

	if (rv == NNG_ESTATE && nng_aio_result(op->send) != 0) {
		rv = nng_aio_result(op->send);
	}
	op->result = rv;
	op->reply  = rv == 0 ? nng_aio_get_msg(op->aio) : NULL;
	assign_end(op->io, op);
}

// net_assign_send sends one batch and waits for the answer. The send's aio
// has no callback, so a request that goes out at once completes on this
// thread: no task-queue hand-off only to arm the receive, and one
// condition-variable signal fewer from the engine thread per assignment
// (nng dispatches a callback even when the operation finished inline).
// req0 accepts the receive while the request still waits for a pipe.
void
net_assign_send(weft_server *s, assign_op *op, nng_msg *batch)
{
	int rv;

	op->eng = s->e;
	op->io  = s;
	pthread_mutex_lock(&s->ops_lock);
	s->ops_pending++;
	pthread_mutex_unlock(&s->ops_lock);
	if ((rv = nng_ctx_open(&op->ctx, op->peer->sock)) != 0 ||
	    (rv = nng_aio_alloc(&op->send, NULL, NULL)) != 0 ||
	    (rv = nng_aio_alloc(&op->aio, assign_cb, op)) != 0) {
		nng_msg_free(batch);
		op->result = rv;
		assign_end(s, op);
		return;
	}
	nng_aio_set_timeout(op->send, NET_ASSIGN_TIMEOUT_MS);
	nng_aio_set_timeout(op->aio, NET_ASSIGN_TIMEOUT_MS);
	nng_aio_set_msg(op->send, batch);
	nng_ctx_send(op->ctx, op->send);
	nng_ctx_recv(op->ctx, op->aio);
}

void
net_assign_free(assign_op *op)
{
	if (op->aio != NULL) {
		nng_aio_free(op->aio);
	}
	if (op->send != NULL) {
		// A request still waiting for a pipe is cancelled here, and
		// its message comes back to us.
		nng_aio_stop(op->send);
		if (nng_aio_result(op->send) != 0) {
			nng_msg_free(nng_aio_get_msg(op->send));
		}
		nng_aio_free(op->send);
	}
	nng_ctx_close(op->ctx);
	engine_assign_op_free(op);
}

// ---- the engine's io table, and the server's lifecycle ----

static void
io_publish(void *arg, const weft_event *evs, size_t n)
{
	net_publish(arg, evs, n);
}

static void
io_reply(void *arg, reply_to to, nng_msg *msg)
{
	(void) arg;
	reply_send(to, msg);
}

static void
io_drop(void *arg, reply_to to)
{
	weft_server *s = arg;

	if (to.actor != NULL && !s->net_open) {
		// Closing: the rep contexts are freed (weft_server_close drops
		// the engine's leftover mail after net_close); nothing to arm.
		return;
	}
	reply_drop(to);
}

static void
io_metrics(void *arg, reply_to to)
{
	weft_server *s = arg;
	http_metrics_answer(to.http, http_metrics_text(s->e));
}

static weft_err
io_peer_dial(void *arg, weft_peer *p, const char *url)
{
	weft_server *s = arg;
	return (net_peer_dial(s, p, url));
}

static void
io_peer_close(void *arg, weft_peer *p)
{
	(void) arg;
	net_peer_close(p);
}

static void
io_assign(void *arg, assign_op *op, nng_msg *batch)
{
	net_assign_send(arg, op, batch);
}

static void
io_assign_free(void *arg, assign_op *op)
{
	(void) arg;
	net_assign_free(op);
}

weft_err
weft_server_open(weft_server **out, weft_engine *e, char *err, size_t errlen)
{
	weft_server *s = weft_xalloc(sizeof(*s));
	weft_err     rv;

	s->e = e;
	pthread_mutex_init(&s->survey_lock, NULL);
	weft_clock_cond_init(&s->survey_cv);
	weft_mailbox_init(&s->pub_jobs);
	weft_mailbox_init(&s->closer_jobs);
	pthread_mutex_init(&s->ops_lock, NULL);
	weft_clock_cond_init(&s->ops_cv);
	weft_map_init(&s->files);
	*out = s;
	if ((rv = io_auth_open(s, err, errlen)) != WEFT_OK ||
	    (rv = net_open(s, err, errlen)) != WEFT_OK ||
	    (rv = http_open(s, err, errlen)) != WEFT_OK) {
		weft_server_close(s);
		*out = NULL;
		return (rv);
	}
	const weft_io io = {
		.arg         = s,
		.control_url = s->control_url,
		.cluster_url = s->cluster_url,
		.results_url = s->results_url,
		.events_url  = s->events_url,
		.http_addr   = s->http_addr,
		.publish     = io_publish,
		.reply       = io_reply,
		.drop        = io_drop,
		.metrics     = io_metrics,
		.peer_dial   = io_peer_dial,
		.peer_close  = io_peer_close,
		.assign      = io_assign,
		.assign_free = io_assign_free,
	};
	weft_engine_set_io(e, &io);
	return (WEFT_OK);
}

weft_err
weft_server_start(weft_server *s)
{
	return (net_start(s));
}

void
weft_server_bound(const weft_server *s, weft_server_addrs *out)
{
	out->control = s->control_url;
	out->cluster = s->cluster_url;
	out->results = s->results_url;
	out->events  = s->events_url;
	out->http    = s->http_addr;
}

void
weft_server_close(weft_server *s)
{
	if (s == NULL) {
		return;
	}
	net_close(s);
	// Stopping the server cancels HTTP calls still waiting; the mail
	// that carries them is dropped by the engine.
	http_close(s);
	// Closing the dispatch sockets ends every assign op; each posts its
	// mail from an nng thread, so wait for the last before the engine
	// frees what they point at.
	sched_close_peers(s->e);
	struct timespec until = weft_clock_mono_ts(weft_clock_mono_ms() + 5000);
	pthread_mutex_lock(&s->ops_lock);
	while (s->ops_pending > 0 &&
	    pthread_cond_timedwait(&s->ops_cv, &s->ops_lock, &until) == 0) {
	}
	pthread_mutex_unlock(&s->ops_lock);
	engine_drop_mail(s->e);
	weft_engine_set_io(s->e, NULL); // nothing may point at s any more
	pthread_mutex_destroy(&s->survey_lock);
	pthread_cond_destroy(&s->survey_cv);
	weft_mailbox_fini(&s->pub_jobs);
	weft_mailbox_fini(&s->closer_jobs);
	pthread_mutex_destroy(&s->ops_lock);
	pthread_cond_destroy(&s->ops_cv);
	http_files_free(s);
	io_auth_close(s);
	free(s);
}
