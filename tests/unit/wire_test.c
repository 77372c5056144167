// wire_test: envelope round trips, topic prefixes, and refusal of garbage,
// unknown versions, wrong bodies and oversize messages; the HMAC tag (any
// changed byte, a wrong key, no tag) and replays.
#include <criterion/criterion.h>
#include <string.h>

#include <sodium.h>

#include "clock.h"
#include "wire.h"

// wire_keyed readies w as a node named name keyed with a cookie made of
// the byte fill.
static void
wire_keyed(weft_wire *w, const char *name, char fill)
{
	weft_cookie c;

	cr_assert_eq(weft_crypto_init(), 0);
	memset(&c, 0, sizeof(c));
	memset(c.key, fill, 40);
	c.len = 40;
	weft_wire_init(w, name);
	weft_wire_set_key(w, &c, WEFT_CLOCK_SKEW_MS);
}

// ack_msg packs a ResultAck from w.
static nng_msg *
ack_msg(weft_wire *w, const char *topic)
{
	Weft__Envelope  env = WEFT__ENVELOPE__INIT;
	Weft__ResultAck ack = WEFT__RESULT_ACK__INIT;
	nng_msg        *msg;

	ack.count      = 7;
	env.body_case  = WEFT__ENVELOPE__BODY_RESULT_ACK;
	env.result_ack = &ack;
	env.recipient  = "b"; // the receiving node of these tests
	cr_assert_eq(weft_wire_pack(w, &env, topic, &msg), WEFT_OK);
	return (msg);
}

// results_msg packs an empty ResultBatch from w to "b": a body that says
// who sent it, so it is signed.
static nng_msg *
results_msg(weft_wire *w)
{
	Weft__Envelope    env = WEFT__ENVELOPE__INIT;
	Weft__ResultBatch rb  = WEFT__RESULT_BATCH__INIT;
	nng_msg          *msg;

	env.body_case = WEFT__ENVELOPE__BODY_RESULTS;
	env.results   = &rb;
	env.recipient = "b";
	cr_assert_eq(weft_wire_pack(w, &env, NULL, &msg), WEFT_OK);
	cr_assert(((uint8_t *) nng_msg_body(msg))[3] & WEFT_WIRE_SIGNED);
	return (msg);
}

static weft_err
unpack_copy(weft_wire *auth, nng_msg *msg, int topic)
{
	nng_msg        *dup;
	Weft__Envelope *out = NULL;
	weft_err        err;

	cr_assert_eq(nng_msg_dup(&dup, msg), 0);
	err = weft_wire_unpack(auth, dup, topic, &out);
	weft_wire_free(out);
	nng_msg_free(dup);
	return (err);
}

Test(wire, tag_verifies_and_any_changed_byte_fails)
{
	weft_wire a, b;
	nng_msg  *msg;

	wire_keyed(&a, "a", 'k');
	wire_keyed(&b, "b", 'k');
	// A signed frame (results) and one with the tag only (an ack).
	msg = results_msg(&a);
	for (size_t i = 0; i < nng_msg_len(msg); i++) {
		uint8_t *p = (uint8_t *) nng_msg_body(msg) + i;
		*p ^= 0x01;
		cr_expect_neq(unpack_copy(&b, msg, 0), WEFT_OK,
		    "signed frame: byte %zu changed, still accepted", i);
		*p ^= 0x01;
	}
	cr_expect_eq(unpack_copy(&b, msg, 0), WEFT_OK, "the intact signed frame");
	nng_msg_free(msg);
	msg = ack_msg(&a, "run:X");
	// Every byte of the frame counts: topic, header, tag, envelope.
	size_t len = nng_msg_len(msg);
	for (size_t i = 0; i < len; i++) {
		uint8_t *p = (uint8_t *) nng_msg_body(msg) + i;
		if (*p == '\0' && i == 5) {
			continue; // the topic's end: moving it is garbage, tested below
		}
		*p ^= 0x01;
		weft_err err = unpack_copy(&b, msg, 1);
		cr_expect_neq(err, WEFT_OK, "byte %zu changed, still accepted", i);
		*p ^= 0x01;
	}
	cr_expect_eq(unpack_copy(&b, msg, 1), WEFT_OK, "the intact frame");
	cr_expect_eq(unpack_copy(&b, msg, 1), WEFT_EREPLAY, "the same again");
	nng_msg_free(msg);
	weft_wire_fini(&a);
	weft_wire_fini(&b);
}

Test(wire, wrong_key_and_missing_tag_are_refused)
{
	weft_wire a, b, plain;
	nng_msg  *msg;
	uint64_t  auth0 = weft_wire_dropped.auth;

	wire_keyed(&a, "a", 'k');
	wire_keyed(&b, "b", 'x');
	weft_wire_init(&plain, "intruder");
	msg = ack_msg(&a, NULL);
	cr_expect_eq(unpack_copy(&b, msg, 0), WEFT_EAUTH, "another cookie");
	nng_msg_free(msg);
	msg = ack_msg(&plain, NULL);
	cr_expect_eq(unpack_copy(&b, msg, 0), WEFT_EAUTH, "no tag at all");
	// Without a key (the control socket) an untagged frame decodes.
	cr_expect_eq(unpack_copy(NULL, msg, 0), WEFT_OK);
	nng_msg_free(msg);
	// A tagged frame with the tag flag cleared is not a way around it.
	msg = ack_msg(&a, NULL);
	((uint8_t *) nng_msg_body(msg))[3] = 0;
	cr_expect_neq(unpack_copy(&b, msg, 0), WEFT_OK, "tag flag cleared");
	nng_msg_free(msg);
	cr_expect_geq(weft_wire_dropped.auth, auth0 + 2);
	weft_wire_fini(&a);
	weft_wire_fini(&b);
}

Test(wire, stale_timestamps_are_refused)
{
	weft_wire a, b;
	nng_msg  *msg;
	uint64_t  skew0 = weft_wire_dropped.skew;

	wire_keyed(&a, "a", 'k');
	wire_keyed(&b, "b", 'k');
	msg = ack_msg(&a, NULL);
	cr_expect_eq(unpack_copy(&b, msg, 0), WEFT_OK);
	nng_msg_free(msg);
	// A receiver allowing no skew at all: a frame 20 ms old is stale.
	weft_replay_fini(&b.replay);
	weft_replay_init(&b.replay, 0);
	msg = ack_msg(&a, NULL);
	weft_clock_sleep_ms(20);
	cr_expect_eq(unpack_copy(&b, msg, 0), WEFT_EREPLAY);
	cr_expect_eq(weft_wire_dropped.skew, skew0 + 1);
	nng_msg_free(msg);
	weft_wire_fini(&a);
	weft_wire_fini(&b);
}

Test(wire, assign_batch_round_trip)
{
	weft_wire         w;
	Weft__Envelope    env = WEFT__ENVELOPE__INIT;
	Weft__AssignBatch b   = WEFT__ASSIGN_BATCH__INIT;
	Weft__Assignment  a   = WEFT__ASSIGNMENT__INIT;
	Weft__Assignment *items[] = { &a };
	nng_msg          *msg;
	Weft__Envelope   *out;

	weft_wire_init(&w, "node-a");
	a.run_id = "R";
	a.step_id = "s";
	a.attempt = 3;
	a.type = "echo";
	a.input_json = "{\"x\":1}";
	b.n_items = 1;
	b.items = items;
	env.body_case = WEFT__ENVELOPE__BODY_ASSIGN;
	env.assign = &b;
	cr_assert_eq(weft_wire_pack(&w, &env, NULL, &msg), WEFT_OK);
	cr_assert_eq(weft_wire_expect(NULL, msg, WEFT__ENVELOPE__BODY_ASSIGN, &out), WEFT_OK);
	cr_expect_str_eq(out->sender, "node-a");
	cr_expect_eq(out->seq, 1);
	cr_expect_eq(out->version, WEFT_WIRE_VERSION);
	cr_expect_eq(out->assign->items[0]->attempt, 3);
	cr_expect_str_eq(out->assign->items[0]->input_json, "{\"x\":1}");
	weft_wire_free(out);
	nng_msg_free(msg);
}

Test(wire, topic_prefix)
{
	weft_wire      w;
	Weft__Envelope env = WEFT__ENVELOPE__INIT;
	Weft__Event    e   = WEFT__EVENT__INIT;
	nng_msg       *msg;
	Weft__Envelope *out;

	weft_wire_init(&w, "c");
	e.id = 42;
	e.type = "run_started";
	env.body_case = WEFT__ENVELOPE__BODY_EVENT;
	env.event = &e;
	cr_assert_eq(weft_wire_pack(&w, &env, "run:ABC", &msg), WEFT_OK);
	cr_expect_eq(memcmp(nng_msg_body(msg), "run:ABC\0", 8), 0);
	cr_expect_eq(memcmp((char *) nng_msg_body(msg) + 8, "WF", 2), 0);
	cr_assert_eq(weft_wire_unpack(NULL, msg, 1, &out), WEFT_OK);
	cr_expect_eq(out->event->id, 42);
	weft_wire_free(out);
	nng_msg_free(msg);
}

Test(wire, garbage_version_and_wrong_body_are_refused)
{
	weft_wire       w;
	nng_msg        *msg;
	Weft__Envelope *out;
	Weft__Envelope  env = WEFT__ENVELOPE__INIT;
	Weft__ResultAck ack = WEFT__RESULT_ACK__INIT;
	uint64_t        g0  = weft_wire_dropped.garbage;

	nng_msg_alloc(&msg, 0);
	nng_msg_append(msg, "\xff\xff\xff\xff\x0f garbage", 13);
	cr_expect_eq(weft_wire_unpack(NULL, msg, 0, &out), WEFT_EPROTO);
	cr_expect_eq(weft_wire_dropped.garbage, g0 + 1);
	cr_expect_eq(weft_wire_unpack(NULL, msg, 1, &out), WEFT_EPROTO, "no topic end");
	nng_msg_free(msg);

	weft_wire_init(&w, "x");
	env.body_case = WEFT__ENVELOPE__BODY_RESULT_ACK;
	env.result_ack = &ack;
	cr_assert_eq(weft_wire_pack(&w, &env, NULL, &msg), WEFT_OK);
	cr_expect_eq(weft_wire_expect(NULL, msg, WEFT__ENVELOPE__BODY_RESULTS, &out),
	    WEFT_EPROTO, "wrong body");
	nng_msg_free(msg);

	// Version 1: a bare Envelope, no frame.
	env.version = 1;
	size_t len = weft__envelope__get_packed_size(&env);
	nng_msg_alloc(&msg, len);
	weft__envelope__pack(&env, nng_msg_body(msg));
	cr_expect_eq(weft_wire_unpack(NULL, msg, 0, &out), WEFT_EVERSION);
	nng_msg_free(msg);
	// A frame of a later version.
	msg = ack_msg(&w, NULL);
	((uint8_t *) nng_msg_body(msg))[2] = WEFT_WIRE_VERSION + 1;
	cr_expect_eq(weft_wire_unpack(NULL, msg, 0, &out), WEFT_EVERSION);
	nng_msg_free(msg);
}

Test(wire, oversize_is_refused)
{
	weft_wire          w;
	Weft__Envelope     env = WEFT__ENVELOPE__INIT;
	Weft__ControlReply rep = WEFT__CONTROL_REPLY__INIT;
	nng_msg           *msg = NULL;
	char              *big = malloc(WEFT_WIRE_MAX + 10);

	memset(big, 'a', WEFT_WIRE_MAX + 9);
	big[WEFT_WIRE_MAX + 9] = '\0';
	rep.body_json = big;
	env.body_case = WEFT__ENVELOPE__BODY_CONTROL_REPLY;
	env.control_reply = &rep;
	weft_wire_init(&w, "x");
	cr_expect_eq(weft_wire_pack(&w, &env, NULL, &msg), WEFT_ETOOBIG);
	cr_expect_null(msg);
	free(big);
}

// A cookie holder signs with its own key: it cannot speak in another
// process's incarnation, and a point-to-point message for another node
// is not taken.
Test(wire, incarnation_and_recipient_are_bound)
{
	weft_wire victim, forger, b;
	nng_msg  *msg;

	wire_keyed(&victim, "w1", 'k');
	wire_keyed(&forger, "w1", 'k');
	wire_keyed(&b, "b", 'k');
	cr_assert_neq(victim.incarnation, forger.incarnation);
	forger.incarnation = victim.incarnation; // claims the victim's
	msg                = results_msg(&forger);
	cr_expect_eq(unpack_copy(&b, msg, 0), WEFT_EAUTH,
	    "signed by one key, in another key's incarnation");
	nng_msg_free(msg);
	// Its own incarnation is fine: it is another process, not the victim.
	forger.incarnation = 0;
	weft_wire_fini(&forger);
	wire_keyed(&forger, "w1", 'k');
	msg = results_msg(&forger);
	cr_expect_eq(unpack_copy(&b, msg, 0), WEFT_OK);
	nng_msg_free(msg);
	// For node "b" only: another node does not take it.
	weft_wire other;
	wire_keyed(&other, "c", 'k');
	msg = results_msg(&victim);
	cr_expect_eq(unpack_copy(&other, msg, 0), WEFT_EAUTH,
	    "a message for b taken by c");
	cr_expect_eq(unpack_copy(&b, msg, 0), WEFT_OK);
	// The signed flag cleared, or the signature changed: refused.
	((uint8_t *) nng_msg_body(msg))[3] &= (uint8_t) ~WEFT_WIRE_SIGNED;
	cr_expect_eq(unpack_copy(&b, msg, 0), WEFT_EAUTH);
	nng_msg_free(msg);
	weft_wire_fini(&victim);
	weft_wire_fini(&forger);
	weft_wire_fini(&b);
	weft_wire_fini(&other);
}

// A frame whose tag is right (the sender holds the cookie) but whose
// signature is not the signer key's is refused: the tag alone proves
// membership, not identity.
Test(wire, signature_must_verify)
{
	weft_wire                    a, b;
	nng_msg                     *msg;
	crypto_auth_hmacsha256_state st;
	uint8_t                     *f;
	size_t                       len;

	wire_keyed(&a, "a", 'k');
	wire_keyed(&b, "b", 'k');
	msg = results_msg(&a);
	f   = nng_msg_body(msg);
	len = nng_msg_len(msg);
	// One bit of the signature, then a tag made again with the cookie.
	f[WEFT_WIRE_HEADER + WEFT_WIRE_TAG + WEFT_WIRE_PK + 5] ^= 0x01;
	crypto_auth_hmacsha256_init(&st, b.key, WEFT_KEY_LEN);
	crypto_auth_hmacsha256_update(&st, f, WEFT_WIRE_HEADER);
	crypto_auth_hmacsha256_update(&st, f + WEFT_WIRE_HEADER + WEFT_WIRE_TAG,
	    len - WEFT_WIRE_HEADER - WEFT_WIRE_TAG);
	crypto_auth_hmacsha256_final(&st, f + WEFT_WIRE_HEADER);
	cr_expect_eq(unpack_copy(&b, msg, 0), WEFT_EAUTH,
	    "a bad signature under a good tag was taken");
	nng_msg_free(msg);
	weft_wire_fini(&a);
	weft_wire_fini(&b);
}

// An unsigned frame proves no incarnation: one claiming a signer's name
// and incarnation with a huge sequence does not move the signer's window.
Test(wire, unsigned_frames_cannot_move_a_signers_window)
{
	weft_wire victim, forger, b;
	nng_msg  *msg;

	wire_keyed(&victim, "w1", 'k');
	wire_keyed(&forger, "w1", 'k');
	wire_keyed(&b, "b", 'k');
	msg = results_msg(&victim);
	cr_expect_eq(unpack_copy(&b, msg, 0), WEFT_OK);
	nng_msg_free(msg);
	forger.incarnation = victim.incarnation;
	atomic_store(&forger.seq, UINT64_MAX - 1);
	msg = ack_msg(&forger, NULL); // tag only: a reply
	(void) unpack_copy(&b, msg, 0);
	nng_msg_free(msg);
	msg = results_msg(&victim);
	cr_expect_eq(unpack_copy(&b, msg, 0), WEFT_OK,
	    "the signer's next message was shut out");
	nng_msg_free(msg);
	forger.incarnation = 0;
	weft_wire_fini(&victim);
	weft_wire_fini(&forger);
	weft_wire_fini(&b);
}

// ---- paired frames ----

// body_to packs a body that says who sent it (results, or an assignment
// when assign) from w to the node named to of incarnation inc.
static nng_msg *
body_to(weft_wire *w, const char *to, uint64_t inc, bool assign)
{
	Weft__Envelope    env = WEFT__ENVELOPE__INIT;
	Weft__ResultBatch rb  = WEFT__RESULT_BATCH__INIT;
	Weft__AssignBatch ab  = WEFT__ASSIGN_BATCH__INIT;
	nng_msg          *msg;

	if (assign) {
		env.body_case = WEFT__ENVELOPE__BODY_ASSIGN;
		env.assign    = &ab;
	} else {
		env.body_case = WEFT__ENVELOPE__BODY_RESULTS;
		env.results   = &rb;
	}
	env.recipient = (char *) to;
	cr_assert_eq(weft_wire_pack_to(w, &env, inc, &msg), WEFT_OK);
	return (msg);
}

static uint8_t
frame_flags(nng_msg *msg)
{
	return (((uint8_t *) nng_msg_body(msg))[3]);
}

// retag makes the tag of frame msg again with cookie key key, as any
// cookie holder can.
static void
retag(nng_msg *msg, const uint8_t *key)
{
	crypto_auth_hmacsha256_state st;
	uint8_t                     *f   = nng_msg_body(msg);
	size_t                       len = nng_msg_len(msg);

	crypto_auth_hmacsha256_init(&st, key, WEFT_KEY_LEN);
	crypto_auth_hmacsha256_update(&st, f, WEFT_WIRE_HEADER);
	crypto_auth_hmacsha256_update(&st, f + WEFT_WIRE_HEADER + WEFT_WIRE_TAG,
	    len - WEFT_WIRE_HEADER - WEFT_WIRE_TAG);
	crypto_auth_hmacsha256_final(&st, f + WEFT_WIRE_HEADER);
}

// A node signs to a peer it has no key of, and pairs once it has verified
// one frame of that peer's: the worker's first answer is signed, the
// coordinator's assignments after it and the worker's results after those
// are paired, and each end takes them.
Test(wire, paired_after_one_verified_frame)
{
	weft_wire wk, co;
	nng_msg  *msg, *signed_;

	wire_keyed(&wk, "w1", 'k');
	wire_keyed(&co, "co", 'k');
	msg = body_to(&co, "w1", wk.incarnation, true);
	cr_expect(frame_flags(msg) & WEFT_WIRE_SIGNED, "paired to a stranger");
	nng_msg_free(msg);
	msg = body_to(&wk, "co", co.incarnation, false);
	cr_expect(frame_flags(msg) & WEFT_WIRE_SIGNED);
	cr_expect_eq(unpack_copy(&co, msg, 0), WEFT_OK);
	nng_msg_free(msg);
	msg = body_to(&co, "w1", wk.incarnation, true);
	cr_expect(frame_flags(msg) & WEFT_WIRE_PAIRED, "not paired: %x",
	    frame_flags(msg));
	cr_expect(!(frame_flags(msg) & WEFT_WIRE_SIGNED));
	signed_ = body_to(&co, "w1", 12345, true); // nobody we know: signed
	cr_expect(frame_flags(signed_) & WEFT_WIRE_SIGNED);
	cr_expect_eq(nng_msg_len(msg) + WEFT_WIRE_SIG - WEFT_WIRE_MAC,
	    nng_msg_len(signed_), "a paired frame is a signed one less 32 "
	                           "bytes");
	nng_msg_free(signed_);
	cr_expect_eq(unpack_copy(&wk, msg, 0), WEFT_OK);
	nng_msg_free(msg);
	msg = body_to(&wk, "co", co.incarnation, false);
	cr_expect(frame_flags(msg) & WEFT_WIRE_PAIRED);
	cr_expect_eq(unpack_copy(&co, msg, 0), WEFT_OK);
	cr_expect_eq(unpack_copy(&co, msg, 0), WEFT_EREPLAY, "the same again");
	nng_msg_free(msg);
	// Every byte counts, the mac's and the key's included.
	msg = body_to(&wk, "co", co.incarnation, false);
	for (size_t i = 0; i < nng_msg_len(msg); i++) {
		uint8_t *p = (uint8_t *) nng_msg_body(msg) + i;
		*p ^= 0x01;
		cr_expect_neq(unpack_copy(&co, msg, 0), WEFT_OK,
		    "paired frame: byte %zu changed, still accepted", i);
		*p ^= 0x01;
	}
	cr_expect_eq(unpack_copy(&co, msg, 0), WEFT_OK, "the intact frame");
	nng_msg_free(msg);
	weft_wire_fini(&wk);
	weft_wire_fini(&co);
}

// paired_frame packs env as a paired frame from the key pk with the mac
// made with key, tagged with cookie key tag_key: what a cookie holder who
// knew (or guessed) a pair key could send.
static nng_msg *
paired_frame(Weft__Envelope *env, const uint8_t *pk, const uint8_t *key,
    const uint8_t *tag_key)
{
	size_t   len  = weft__envelope__get_packed_size(env);
	size_t   off  = WEFT_WIRE_HEADER + WEFT_WIRE_TAG;
	nng_msg *msg;
	uint8_t *f;
	crypto_generichash_state st;

	env->version = WEFT_WIRE_VERSION;
	env->ts_ms   = (uint64_t) weft_clock_wall_ms();
	cr_assert_eq(nng_msg_alloc(&msg, off + WEFT_WIRE_PK + WEFT_WIRE_MAC +
	                                     len),
	    0);
	f    = nng_msg_body(msg);
	f[0] = 'W';
	f[1] = 'F';
	f[2] = WEFT_WIRE_VERSION;
	f[3] = WEFT_WIRE_TAGGED | WEFT_WIRE_PAIRED;
	memcpy(f + off, pk, WEFT_WIRE_PK);
	weft__envelope__pack(env, f + off + WEFT_WIRE_PK + WEFT_WIRE_MAC);
	crypto_generichash_init(&st, key, 32, 32);
	crypto_generichash_update(&st, f, WEFT_WIRE_HEADER);
	crypto_generichash_update(&st, pk, WEFT_WIRE_PK);
	crypto_generichash_update(&st, f + off + WEFT_WIRE_PK + WEFT_WIRE_MAC,
	    len);
	crypto_generichash_final(&st, f + off + WEFT_WIRE_PK, 32);
	retag(msg, tag_key);
	return (msg);
}

// A free slot of the pair-key table is no key: a frame from the all-zero
// "key" with a mac made with an all-zero pair key, in incarnation 0, is
// refused.
Test(wire, no_pair_key_for_the_zero_key)
{
	weft_wire         co;
	Weft__Envelope    env = WEFT__ENVELOPE__INIT;
	Weft__ResultBatch rb  = WEFT__RESULT_BATCH__INIT;
	uint8_t           zero[32] = { 0 };
	nng_msg          *msg;

	wire_keyed(&co, "co", 'k');
	env.body_case   = WEFT__ENVELOPE__BODY_RESULTS;
	env.results     = &rb;
	env.recipient   = "co";
	env.sender      = "w1";
	env.incarnation = 0;
	env.seq         = 1;
	msg             = paired_frame(&env, zero, zero, co.key);
	cr_expect_eq(unpack_copy(&co, msg, 0), WEFT_EAUTH,
	    "a mac made with a free slot's key was taken");
	nng_msg_free(msg);
	weft_wire_fini(&co);
}

// A paired frame proves the sender to its one receiver only. Another
// cookie holder cannot make one in a node's name (it lacks both secret
// keys), nor can a frame be played to another process of the receiver's
// name; a mac changed under a good tag, both flags at once, and a key that
// is no curve point are refused.
Test(wire, paired_frames_bind_both_processes)
{
	weft_wire wk, co, co2, forger;
	nng_msg  *msg;
	uint8_t  *f;

	wire_keyed(&wk, "w1", 'k');
	wire_keyed(&co, "co", 'k');
	wire_keyed(&co2, "co", 'k'); // the same name, another process
	wire_keyed(&forger, "w1", 'k');
	// co learns wk's key, and wk co's and co2's; forger learns co's.
	msg = body_to(&wk, "co", 0, false);
	cr_assert_eq(unpack_copy(&co, msg, 0), WEFT_OK);
	nng_msg_free(msg);
	msg = body_to(&co, "w1", wk.incarnation, true);
	cr_assert_eq(unpack_copy(&wk, msg, 0), WEFT_OK);
	cr_assert_eq(unpack_copy(&forger, msg, 0), WEFT_EAUTH,
	    "paired to wk, taken by another process");
	nng_msg_free(msg);
	msg = body_to(&co2, "w1", 0, true);
	cr_assert_eq(unpack_copy(&wk, msg, 0), WEFT_OK);
	cr_assert_eq(unpack_copy(&forger, msg, 0), WEFT_OK); // signed
	nng_msg_free(msg);
	msg = body_to(&co, "w1", 0, true);
	cr_assert_eq(unpack_copy(&forger, msg, 0), WEFT_OK);
	nng_msg_free(msg);
	// Played to the other "co": refused, it is not the process paired.
	msg = body_to(&wk, "co", co.incarnation, false);
	cr_assert(frame_flags(msg) & WEFT_WIRE_PAIRED);
	cr_expect_eq(unpack_copy(&co2, msg, 0), WEFT_EAUTH,
	    "a frame paired with co taken by another co");
	cr_expect_eq(unpack_copy(&co, msg, 0), WEFT_OK);
	nng_msg_free(msg);
	// The forger speaks with wk's key and incarnation, its own pair key.
	memcpy(forger.pk, wk.pk, WEFT_WIRE_PK);
	forger.incarnation = wk.incarnation;
	msg = body_to(&forger, "co", co.incarnation, false);
	cr_assert(frame_flags(msg) & WEFT_WIRE_PAIRED);
	cr_expect_eq(unpack_copy(&co, msg, 0), WEFT_EAUTH,
	    "a cookie holder paired a frame in wk's name");
	nng_msg_free(msg);
	// A cookie holder knows the recipe of pair keys (wire.h) and both
	// public keys; only the X25519 output is secret. Keyed with a guess
	// of it, its frame in wk's name is refused.
	{
		Weft__Envelope           env = WEFT__ENVELOPE__INIT;
		Weft__ResultBatch        rb  = WEFT__RESULT_BATCH__INIT;
		crypto_generichash_state st;
		uint8_t                  guess[32] = { 0 }, key[32];
		bool                     lo = memcmp(wk.pk, co.pk, 32) < 0;

		crypto_generichash_init(&st, co.key, WEFT_KEY_LEN, 32);
		crypto_generichash_update(&st, (const uint8_t *) "weft-pair-1",
		    11);
		crypto_generichash_update(&st, guess, sizeof(guess));
		crypto_generichash_update(&st, lo ? wk.pk : co.pk, 32);
		crypto_generichash_update(&st, lo ? co.pk : wk.pk, 32);
		crypto_generichash_final(&st, key, 32);
		env.body_case   = WEFT__ENVELOPE__BODY_RESULTS;
		env.results     = &rb;
		env.recipient   = "co";
		env.sender      = "w1";
		env.incarnation = wk.incarnation;
		env.seq         = 1000;
		msg             = paired_frame(&env, wk.pk, key, co.key);
		cr_expect_eq(unpack_copy(&co, msg, 0), WEFT_EAUTH,
		    "a pair key made from public data was taken");
		nng_msg_free(msg);
	}
	// One bit of the mac, under a tag made again.
	msg = body_to(&wk, "co", co.incarnation, false);
	f   = nng_msg_body(msg);
	f[WEFT_WIRE_HEADER + WEFT_WIRE_TAG + WEFT_WIRE_PK + 3] ^= 0x01;
	retag(msg, co.key);
	cr_expect_eq(unpack_copy(&co, msg, 0), WEFT_EAUTH);
	// Both flags: garbage.
	f[WEFT_WIRE_HEADER + WEFT_WIRE_TAG + WEFT_WIRE_PK + 3] ^= 0x01;
	f[3] |= WEFT_WIRE_SIGNED;
	retag(msg, co.key);
	cr_expect_eq(unpack_copy(&co, msg, 0), WEFT_EPROTO);
	f[3] &= (uint8_t) ~WEFT_WIRE_SIGNED;
	// A key that is not a point (all zero), or co's own.
	memset(f + WEFT_WIRE_HEADER + WEFT_WIRE_TAG, 0, WEFT_WIRE_PK);
	retag(msg, co.key);
	cr_expect_eq(unpack_copy(&co, msg, 0), WEFT_EAUTH);
	memcpy(f + WEFT_WIRE_HEADER + WEFT_WIRE_TAG, co.pk, WEFT_WIRE_PK);
	retag(msg, co.key);
	cr_expect_eq(unpack_copy(&co, msg, 0), WEFT_EAUTH);
	nng_msg_free(msg);
	forger.incarnation = 0;
	weft_wire_fini(&wk);
	weft_wire_fini(&co);
	weft_wire_fini(&co2);
	weft_wire_fini(&forger);
}
