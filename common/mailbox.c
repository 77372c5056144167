// mailbox: the engine's input queue.
#include "mailbox.h"

#include <errno.h>

#include "clock.h"
#include <time.h>

void
weft_mailbox_init(weft_mailbox *mb)
{
	pthread_mutex_init(&mb->lock, NULL);
	weft_clock_cond_init(&mb->cv);
	weft_queue_init(&mb->mail);
	mb->posted = 0;
	mb->closed = false;
}

void
weft_mailbox_fini(weft_mailbox *mb)
{
	pthread_cond_destroy(&mb->cv);
	pthread_mutex_destroy(&mb->lock);
}

void
weft_mailbox_post(weft_mailbox *mb, weft_mail *m)
{
	pthread_mutex_lock(&mb->lock);
	weft_queue_push_tail(&mb->mail, m);
	mb->posted++;
	pthread_cond_signal(&mb->cv);
	pthread_mutex_unlock(&mb->lock);
}

weft_mail *
weft_mailbox_drain(weft_mailbox *mb, int64_t timeout_ms)
{
	weft_mail      *m;
	struct timespec until = { 0, 0 };

	if (timeout_ms > 0) {
		until = weft_clock_mono_ts(weft_clock_mono_ms() + timeout_ms);
	}
	pthread_mutex_lock(&mb->lock);
	while (timeout_ms != 0 && weft_queue_is_empty(&mb->mail) &&
	    !mb->closed) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&mb->cv, &mb->lock);
		} else if (pthread_cond_timedwait(&mb->cv, &mb->lock, &until) ==
		    ETIMEDOUT) {
			break;
		}
	}
	m = weft_queue_take_all(&mb->mail);
	pthread_mutex_unlock(&mb->lock);
	return (m);
}

void
weft_mailbox_close(weft_mailbox *mb)
{
	pthread_mutex_lock(&mb->lock);
	mb->closed = true;
	pthread_cond_broadcast(&mb->cv);
	pthread_mutex_unlock(&mb->lock);
}
