// wire: envelope framing. Every message between weft nodes passes here.
#include "wire.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"

weft_wire_stats weft_wire_dropped;

void
weft_wire_init(weft_wire *w, const char *sender)
{
	snprintf(w->sender, sizeof(w->sender), "%s", sender);
	atomic_store(&w->seq, 0);
}

weft_err
weft_wire_pack(weft_wire *w, Weft__Envelope *env, const char *topic,
    nng_msg **out)
{
	nng_msg *msg;
	size_t   tlen = topic ? strlen(topic) + 1 : 0;
	size_t   len;
	int      rv;

	env->version = WEFT_WIRE_VERSION;
	env->sender  = w->sender;
	env->seq     = atomic_fetch_add(&w->seq, 1) + 1;
	env->ts_ms   = (uint64_t) weft_clock_wall_ms();
	len          = weft__envelope__get_packed_size(env);
	if (len + tlen > WEFT_WIRE_MAX) {
		return (WEFT_ETOOBIG);
	}
	if ((rv = nng_msg_alloc(&msg, len + tlen)) != 0) {
		return (weft_err_from_nng(rv));
	}
	if (tlen > 0) {
		memcpy(nng_msg_body(msg), topic, tlen);
	}
	weft__envelope__pack(env, (uint8_t *) nng_msg_body(msg) + tlen);
	*out = msg;
	return (WEFT_OK);
}

weft_err
weft_wire_unpack(nng_msg *msg, int has_topic, Weft__Envelope **out)
{
	const uint8_t  *body = nng_msg_body(msg);
	size_t          len  = nng_msg_len(msg);
	Weft__Envelope *env;

	if (len > WEFT_WIRE_MAX) {
		atomic_fetch_add(&weft_wire_dropped.oversize, 1);
		return (WEFT_ETOOBIG);
	}
	if (has_topic) {
		const uint8_t *nul = memchr(body, '\0', len);
		if (nul == NULL) {
			atomic_fetch_add(&weft_wire_dropped.garbage, 1);
			return (WEFT_EPROTO);
		}
		len -= (size_t) (nul + 1 - body);
		body = nul + 1;
	}
	env = weft__envelope__unpack(NULL, len, body);
	if (env == NULL) {
		atomic_fetch_add(&weft_wire_dropped.garbage, 1);
		return (WEFT_EPROTO);
	}
	if (env->version != WEFT_WIRE_VERSION) {
		atomic_fetch_add(&weft_wire_dropped.version, 1);
		weft__envelope__free_unpacked(env, NULL);
		return (WEFT_EVERSION);
	}
	*out = env;
	return (WEFT_OK);
}

weft_err
weft_wire_expect(nng_msg *msg, Weft__Envelope__BodyCase body,
    Weft__Envelope **out)
{
	Weft__Envelope *env;
	weft_err        err;

	if ((err = weft_wire_unpack(msg, 0, &env)) != WEFT_OK) {
		return (err);
	}
	if (env->body_case != body) {
		atomic_fetch_add(&weft_wire_dropped.unexpected, 1);
		weft__envelope__free_unpacked(env, NULL);
		return (WEFT_EPROTO);
	}
	*out = env;
	return (WEFT_OK);
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
