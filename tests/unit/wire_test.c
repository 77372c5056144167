// wire_test: envelope round trips, topic prefixes, and refusal of garbage,
// unknown versions, wrong bodies and oversize messages.
#include <criterion/criterion.h>
#include <string.h>

#include "wire.h"

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
	cr_assert_eq(weft_wire_expect(msg, WEFT__ENVELOPE__BODY_ASSIGN, &out), WEFT_OK);
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
	cr_assert_eq(weft_wire_unpack(msg, 1, &out), WEFT_OK);
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
	cr_expect_eq(weft_wire_unpack(msg, 0, &out), WEFT_EPROTO);
	cr_expect_eq(weft_wire_dropped.garbage, g0 + 1);
	cr_expect_eq(weft_wire_unpack(msg, 1, &out), WEFT_EPROTO, "no topic end");
	nng_msg_free(msg);

	weft_wire_init(&w, "x");
	env.body_case = WEFT__ENVELOPE__BODY_RESULT_ACK;
	env.result_ack = &ack;
	cr_assert_eq(weft_wire_pack(&w, &env, NULL, &msg), WEFT_OK);
	cr_expect_eq(weft_wire_expect(msg, WEFT__ENVELOPE__BODY_RESULTS, &out),
	    WEFT_EPROTO, "wrong body");
	nng_msg_free(msg);

	// Version 2: pack by hand without the stamp.
	env.version = 2;
	size_t len = weft__envelope__get_packed_size(&env);
	nng_msg_alloc(&msg, len);
	weft__envelope__pack(&env, nng_msg_body(msg));
	cr_expect_eq(weft_wire_unpack(msg, 0, &out), WEFT_EVERSION);
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
