// wire: protobuf Envelope <-> nng_msg, with version checks and counters of
// everything dropped.
#ifndef WEFT_WIRE_H
#define WEFT_WIRE_H

#include <stdatomic.h>
#include <stdint.h>

#include <nng/nng.h>

#include "err.h"
#include "weft.pb-c.h"

#define WEFT_WIRE_VERSION 1

// Workers redial a coordinator that went away with a backoff from 100 ms
// up to this: after a restart the coordinator allows a worker that long
// before it starts counting the surveys the worker misses.
#define WEFT_RECONNECT_MIN_MS 100
#define WEFT_RECONNECT_MAX_MS 2000

// Largest message any weft socket accepts (also set as NNG_OPT_RECVMAXSZ).
#define WEFT_WIRE_MAX (16u * 1024u * 1024u)

// The sending side of one node: its name and per-sender sequence.
typedef struct weft_wire {
	char            sender[128]; // node name, terminated
	_Atomic uint64_t seq;        // last sequence number used
} weft_wire;

// Counters of received messages that were dropped, per reason. Process-wide.
typedef struct weft_wire_stats {
	_Atomic uint64_t garbage;   // could not be decoded
	_Atomic uint64_t version;   // unknown protocol version
	_Atomic uint64_t oversize;  // larger than WEFT_WIRE_MAX
	_Atomic uint64_t unexpected; // decoded, but the wrong body here
} weft_wire_stats;

extern weft_wire_stats weft_wire_dropped;

// weft_wire_init sets the node name (borrowed, copied).
void weft_wire_init(weft_wire *w, const char *sender);

// weft_wire_pack stamps env (version, sender, seq, time; borrowed) and packs
// it into a new message after an optional topic prefix (topic + '\0'; NULL
// for none). On success *out is the caller's message. Thread-safe.
weft_err weft_wire_pack(weft_wire *w, Weft__Envelope *env, const char *topic,
    nng_msg **out);

// weft_wire_unpack decodes msg (borrowed; skipping a topic prefix when
// has_topic) into *out, which the caller frees with weft_wire_free.
// Returns WEFT_EPROTO, WEFT_EVERSION or WEFT_ETOOBIG and counts the drop in
// weft_wire_dropped. Never logs: the caller knows the socket and logs.
weft_err weft_wire_unpack(nng_msg *msg, int has_topic, Weft__Envelope **out);

// weft_wire_expect is weft_wire_unpack plus a check that the body is `body`;
// a wrong body is counted as unexpected and freed.
weft_err weft_wire_expect(nng_msg *msg, Weft__Envelope__BodyCase body,
    Weft__Envelope **out);

// weft_wire_free frees an unpacked envelope (NULL is fine).
void weft_wire_free(Weft__Envelope *env);

// weft_wire_url_fill copies url into out (len bytes), replacing a wildcard
// host (tcp://0.0.0.0:P, tcp://[::]:P, tcp://*:P, tcp://:P) with host: an
// address a node listens on for everyone means nothing to a peer on another
// machine, which must dial the address it reached that node by.
void weft_wire_url_fill(const char *url, const char *host, char *out,
    size_t len);

// weft_wire_url_host copies the host part of a tcp:// or ws:// url into out
// (brackets of IPv6 kept); "" when there is none.
void weft_wire_url_host(const char *url, char *out, size_t len);

// weft_wire_socket_limits sets the receive size cap on a socket.
void weft_wire_socket_limits(nng_socket s);

#endif
