// wire: envelope framing. Every message between weft nodes passes here.
#include "wire.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"

weft_wire_stats weft_wire_dropped;

// wire_incarnation is the incarnation a public key binds: its first 8
// bytes, little-endian.
static uint64_t
wire_incarnation(const uint8_t *pk)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--) {
		v = (v << 8) | pk[i];
	}
	return (v);
}

void
weft_wire_init(weft_wire *w, const char *sender)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->sender, sizeof(w->sender), "%s", sender);
	atomic_store(&w->seq, 0);
	if (sodium_init() < 0) {
		abort(); // no randomness: nothing weft sends could be trusted
	}
	do {
		crypto_sign_keypair(w->pk, w->sk);
		w->incarnation = wire_incarnation(w->pk);
	} while (w->incarnation == 0);
	if (crypto_sign_ed25519_sk_to_curve25519(w->xsk, w->sk) != 0) {
		abort(); // cannot happen for a key libsodium drew
	}
	pthread_mutex_init(&w->peers_lock, NULL);
}

void
weft_wire_set_key(weft_wire *w, const weft_cookie *c, int64_t skew_ms)
{
	weft_cookie_derive(c, "wire", w->key);
	if (!w->keyed) {
		weft_replay_init(&w->replay, skew_ms);
	}
	// Pair keys hash the cookie in: those made with another are void.
	pthread_mutex_lock(&w->peers_lock);
	if (w->peers == NULL) {
		w->peers = weft_xalloc(WEFT_WIRE_PEERS * sizeof(*w->peers));
	} else {
		sodium_memzero(w->peers, WEFT_WIRE_PEERS * sizeof(*w->peers));
	}
	pthread_mutex_unlock(&w->peers_lock);
	w->keyed = true;
}

void
weft_wire_fini(weft_wire *w)
{
	if (w->keyed) {
		weft_replay_fini(&w->replay);
		sodium_memzero(w->key, sizeof(w->key));
		w->keyed = false;
	}
	if (w->peers != NULL) {
		sodium_memzero(w->peers, WEFT_WIRE_PEERS * sizeof(*w->peers));
		free(w->peers);
		w->peers = NULL;
	}
	sodium_memzero(w->sk, sizeof(w->sk));
	sodium_memzero(w->xsk, sizeof(w->xsk));
}

// ---- pair keys ----

// wire_peer_slot is where the key of the peer of incarnation inc lives.
static size_t
wire_peer_slot(uint64_t inc)
{
	// Incarnations are random already; the multiply spreads any bias.
	return ((size_t) ((inc * 0x9E3779B97F4A7C15ull) >> 40) %
	    WEFT_WIRE_PEERS);
}

// wire_pair_derive computes our pair key with the holder of public key pk
// (see wire.h); false for a key that is not a usable point, or our own.
static bool
wire_pair_derive(const weft_wire *w, const uint8_t *pk, uint8_t out[32])
{
	crypto_generichash_state st;
	uint8_t                  xpk[32], shared[32];
	int                      order = memcmp(w->pk, pk, WEFT_WIRE_PK);
	bool                     ok;

	ok = order != 0 && crypto_sign_ed25519_pk_to_curve25519(xpk, pk) == 0 &&
	    crypto_scalarmult(shared, w->xsk, xpk) == 0;
	if (ok) {
		// Both ends hash the two keys in the same order.
		crypto_generichash_init(&st, w->key, WEFT_KEY_LEN, 32);
		crypto_generichash_update(&st, (const uint8_t *) "weft-pair-1",
		    11);
		crypto_generichash_update(&st, shared, sizeof(shared));
		crypto_generichash_update(&st, order < 0 ? w->pk : pk,
		    WEFT_WIRE_PK);
		crypto_generichash_update(&st, order < 0 ? pk : w->pk,
		    WEFT_WIRE_PK);
		crypto_generichash_final(&st, out, 32);
		sodium_memzero(&st, sizeof(st));
	}
	sodium_memzero(shared, sizeof(shared));
	return (ok);
}

// wire_peer_key puts our pair key with pk in out: from the table, or
// derived and kept. False when pk cannot be paired with.
static bool
wire_peer_key(weft_wire *w, const uint8_t *pk, uint8_t out[32])
{
	weft_wire_peer *p = &w->peers[wire_peer_slot(wire_incarnation(pk))];
	bool            found;

	pthread_mutex_lock(&w->peers_lock);
	if ((found = p->used && memcmp(p->pk, pk, WEFT_WIRE_PK) == 0)) {
		memcpy(out, p->key, 32);
	}
	pthread_mutex_unlock(&w->peers_lock);
	if (found) {
		return (true);
	}
	// Derived unlocked: an X25519 is ~0.2 ms here, and others send.
	if (!wire_pair_derive(w, pk, out)) {
		return (false);
	}
	pthread_mutex_lock(&w->peers_lock);
	p->used = true;
	memcpy(p->pk, pk, WEFT_WIRE_PK);
	memcpy(p->key, out, 32);
	pthread_mutex_unlock(&w->peers_lock);
	return (true);
}

// wire_peer_find puts the key and pair key of the process of incarnation
// inc in pk and key when we have them.
static bool
wire_peer_find(weft_wire *w, uint64_t inc, uint8_t *pk, uint8_t key[32])
{
	weft_wire_peer *p = &w->peers[wire_peer_slot(inc)];
	bool            found;

	pthread_mutex_lock(&w->peers_lock);
	if ((found = p->used && wire_incarnation(p->pk) == inc)) {
		memcpy(pk, p->pk, WEFT_WIRE_PK);
		memcpy(key, p->key, 32);
	}
	pthread_mutex_unlock(&w->peers_lock);
	return (found);
}

// wire_tag computes the HMAC of a frame: the bytes before the tag (topic
// and header) and the bytes after it (signer's key and signature, and the
// Envelope).
static void
wire_tag(const uint8_t key[WEFT_KEY_LEN], const uint8_t *head, size_t hlen,
    const uint8_t *rest, size_t rlen, uint8_t out[WEFT_WIRE_TAG])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, WEFT_KEY_LEN);
	crypto_auth_hmacsha256_update(&st, head, hlen);
	crypto_auth_hmacsha256_update(&st, rest, rlen);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

// wire_digest is what a frame's signature signs: BLAKE2b-256 over the
// topic and header, the signer's key, and the Envelope. Keyed with a pair
// key (key not NULL) it is a paired frame's mac.
static void
wire_digest(const uint8_t *key, const uint8_t *head, size_t hlen,
    const uint8_t *pk, const uint8_t *env, size_t elen, uint8_t out[32])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, key, key != NULL ? 32 : 0, 32);
	crypto_generichash_update(&st, head, hlen);
	crypto_generichash_update(&st, pk, WEFT_WIRE_PK);
	crypto_generichash_update(&st, env, elen);
	crypto_generichash_final(&st, out, 32);
	sodium_memzero(&st, sizeof(st));
}

// wire_point_to_point tells whether env is for one node only, and so must
// name it as its recipient.
static bool
wire_point_to_point(const Weft__Envelope *env)
{
	switch (env->body_case) {
	case WEFT__ENVELOPE__BODY_WORKER_INFO:
	case WEFT__ENVELOPE__BODY_ASSIGN:
	case WEFT__ENVELOPE__BODY_ASSIGN_REPLY:
	case WEFT__ENVELOPE__BODY_RESULTS:
	case WEFT__ENVELOPE__BODY_RESULT_ACK:
	case WEFT__ENVELOPE__BODY_GOODBYE:
		return (true);
	default:
		return (false);
	}
}

// wire_signed_body tells whether a body says who its sender is, and so
// must be signed: survey answers and results (the worker process holding
// a name and its attempts), surveys and assignments (the coordinator
// process workers take work from). Replies travel back on the connection
// their request came on, and events on the coordinator's pub socket, which
// nobody but it writes to: the tag is enough for those, and signing every
// published batch would cost more than the rest of the coordinator's CPU.
static bool
wire_signed_body(Weft__Envelope__BodyCase body)
{
	switch (body) {
	case WEFT__ENVELOPE__BODY_SURVEY:
	case WEFT__ENVELOPE__BODY_WORKER_INFO:
	case WEFT__ENVELOPE__BODY_ASSIGN:
	case WEFT__ENVELOPE__BODY_RESULTS:
	case WEFT__ENVELOPE__BODY_GOODBYE:
		return (true);
	default:
		return (false);
	}
}

// wire_pack packs env (see weft_wire_pack), paired for the process of
// incarnation peer when we know its key.
static weft_err
wire_pack(weft_wire *w, Weft__Envelope *env, const char *topic,
    uint64_t peer, nng_msg **out)
{
	nng_msg *msg;
	size_t   tlen = topic ? strlen(topic) + 1 : 0;
	size_t   head = tlen + WEFT_WIRE_HEADER;
	size_t   tag  = w->keyed ? WEFT_WIRE_TAG : 0;
	bool     sign = w->keyed && wire_signed_body(env->body_case);
	uint8_t  ppk[WEFT_WIRE_PK], pkey[32];
	bool     pair = sign && peer != 0 && wire_peer_find(w, peer, ppk, pkey);
	size_t   sig  = !sign ? 0
	       : pair        ? WEFT_WIRE_PK + WEFT_WIRE_MAC
	                     : WEFT_WIRE_PK + WEFT_WIRE_SIG;
	size_t   len;
	uint8_t *b, digest[32];
	int      rv;

	env->version     = WEFT_WIRE_VERSION;
	env->sender      = w->sender;
	env->incarnation = w->incarnation;
	env->seq         = atomic_fetch_add(&w->seq, 1) + 1;
	env->ts_ms       = (uint64_t) weft_clock_wall_ms();
	len              = weft__envelope__get_packed_size(env);
	if (len + head + tag + sig > WEFT_WIRE_MAX) {
		sodium_memzero(pkey, sizeof(pkey));
		return (WEFT_ETOOBIG);
	}
	if ((rv = nng_msg_alloc(&msg, head + tag + sig + len)) != 0) {
		sodium_memzero(pkey, sizeof(pkey));
		return (weft_err_from_nng(rv));
	}
	b = nng_msg_body(msg);
	if (tlen > 0) {
		memcpy(b, topic, tlen);
	}
	b[tlen]     = 'W';
	b[tlen + 1] = 'F';
	b[tlen + 2] = WEFT_WIRE_VERSION;
	b[tlen + 3] = (uint8_t) ((w->keyed ? WEFT_WIRE_TAGGED : 0) |
	    (pair ? WEFT_WIRE_PAIRED : sign ? WEFT_WIRE_SIGNED : 0));
	weft__envelope__pack(env, b + head + tag + sig);
	if (pair) {
		uint8_t *pk = b + head + tag;
		memcpy(pk, w->pk, WEFT_WIRE_PK);
		wire_digest(pkey, b, head, pk, b + head + tag + sig, len,
		    pk + WEFT_WIRE_PK);
		sodium_memzero(pkey, sizeof(pkey));
	} else if (sign) {
		uint8_t *pk = b + head + tag;
		memcpy(pk, w->pk, WEFT_WIRE_PK);
		wire_digest(NULL, b, head, pk, b + head + tag + sig, len,
		    digest);
		crypto_sign_detached(pk + WEFT_WIRE_PK, NULL, digest,
		    sizeof(digest), w->sk);
	}
	if (w->keyed) {
		wire_tag(w->key, b, head, b + head + tag, sig + len, b + head);
	}
	*out = msg;
	return (WEFT_OK);
}

weft_err
weft_wire_pack(weft_wire *w, Weft__Envelope *env, const char *topic,
    nng_msg **out)
{
	return (wire_pack(w, env, topic, 0, out));
}

weft_err
weft_wire_pack_to(weft_wire *w, Weft__Envelope *env, uint64_t peer,
    nng_msg **out)
{
	return (wire_pack(w, env, NULL, peer, out));
}

// wire_drop counts one dropped message and returns err.
static weft_err
wire_drop(_Atomic uint64_t *counter, weft_err err)
{
	atomic_fetch_add(counter, 1);
	return (err);
}

weft_err
weft_wire_unpack(weft_wire *auth, nng_msg *msg, int has_topic,
    Weft__Envelope **out)
{
	const uint8_t  *frame = nng_msg_body(msg);
	const uint8_t  *body  = frame;
	const uint8_t  *pk    = NULL;
	size_t          len   = nng_msg_len(msg);
	size_t          hlen, skip;
	Weft__Envelope *env;
	bool            tagged, signed_, paired;
	uint8_t         want[WEFT_WIRE_TAG], digest[32], pkey[32];

	if (len > WEFT_WIRE_MAX) {
		return (wire_drop(&weft_wire_dropped.oversize, WEFT_ETOOBIG));
	}
	if (has_topic) {
		const uint8_t *nul = memchr(body, '\0', len);
		if (nul == NULL) {
			return (wire_drop(&weft_wire_dropped.garbage, WEFT_EPROTO));
		}
		len -= (size_t) (nul + 1 - body);
		body = nul + 1;
	}
	if (len >= 1 && body[0] == 0x08) {
		// A bare Envelope starting with its version field: a weft
		// of protocol version 1.
		return (wire_drop(&weft_wire_dropped.version, WEFT_EVERSION));
	}
	if (len < WEFT_WIRE_HEADER || body[0] != 'W' || body[1] != 'F') {
		return (wire_drop(&weft_wire_dropped.garbage, WEFT_EPROTO));
	}
	if (body[2] != WEFT_WIRE_VERSION) {
		return (wire_drop(&weft_wire_dropped.version, WEFT_EVERSION));
	}
	tagged  = (body[3] & WEFT_WIRE_TAGGED) != 0;
	signed_ = (body[3] & WEFT_WIRE_SIGNED) != 0;
	paired  = (body[3] & WEFT_WIRE_PAIRED) != 0;
	hlen    = (size_t) (body - frame) + WEFT_WIRE_HEADER;
	skip    = WEFT_WIRE_HEADER + (tagged ? WEFT_WIRE_TAG : 0) +
	    (signed_ ? WEFT_WIRE_PK + WEFT_WIRE_SIG : 0) +
	    (paired ? WEFT_WIRE_PK + WEFT_WIRE_MAC : 0);
	if (len < skip || (signed_ && paired)) {
		return (wire_drop(&weft_wire_dropped.garbage, WEFT_EPROTO));
	}
	if (auth != NULL && auth->keyed) {
		if (!tagged) {
			return (wire_drop(&weft_wire_dropped.auth, WEFT_EAUTH));
		}
		// The cookie first (cheap, constant time), then the signer.
		wire_tag(auth->key, frame, hlen, body + WEFT_WIRE_HEADER +
		        WEFT_WIRE_TAG,
		    len - WEFT_WIRE_HEADER - WEFT_WIRE_TAG, want);
		if (crypto_verify_32(want, body + WEFT_WIRE_HEADER) != 0) {
			return (wire_drop(&weft_wire_dropped.auth, WEFT_EAUTH));
		}
		if (signed_) {
			pk = body + WEFT_WIRE_HEADER + WEFT_WIRE_TAG;
			wire_digest(NULL, frame, hlen, pk, body + skip,
			    len - skip, digest);
			if (crypto_sign_verify_detached(pk + WEFT_WIRE_PK, digest,
			        sizeof(digest), pk) != 0) {
				return (wire_drop(&weft_wire_dropped.auth,
				    WEFT_EAUTH));
			}
			// Its key, to pair what we send it from now on. (Key
			// and incarnation are bound below; a frame that fails
			// that check leaves a key we never pair with: nothing
			// is sent to an incarnation that frame claims.)
			(void) wire_peer_key(auth, pk, pkey);
		} else if (paired) {
			pk = body + WEFT_WIRE_HEADER + WEFT_WIRE_TAG;
			if (!wire_peer_key(auth, pk, pkey)) {
				return (wire_drop(&weft_wire_dropped.auth,
				    WEFT_EAUTH));
			}
			wire_digest(pkey, frame, hlen, pk, body + skip,
			    len - skip, digest);
			if (crypto_verify_32(digest, pk + WEFT_WIRE_PK) != 0) {
				sodium_memzero(pkey, sizeof(pkey));
				return (wire_drop(&weft_wire_dropped.auth,
				    WEFT_EAUTH));
			}
		}
		sodium_memzero(pkey, sizeof(pkey));
	}
	env = weft__envelope__unpack(NULL, len - skip, body + skip);
	if (env == NULL) {
		return (wire_drop(&weft_wire_dropped.garbage, WEFT_EPROTO));
	}
	if (env->version != WEFT_WIRE_VERSION) {
		weft__envelope__free_unpacked(env, NULL);
		return (wire_drop(&weft_wire_dropped.version, WEFT_EVERSION));
	}
	if (auth != NULL && auth->keyed &&
	    (pk != NULL ? env->incarnation != wire_incarnation(pk)
	                : wire_signed_body(env->body_case))) {
		// Signed by one process, claiming another's incarnation; or a
		// body that says who sent it, not signed.
		weft__envelope__free_unpacked(env, NULL);
		return (wire_drop(&weft_wire_dropped.auth, WEFT_EAUTH));
	}
	if (auth != NULL && auth->keyed && wire_point_to_point(env) &&
	    strcmp(env->recipient, auth->sender) != 0) {
		// Meant for another node: an assignment recorded on its way to
		// one worker and played to another, say.
		weft__envelope__free_unpacked(env, NULL);
		return (wire_drop(&weft_wire_dropped.auth, WEFT_EAUTH));
	}
	if (auth != NULL && auth->keyed) {
		// An unsigned frame proves no incarnation: its sequence lives
		// apart, so no cookie holder can move a signer's window.
		char who[200];
		snprintf(who, sizeof(who), "%s%.150s", pk != NULL ? "" : "~",
		    env->sender);
		switch (weft_replay_check(&auth->replay, who,
		    env->incarnation, env->seq, (int64_t) env->ts_ms,
		    weft_clock_wall_ms())) {
		case WEFT_REPLAY_OK:
			break;
		case WEFT_REPLAY_SKEW:
			weft__envelope__free_unpacked(env, NULL);
			return (wire_drop(&weft_wire_dropped.skew, WEFT_EREPLAY));
		default:
			weft__envelope__free_unpacked(env, NULL);
			return (wire_drop(&weft_wire_dropped.replay, WEFT_EREPLAY));
		}
	}
	*out = env;
	return (WEFT_OK);
}

weft_err
weft_wire_expect_any(weft_wire *auth, nng_msg *msg,
    const Weft__Envelope__BodyCase *bodies, size_t n, Weft__Envelope **out)
{
	Weft__Envelope *env;
	weft_err        err;

	if ((err = weft_wire_unpack(auth, msg, 0, &env)) != WEFT_OK) {
		return (err);
	}
	for (size_t k = 0; k < n; k++) {
		if (env->body_case == bodies[k]) {
			*out = env;
			return (WEFT_OK);
		}
	}
	weft__envelope__free_unpacked(env, NULL);
	return (wire_drop(&weft_wire_dropped.unexpected, WEFT_EPROTO));
}

weft_err
weft_wire_expect(weft_wire *auth, nng_msg *msg, Weft__Envelope__BodyCase body,
    Weft__Envelope **out)
{
	return (weft_wire_expect_any(auth, msg, &body, 1, out));
}

void
weft_wire_log_drop(const char *socket, weft_err err, nng_msg *msg)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static int64_t         last_ms;
	static uint64_t        quiet;
	nng_sockaddr           sa;
	char                   peer[64] = "?";
	int64_t                now = weft_clock_mono_ms();
	uint64_t               skipped;

	pthread_mutex_lock(&lock);
	if (last_ms != 0 && now - last_ms < 1000) {
		quiet++;
		pthread_mutex_unlock(&lock);
		return;
	}
	last_ms = now;
	skipped = quiet;
	quiet   = 0;
	pthread_mutex_unlock(&lock);
	if (msg != NULL &&
	    nng_pipe_get_addr(nng_msg_get_pipe(msg), NNG_OPT_REMADDR, &sa) == 0) {
		weft_wire_addr_str(&sa, peer, sizeof(peer));
	}
	weft_log_warn("WIRE-DROP",
	    "socket=%s peer=%s reason=%s (%s) not logged since last=%llu "
	    "(totals: auth=%llu replay=%llu skew=%llu garbage=%llu "
	    "version=%llu oversize=%llu unexpected=%llu)",
	    socket, peer, weft_err_name(err), weft_err_str(err),
	    (unsigned long long) skipped,
	    (unsigned long long) atomic_load(&weft_wire_dropped.auth),
	    (unsigned long long) atomic_load(&weft_wire_dropped.replay),
	    (unsigned long long) atomic_load(&weft_wire_dropped.skew),
	    (unsigned long long) atomic_load(&weft_wire_dropped.garbage),
	    (unsigned long long) atomic_load(&weft_wire_dropped.version),
	    (unsigned long long) atomic_load(&weft_wire_dropped.oversize),
	    (unsigned long long) atomic_load(&weft_wire_dropped.unexpected));
}

void
weft_wire_addr_str(const nng_sockaddr *sa, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	switch (sa->s_family) {
	case NNG_AF_INET:
		inet_ntop(AF_INET, &sa->s_in.sa_addr, ip, sizeof(ip));
		snprintf(out, len, "%s:%u", ip, ntohs(sa->s_in.sa_port));
		break;
	case NNG_AF_INET6:
		inet_ntop(AF_INET6, sa->s_in6.sa_addr, ip, sizeof(ip));
		snprintf(out, len, "[%s]:%u", ip, ntohs(sa->s_in6.sa_port));
		break;
	default:
		snprintf(out, len, "?");
		break;
	}
}

void
weft_wire_free(Weft__Envelope *env)
{
	if (env != NULL) {
		weft__envelope__free_unpacked(env, NULL);
	}
}

void
weft_wire_socket_limits(nng_socket s)
{
	nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, WEFT_WIRE_MAX);
}

void
weft_wire_url_host(const char *url, char *out, size_t len)
{
	const char *p = strstr(url, "://");
	const char *end;

	out[0] = '\0';
	if (p == NULL) {
		return;
	}
	p += 3;
	if (*p == '[') {
		end = strchr(p, ']');
		end = end ? end + 1 : p + strlen(p);
	} else {
		end = p + strcspn(p, ":/");
	}
	snprintf(out, len, "%.*s", (int) (end - p), p);
}

void
weft_wire_url_fill(const char *url, const char *host, char *out, size_t len)
{
	char        h[128];
	const char *p = strstr(url, "://");

	weft_wire_url_host(url, h, sizeof(h));
	if (p == NULL || host == NULL || host[0] == '\0' ||
	    (h[0] != '\0' && strcmp(h, "0.0.0.0") != 0 &&
	        strcmp(h, "[::]") != 0 && strcmp(h, "*") != 0)) {
		snprintf(out, len, "%s", url);
		return;
	}
	snprintf(out, len, "%.*s%s%s", (int) (p + 3 - url), url, host,
	    p + 3 + strlen(h));
}
