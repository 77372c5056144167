// wire: protobuf Envelope <-> nng_msg: the frame, its HMAC, replay checks,
// version checks and counters of everything dropped.
//
// A frame is
//
//	[topic '\0']  'W' 'F' version flags  [tag: 32]  [key: 32  sig: 64]
//	Envelope
//
// or, paired, [tag: 32] [key: 32  mac: 32] in place of tag, key and sig.
//
// The topic is there on the events pub socket only: "run:<id>" for a
// message of one run's events, "node:<name>" for one node's cluster events,
// and WEFT_TOPIC_MIXED for a release whose events span several of those
// (see docs/events.md).
//
// flags bit 0 says a tag follows: HMAC-SHA256, keyed by the cluster
// cookie, over everything in the frame but the tag itself (the topic, the
// header, the signer's key and signature or mac, and the packed Envelope,
// which holds sender, incarnation, sequence, time, recipient, body type and
// body). It proves the sender holds the cookie.
//
// flags bit 1 says the sender signed the frame: its Ed25519 public key and
// a signature over a BLAKE2b digest of everything but the tag and the
// signature. Each process draws its key pair at start, and its incarnation
// is the first 8 bytes of its public key: a message in an incarnation can
// only come from the process holding that key. Other cookie holders can
// make their own frames, but cannot speak in another node's incarnation —
// so "the worker holding this attempt" and "the coordinator whose survey
// this worker answered" are identities no other node can borrow. The
// bodies that say who sent them are signed (surveys, survey answers,
// assignments, results); replies and published events carry the tag only,
// and their sequences are kept apart from signed ones.
//
// flags bit 2 says the frame is paired instead: the sender's public key
// and a keyed BLAKE2b-256 over the same bytes a signature covers, keyed by
// the pair key of the sender and the one receiver: X25519 of one's secret
// key and the other's public key (both Ed25519 keys, converted), hashed
// with the cookie and both public keys. Only those two processes can
// compute it, so it proves what a signature proves to that receiver —
// and costs two hashes where Ed25519 costs a signature and a verification
// (about 60 and 190 us on the 2-core VM we measure on, on every step's
// assignment and result). A sender pairs a frame when it knows the
// receiver's key: it learns keys from the frames it verifies (a worker's
// survey answers, the coordinator's surveys), and signs until then.
//
// A receiver that holds the cookie verifies the tag (constant time), then
// the signature or the mac and the incarnation it binds, before it decodes
// a byte of the Envelope, then refuses replays (replay.h).
#ifndef WEFT_WIRE_H
#define WEFT_WIRE_H

#include <stdatomic.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>

#include "cookie.h"
#include "err.h"
#include "replay.h"
#include "weft.pb-c.h"

#define WEFT_WIRE_VERSION 3
#define WEFT_WIRE_HEADER 4 // 'W' 'F' version flags
#define WEFT_WIRE_TAG 32   // HMAC-SHA256
#define WEFT_WIRE_PK 32    // Ed25519 public key
#define WEFT_WIRE_SIG 64   // Ed25519 signature
#define WEFT_WIRE_TAGGED 0x01
#define WEFT_WIRE_SIGNED 0x02
#define WEFT_WIRE_MAC 32   // keyed BLAKE2b-256 of a paired frame
#define WEFT_WIRE_PAIRED 0x04

// The topic of a published message holding the events of several runs (or
// nodes): one release's, in id order. A subscriber of one run subscribes to
// its "run:<id>" and to this, and keeps the events of its run.
#define WEFT_TOPIC_MIXED "mixed"
// Peers whose pair keys a node keeps (a direct-mapped table by
// incarnation: a key pushed out is derived again, ~0.2 ms, when needed).
#define WEFT_WIRE_PEERS 1024

// How far a message's timestamp may be from the receiver's clock.
#define WEFT_CLOCK_SKEW_MS 30000
// Most bytes of an attempt's progress (AttemptBeat.progress_json): the
// worker refuses more, the coordinator ignores more.
#define WEFT_WIRE_PROGRESS_MAX 4096

// Workers redial a coordinator that went away with a backoff from 100 ms
// up to this: after a restart the coordinator allows a worker that long
// before it starts counting the surveys the worker misses.
#define WEFT_RECONNECT_MIN_MS 100
#define WEFT_RECONNECT_MAX_MS 2000

// Largest message any weft socket accepts (also set as NNG_OPT_RECVMAXSZ).
#define WEFT_WIRE_MAX (16u * 1024u * 1024u)

// Most runs one RunBatchRequest may carry: one engine iteration creates
// them all and one commit (a few events each) holds them. Clients split
// larger submissions (weft submit, weft run --count).
#define WEFT_WIRE_RUN_BATCH_MAX 10000

// One node's end of the wire: its name, incarnation and per-sender
// sequence for what it sends; the key and the replay state for what it
// receives.
typedef struct weft_wire_peer {
	bool    used;              // a free slot matches no key, not even 0s
	uint8_t pk[WEFT_WIRE_PK];  // the peer's public key
	uint8_t key[32];           // our pair key with it
} weft_wire_peer;

typedef struct weft_wire {
	char             sender[128]; // node name, terminated
	uint64_t         incarnation; // first 8 bytes of pk, never 0
	_Atomic uint64_t seq;         // last sequence number used
	uint8_t          pk[WEFT_WIRE_PK]; // this process's signing key pair
	uint8_t          sk[64];
	uint8_t          xsk[32];     // sk as an X25519 secret key
	bool             keyed;       // key is set: tag, sign and verify
	uint8_t          key[WEFT_KEY_LEN];
	weft_replay      replay;
	pthread_mutex_t  peers_lock;
	weft_wire_peer  *peers;       // WEFT_WIRE_PEERS, once keyed
} weft_wire;

// Counters of received messages that were dropped, per reason. Process-wide.
typedef struct weft_wire_stats {
	_Atomic uint64_t garbage;   // could not be decoded
	_Atomic uint64_t version;   // unknown protocol version
	_Atomic uint64_t oversize;  // larger than WEFT_WIRE_MAX
	_Atomic uint64_t unexpected; // decoded, but the wrong body here
	_Atomic uint64_t auth;      // no tag, or a tag that does not verify
	_Atomic uint64_t replay;    // (sender, incarnation, seq) seen, or
	                            // below the window
	_Atomic uint64_t skew;      // timestamp outside the clock skew
} weft_wire_stats;

extern weft_wire_stats weft_wire_dropped;

// weft_wire_init sets the node name (borrowed, copied) and draws the
// process's signing key pair, and with it the incarnation. Without
// weft_wire_set_key the node sends untagged, unsigned frames.
void weft_wire_init(weft_wire *w, const char *sender);

// weft_wire_set_key makes w tag what it sends and verify what it receives
// with the cookie's "wire" key, refusing timestamps further than skew_ms
// from our clock.
void weft_wire_set_key(weft_wire *w, const weft_cookie *c, int64_t skew_ms);

// weft_wire_fini wipes the key and frees the replay state.
void weft_wire_fini(weft_wire *w);

// weft_wire_pack stamps env (version, sender, incarnation, seq, time;
// borrowed) and packs it into a new message after an optional topic prefix
// (topic + '\0'; NULL for none), tagged and signed when w has a key. The
// caller sets env->recipient on a point-to-point message (worker info,
// assignments, results and their replies): a keyed receiver drops one
// addressed to anyone else. On success *out is the caller's message.
// Thread-safe.
weft_err weft_wire_pack(weft_wire *w, Weft__Envelope *env, const char *topic,
    nng_msg **out);

// weft_wire_pack_to is weft_wire_pack for a body sent to the one process
// of incarnation peer: paired when w knows that process's key (from a
// frame it verified), signed otherwise. peer 0: signed.
weft_err weft_wire_pack_to(weft_wire *w, Weft__Envelope *env, uint64_t peer,
    nng_msg **out);

// weft_wire_unpack decodes msg (borrowed; skipping a topic prefix when
// has_topic) into *out, which the caller frees with weft_wire_free.
//
// auth is the receiving node's wire. When it holds a key the frame must
// carry a tag that verifies and a signature (or a mac made with our pair
// key with the sender) that verifies and binds the incarnation (else
// WEFT_EAUTH), checked before anything is decoded, and a timestamp within
// the skew and a sequence not seen before (else WEFT_EREPLAY). auth NULL
// decodes without those checks: only the control socket does that, whose
// clients hold API tokens, not the cookie.
//
// Other failures: WEFT_EPROTO, WEFT_EVERSION, WEFT_ETOOBIG. Every drop is
// counted in weft_wire_dropped. Never logs: the caller knows the socket
// and logs (weft_wire_log_drop).
weft_err weft_wire_unpack(weft_wire *auth, nng_msg *msg, int has_topic,
    Weft__Envelope **out);

// weft_wire_expect is weft_wire_unpack plus a check that the body is `body`;
// a wrong body is counted as unexpected and freed.
weft_err weft_wire_expect(weft_wire *auth, nng_msg *msg,
    Weft__Envelope__BodyCase body, Weft__Envelope **out);

// weft_wire_expect_any is weft_wire_expect for a socket that takes any of
// the n bodies in bodies (borrowed).
weft_err weft_wire_expect_any(weft_wire *auth, nng_msg *msg,
    const Weft__Envelope__BodyCase *bodies, size_t n, Weft__Envelope **out);

// weft_wire_log_drop logs a dropped message with the socket it came in on
// and the peer's address (from msg's pipe; msg may be NULL): at most one
// line a second, saying how many were dropped in between. Thread-safe.
void weft_wire_log_drop(const char *socket, weft_err err, nng_msg *msg);

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

// weft_wire_addr_str writes "ip:port" of sa into out; "?" for others.
void weft_wire_addr_str(const nng_sockaddr *sa, char *out, size_t len);

// weft_wire_socket_limits sets the receive size cap on a socket.
void weft_wire_socket_limits(nng_socket s);

#endif
