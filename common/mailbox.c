// mailbox: the engine's input queue.
#include "mailbox.h"

#include <errno.h>
#include <time.h>

void
weft_mailbox_init(weft_mailbox *mb)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&mb->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&mb->cv, &ca);
	pthread_condattr_destroy(&ca);
	mb->head = mb->tail = NULL;
	mb->posted          = 0;
	mb->closed          = false;
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
	m->next = NULL;
	pthread_mutex_lock(&mb->lock);
	if (mb->tail != NULL) {
		mb->tail->next = m;
	} else {
		mb->head = m;
	}
	mb->tail = m;
	mb->posted++;
	pthread_cond_signal(&mb->cv);
	pthread_mutex_unlock(&mb->lock);
}

weft_mail *
weft_mailbox_drain(weft_mailbox *mb, int64_t timeout_ms)
{
	weft_mail      *m;
	struct timespec until;

	pthread_mutex_lock(&mb->lock);
	if (mb->head == NULL && timeout_ms != 0 && !mb->closed) {
		if (timeout_ms < 0) {
			while (mb->head == NULL && !mb->closed) {
				pthread_cond_wait(&mb->cv, &mb->lock);
			}
		} else {
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += timeout_ms / 1000;
			until.tv_nsec += (timeout_ms % 1000) * 1000000;
			if (until.tv_nsec >= 1000000000) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
			while (mb->head == NULL && !mb->closed) {
				if (pthread_cond_timedwait(
				        &mb->cv, &mb->lock, &until) == ETIMEDOUT) {
					break;
				}
			}
		}
	}
	m        = mb->head;
	mb->head = mb->tail = NULL;
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
