// auth: who is asking, for the control socket, the HTTP API and the
// WebSocket stream: API tokens (--api-tokens), the dashboard's login
// sessions, and the rule that refuses to listen off loopback without
// tokens unless --insecure says so.
//
// Sessions live in memory only: a restart logs everyone out. A session id
// is 32 random bytes; only its hash is kept, compared in constant time.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "clock.h"
#include "cookie.h"
#include "io_int.h"
#include "log.h"

#define AUTH_SESSIONS_MAX 1024                     // live sessions at most
#define AUTH_SESSION_MS (12 * 3600 * 1000LL)       // a session lasts 12 h
#define AUTH_COOKIE "weft_session"

struct io_session {
	uint8_t        hash[32];   // BLAKE2b-256 of the session id
	char           name[WEFT_AUTH_NAME_MAX + 1];
	enum weft_role role;       // WEFT_ROLE_NONE: slot free
	int64_t        expires_ms; // monotonic ms
};

// auth_listen_check refuses a listener off loopback without tokens, unless
// --insecure; what names the flag for the message.
static weft_err
auth_listen_check(weft_server *s, const char *what, const char *addr,
    char *err, size_t errlen)
{
	if (addr == NULL || addr[0] == '\0' || s->tokens.n > 0 ||
	    weft_auth_addr_loopback(addr)) {
		return (WEFT_OK);
	}
	if (s->e->cfg.insecure) {
		weft_log_warn("INSECURE",
		    "%s %s is off loopback and has no API tokens (--insecure): "
		    "ANYONE WHO CAN REACH IT CAN CONTROL THIS CLUSTER",
		    what, addr);
		s->insecure = true;
		return (WEFT_OK);
	}
	snprintf(err, errlen,
	    "%s %s is off loopback: add --api-tokens FILE so that only holders "
	    "of a token can use it (or --insecure to start anyway)",
	    what, addr);
	return (WEFT_EAUTH);
}

weft_err
io_auth_open(weft_server *s, char *err, size_t errlen)
{
	const weft_engine_cfg *cfg = &s->e->cfg;
	weft_err               rv;

	pthread_mutex_init(&s->auth_lock, NULL);
	s->sessions = calloc(AUTH_SESSIONS_MAX, sizeof(*s->sessions));
	if (cfg->api_tokens != NULL && cfg->api_tokens[0] != '\0') {
		if (weft_crypto_init() != 0) {
			snprintf(err, errlen, "cannot initialise libsodium");
			return (WEFT_EUNAVAIL);
		}
		if ((rv = weft_tokens_load(&s->tokens, cfg->api_tokens, err,
		         errlen)) != WEFT_OK) {
			return (rv);
		}
		weft_log_notice("AUTH", "API tokens on: %zu from %s", s->tokens.n,
		    cfg->api_tokens);
	}
	if (cfg->cookie == NULL) {
		s->insecure = true; // --insecure without a cluster cookie
	}
	if ((rv = auth_listen_check(s, "--control", cfg->control_url, err,
	         errlen)) != WEFT_OK ||
	    (rv = auth_listen_check(s, "--http", cfg->http, err, errlen)) !=
	        WEFT_OK) {
		return (rv);
	}
	return (WEFT_OK);
}

void
io_auth_close(weft_server *s)
{
	weft_tokens_fini(&s->tokens);
	if (s->sessions != NULL) {
		sodium_memzero(s->sessions, AUTH_SESSIONS_MAX * sizeof(*s->sessions));
		free(s->sessions);
		s->sessions = NULL;
		pthread_mutex_destroy(&s->auth_lock);
	}
}

bool
io_auth_on(const weft_server *s)
{
	return (s->tokens.n > 0);
}

enum weft_role
io_auth_need(const Weft__ControlRequest *cr)
{
	switch (cr->req_case) {
	case WEFT__CONTROL_REQUEST__REQ_STATUS:
	case WEFT__CONTROL_REQUEST__REQ_RUNS:
	case WEFT__CONTROL_REQUEST__REQ_EVENTS:
	case WEFT__CONTROL_REQUEST__REQ_WORKERS:
	case WEFT__CONTROL_REQUEST__REQ_INFO:
	case WEFT__CONTROL_REQUEST__REQ_DEFINITIONS:
	case WEFT__CONTROL_REQUEST__REQ_OUTPUT:
	case WEFT__CONTROL_REQUEST__REQ_DEFINITION:
		return (WEFT_ROLE_READ);
	case WEFT__CONTROL_REQUEST__REQ_SCHEDULE:
		// Listing and reading a schedule read; the rest change it.
		return (strcmp(cr->schedule->action, "list") == 0 ||
		               strcmp(cr->schedule->action, "get") == 0
		           ? WEFT_ROLE_READ
		           : WEFT_ROLE_OPERATE);
	default:
		// define, run, lifecycle, and whatever is added later
		// without saying otherwise.
		return (WEFT_ROLE_OPERATE);
	}
}

const char *
io_auth_control(weft_server *s, const Weft__ControlRequest *cr)
{
	const weft_token *t;
	enum weft_role    need = io_auth_need(cr);

	if (!io_auth_on(s)) {
		return (NULL);
	}
	if (cr->token == NULL || cr->token[0] == '\0') {
		return ("this coordinator needs an API token: pass --token TOKEN "
		        "or set WEFT_TOKEN");
	}
	t = weft_tokens_find(&s->tokens, cr->token, strlen(cr->token));
	if (t == NULL) {
		return ("unknown API token");
	}
	if (t->role < need) {
		return ("this request needs a token with the operate role; "
		        "the token given may only read");
	}
	return (NULL);
}

// ---- sessions ----

static void
auth_session_hash(const char *id, size_t len, uint8_t out[32])
{
	crypto_generichash(out, 32, (const uint8_t *) id, len, NULL, 0);
}

void
io_session_new(weft_server *s, const weft_token *t, char id[65])
{
	uint8_t            raw[32];
	int64_t            now = weft_clock_mono_ms();
	struct io_session *slot = NULL;

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(id, 65, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
	pthread_mutex_lock(&s->auth_lock);
	// A free or expired slot; when there is none, the session that would
	// expire first makes way (bounded memory, whatever the logins).
	for (size_t i = 0; i < AUTH_SESSIONS_MAX; i++) {
		struct io_session *x = &s->sessions[i];
		if (x->role == WEFT_ROLE_NONE || x->expires_ms <= now) {
			slot = x;
			break;
		}
		if (slot == NULL || x->expires_ms < slot->expires_ms) {
			slot = x;
		}
	}
	auth_session_hash(id, 64, slot->hash);
	snprintf(slot->name, sizeof(slot->name), "%s", t->name);
	slot->role       = t->role;
	slot->expires_ms = now + AUTH_SESSION_MS;
	pthread_mutex_unlock(&s->auth_lock);
}

// auth_session_slot finds a live session by id; the caller holds the lock.
static struct io_session *
auth_session_slot(weft_server *s, const char *id, size_t len)
{
	struct io_session *found = NULL;
	uint8_t            h[32];
	int64_t            now = weft_clock_mono_ms();

	if (len != 64) {
		return (NULL);
	}
	auth_session_hash(id, len, h);
	for (size_t i = 0; i < AUTH_SESSIONS_MAX; i++) {
		struct io_session *x = &s->sessions[i];
		if (x->role != WEFT_ROLE_NONE && x->expires_ms > now &&
		    sodium_memcmp(x->hash, h, 32) == 0) {
			found = x;
		}
	}
	return (found);
}

void
io_session_drop(weft_server *s, const char *id, size_t len)
{
	struct io_session *x;

	pthread_mutex_lock(&s->auth_lock);
	if ((x = auth_session_slot(s, id, len)) != NULL) {
		sodium_memzero(x, sizeof(*x));
	}
	pthread_mutex_unlock(&s->auth_lock);
}

// ---- HTTP requests and WebSocket upgrades ----

bool
io_auth_cookie(const char *cookies, const char **id, size_t *len)
{
	const char *p = cookies;
	size_t      n = strlen(AUTH_COOKIE);

	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ';') {
			p++;
		}
		if (strncmp(p, AUTH_COOKIE, n) == 0 && p[n] == '=') {
			*id  = p + n + 1;
			*len = strcspn(*id, "; ");
			return (true);
		}
		p = strchr(p, ';');
	}
	return (false);
}

enum weft_role
io_auth_headers(weft_server *s, const char *authz, const char *cookies,
    io_ident *who)
{
	const char *id;
	size_t      len;

	memset(who, 0, sizeof(*who));
	if (!io_auth_on(s)) {
		who->role = WEFT_ROLE_OPERATE;
		return (who->role);
	}
	// A token given is the answer, right or wrong: a bad one is not
	// rescued by a cookie.
	if (authz != NULL) {
		const weft_token *t;
		if (strncasecmp(authz, "Bearer ", 7) != 0) {
			return (WEFT_ROLE_NONE);
		}
		authz += 7;
		while (*authz == ' ') {
			authz++;
		}
		if ((t = weft_tokens_find(&s->tokens, authz, strlen(authz))) ==
		    NULL) {
			return (WEFT_ROLE_NONE);
		}
		snprintf(who->name, sizeof(who->name), "%s", t->name);
		who->role = t->role;
		who->via  = "token";
		return (who->role);
	}
	if (cookies != NULL && io_auth_cookie(cookies, &id, &len)) {
		struct io_session *x;
		pthread_mutex_lock(&s->auth_lock);
		if ((x = auth_session_slot(s, id, len)) != NULL) {
			snprintf(who->name, sizeof(who->name), "%s", x->name);
			who->role = x->role;
			who->via  = "session";
		}
		pthread_mutex_unlock(&s->auth_lock);
	}
	return (who->role);
}

// auth_ws_header reads one request header of a WebSocket pipe: malloc'd
// (nng_strfree), or NULL when absent.
static char *
auth_ws_header(nng_pipe p, const char *name)
{
	char  opt[128];
	char *v = NULL;

	snprintf(opt, sizeof(opt), "%s%s", NNG_OPT_WS_REQUEST_HEADER, name);
	if (nng_pipe_get_string(p, opt, &v) != 0) {
		return (NULL);
	}
	return (v);
}

// auth_ws_pipe_cb runs before a pipe joins the events socket. Pipes of
// the tcp:// listener carry no HTTP headers and pass (the cluster cookie
// is their guard). A WebSocket pipe must come from no browser page or from
// ours (Origin), and, with tokens on, carry a read token or a session.
static void
auth_ws_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	weft_server   *s = arg;
	char          *uri = NULL, *origin, *authz, *cookies;
	const char    *why = NULL;
	io_ident       who;

	(void) ev;
	if (nng_pipe_get_string(p, NNG_OPT_WS_REQUEST_URI, &uri) != 0) {
		return; // not a WebSocket pipe
	}
	nng_strfree(uri);
	origin  = auth_ws_header(p, "Origin");
	authz   = auth_ws_header(p, "Authorization");
	cookies = auth_ws_header(p, "Cookie");
	if (origin != NULL && !io_http_origin_ok(s, origin)) {
		why = "cross-origin WebSocket refused";
	} else if (io_auth_headers(s, authz, cookies, &who) < WEFT_ROLE_READ) {
		why = "no valid API token or session";
	}
	if (why != NULL) {
		weft_log_info("AUTH-REFUSED", "stream: %s", why);
		nng_pipe_close(p);
	}
	nng_strfree(origin);
	if (authz != NULL) {
		sodium_memzero(authz, strlen(authz));
	}
	nng_strfree(authz);
	if (cookies != NULL) {
		sodium_memzero(cookies, strlen(cookies));
	}
	nng_strfree(cookies);
}

int
io_auth_ws_watch(weft_server *s)
{
	return (nng_pipe_notify(s->events, NNG_PIPE_EV_ADD_PRE, auth_ws_pipe_cb,
	    s));
}
