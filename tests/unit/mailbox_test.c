// mailbox_test: drains return every posted message oldest first, a timed
// drain on an empty mailbox waits its timeout, and closing wakes a waiter.
#include <criterion/criterion.h>

#include <pthread.h>
#include <stddef.h>

#include "clock.h"
#include "mailbox.h"

#define T_TIMEOUT (30 * WEFT_TEST_MULT)

typedef struct msg {
	weft_mail node; // first, as the mailbox requires
	int       id;
} msg;

Test(mailbox, drain_is_oldest_first_and_empties, .timeout = T_TIMEOUT)
{
	weft_mailbox mb;
	msg          m[4];
	weft_mail   *chain;
	int          want = 0;

	weft_mailbox_init(&mb);
	for (int i = 0; i < 3; i++) {
		m[i].id = i;
		weft_mailbox_post(&mb, &m[i].node);
	}
	chain = weft_mailbox_drain(&mb, 0);
	for (; chain != NULL; chain = chain->next) {
		cr_expect_eq(((msg *) chain)->id, want,
		    "message %d out of order", want);
		want++;
	}
	cr_expect_eq(want, 3);
	cr_expect_null(weft_mailbox_drain(&mb, 0));

	// Posting again after a drain starts a new chain.
	m[3].id = 3;
	weft_mailbox_post(&mb, &m[3].node);
	chain = weft_mailbox_drain(&mb, 0);
	cr_expect_eq(chain, &m[3].node);
	cr_expect_null(chain->next);
	cr_expect_eq(mb.posted, 4);
	weft_mailbox_fini(&mb);
}

Test(mailbox, timed_drain_on_empty_waits_its_timeout, .timeout = T_TIMEOUT)
{
	weft_mailbox mb;
	int64_t      t0;

	weft_mailbox_init(&mb);
	t0 = weft_clock_mono_ms();
	cr_expect_null(weft_mailbox_drain(&mb, 60));
	cr_expect_geq(weft_clock_mono_ms() - t0, 60);
	weft_mailbox_fini(&mb);
}

// mailbox_drain_forever drains mb (arg) with no timeout.
static void *
mailbox_drain_forever(void *arg)
{
	return (weft_mailbox_drain(arg, -1));
}

Test(mailbox, post_and_close_wake_a_waiter, .timeout = T_TIMEOUT)
{
	weft_mailbox mb;
	msg          m = { .id = 1 };
	pthread_t    t;
	void        *got;

	weft_mailbox_init(&mb);
	cr_assert_eq(pthread_create(&t, NULL, mailbox_drain_forever, &mb), 0);
	weft_mailbox_post(&mb, &m.node);
	pthread_join(t, &got);
	cr_expect_eq(got, &m.node);

	cr_assert_eq(pthread_create(&t, NULL, mailbox_drain_forever, &mb), 0);
	weft_mailbox_close(&mb);
	pthread_join(t, &got);
	cr_expect_null(got);
	// Closed: a drain with a timeout returns at once.
	cr_expect_null(weft_mailbox_drain(&mb, 60000));
	weft_mailbox_fini(&mb);
}
