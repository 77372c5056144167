// replay_test: the replay window, table-driven. Each case feeds a sequence
// of (incarnation, seq, timestamp) from one sender and says what each must
// get.
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "replay.h"

#define NOW 1000000000
#define SKEW 30000

typedef struct msg_case {
	uint64_t            inc, seq;
	int64_t             ts;
	weft_replay_verdict want;
} msg_case;

typedef struct replay_case {
	const char *name;
	msg_case    msgs[12];
} replay_case;

#define OK WEFT_REPLAY_OK
#define SEEN WEFT_REPLAY_SEEN
#define OLD WEFT_REPLAY_OLD
#define SKEWED WEFT_REPLAY_SKEW
#define W WEFT_REPLAY_WINDOW

static const replay_case cases[] = {
	{ "in order, then each again",
	    { { 1, 1, NOW, OK }, { 1, 2, NOW, OK }, { 1, 3, NOW, OK },
	        { 1, 1, NOW, SEEN }, { 1, 2, NOW, SEEN }, { 1, 3, NOW, SEEN } } },
	{ "out of order within the window",
	    { { 1, 5, NOW, OK }, { 1, 3, NOW, OK }, { 1, 4, NOW, OK },
	        { 1, 3, NOW, SEEN }, { 1, 6, NOW, OK }, { 1, 5, NOW, SEEN } } },
	{ "below the window",
	    { { 1, W + 10, NOW, OK }, { 1, 10, NOW, OLD }, { 1, 11, NOW, OK },
	        { 1, 11, NOW, SEEN } } },
	{ "a big jump forgets the old window",
	    { { 1, 1, NOW, OK }, { 1, 5 * W, NOW, OK }, { 1, 1, NOW, OLD },
	        { 1, 5 * W - 1, NOW, OK }, { 1, 5 * W - 1, NOW, SEEN } } },
	{ "word boundaries of the bitmap",
	    { { 1, 200, NOW, OK }, { 1, 136, NOW, OK }, { 1, 137, NOW, OK },
	        { 1, 264, NOW, OK }, { 1, 136, NOW, SEEN },
	        { 1, 137, NOW, SEEN }, { 1, 200, NOW, SEEN },
	        { 1, 201, NOW, OK } } },
	{ "timestamps outside the skew",
	    { { 1, 1, NOW - SKEW - 1, SKEWED }, { 1, 1, NOW + SKEW + 1, SKEWED },
	        { 1, 1, NOW - SKEW, OK }, { 1, 2, NOW + SKEW, OK } } },
	{ "incarnations are separate",
	    { { 1, 1, NOW, OK }, { 2, 1, NOW + 1, OK }, { 1, 1, NOW, SEEN },
	        { 2, 1, NOW, SEEN }, { 1, 2, NOW, OK } } },
	{ "sequence and incarnation 0 are never sent",
	    { { 0, 1, NOW, OLD }, { 1, 0, NOW, OLD } } },
	{ "a sequence far ahead moves the window, within its incarnation",
	    { { 1, 1, NOW, OK }, { 1, UINT64_MAX, NOW, OK }, { 2, 1, NOW, OK },
	        { 2, 2, NOW, OK } } },
};

Test(replay, table)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		weft_replay r;
		weft_replay_init(&r, SKEW);
		for (size_t k = 0; k < 12 && cases[i].msgs[k].inc + cases[i].msgs[k].seq > 0;
		     k++) {
			const msg_case *m = &cases[i].msgs[k];
			weft_replay_verdict v = weft_replay_check(&r, "w1", m->inc,
			    m->seq, m->ts, NOW);
			cr_expect_eq(v, m->want, "%s: message %zu (inc %llu seq %llu) "
			    "got %d, want %d", cases[i].name, k,
			    (unsigned long long) m->inc, (unsigned long long) m->seq,
			    (int) v, (int) m->want);
		}
		weft_replay_fini(&r);
	}
}

Test(replay, senders_are_separate_and_bounded)
{
	weft_replay r;
	char        name[32];

	weft_replay_init(&r, SKEW);
	cr_expect_eq(weft_replay_check(&r, "a", 1, 1, NOW, NOW), OK);
	cr_expect_eq(weft_replay_check(&r, "b", 1, 1, NOW, NOW), OK);
	cr_expect_eq(weft_replay_check(&r, "a", 1, 1, NOW, NOW), SEEN);
	// Flooding the table pushes "a" out; a recorded message of it
	// cannot then come back as if new: the floor refuses it.
	for (int i = 0; i < WEFT_REPLAY_ENTRIES + 10; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		cr_assert_eq(weft_replay_check(&r, name, 1, 1, NOW + 1 + i,
		                 NOW + 1 + i),
		    OK);
	}
	cr_expect_leq(r.entries.count, WEFT_REPLAY_ENTRIES);
	cr_expect_eq(weft_replay_check(&r, "a", 1, 1, NOW, NOW + 5000), OLD,
	    "an evicted message replayed as new");
	cr_expect_eq(weft_replay_check(&r, "a", 1, 2, NOW + 9000, NOW + 9000),
	    OK, "a message newer than the floor is taken");
	weft_replay_fini(&r);
}

// A flood stamped in the future cannot raise the floor past the clock it
// was evicted at: a real node's messages are not shut out.
Test(replay, future_timestamps_do_not_raise_the_floor)
{
	weft_replay r;
	char        name[32];

	weft_replay_init(&r, SKEW);
	for (int i = 0; i < WEFT_REPLAY_ENTRIES + 10; i++) {
		snprintf(name, sizeof(name), "x%d", i);
		cr_assert_eq(
		    weft_replay_check(&r, name, 1, 1, NOW + SKEW, NOW), OK);
	}
	cr_expect_leq(r.floor_ts, NOW);
	cr_expect_eq(weft_replay_check(&r, "real", 7, 1, NOW + 1, NOW + 1), OK);
	weft_replay_fini(&r);
}
