// sub: a raw subscriber thread for tests.
#include "sub.h"

#include <criterion/criterion.h>
#include <string.h>

#include <nng/protocol/pubsub0/sub.h>

static void *
sub_main(void *arg)
{
	weft_sub *s = arg;

	while (!atomic_load(&s->stop)) {
		nng_msg *m;
		if (nng_recvmsg(s->sock, &m, 0) != 0) {
			continue; // receive timeout: look at stop again
		}
		s->fn(s->arg, m);
		nng_msg_free(m);
	}
	return (NULL);
}

void
weft_sub_start(weft_sub *s, const char *url, weft_sub_fn fn, void *arg)
{
	memset(s, 0, sizeof(*s));
	s->fn  = fn;
	s->arg = arg;
	cr_assert_eq(nng_sub0_open(&s->sock), 0);
	cr_assert_eq(nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0), 0);
	// Deep, so a burst is not dropped while the test thread is busy.
	cr_assert_eq(nng_socket_set_int(s->sock, NNG_OPT_RECVBUF, 8192), 0);
	cr_assert_eq(nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, 100), 0);
	cr_assert_eq(nng_socket_set_ms(s->sock, NNG_OPT_RECONNMAXT, 200), 0);
	cr_assert_eq(nng_dial(s->sock, url, NULL, 0), 0);
	cr_assert_eq(pthread_create(&s->thread, NULL, sub_main, s), 0);
}

void
weft_sub_stop(weft_sub *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	nng_close(s->sock);
}
