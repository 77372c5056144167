// queue: an intrusive FIFO. The node lives inside the element, so a queue
// never allocates, and being on a queue is the element's state. A queue has
// no lock of its own: whoever owns it guards it (mailbox, outbox, pool).
#ifndef WEFT_QUEUE_H
#define WEFT_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

// Embed one node per queue an element can be on at the same time.
typedef struct weft_qnode {
	struct weft_qnode *next; // toward the tail; NULL at the tail
} weft_qnode;

// A zeroed weft_queue is empty, as after weft_queue_init.
typedef struct weft_queue {
	weft_qnode *head;  // oldest; NULL when empty
	weft_qnode *tail;  // newest; NULL when empty; tail->next is NULL
	size_t      count; // nodes on the queue
} weft_queue;

// WEFT_QUEUE_ENTRY returns the element of `type` whose `member` is node n,
// or NULL when n is NULL.
#define WEFT_QUEUE_ENTRY(n, type, member) \
	((type *) weft_queue_entry((n), offsetof(type, member)))

// WEFT_QUEUE_FOREACH walks the nodes of q oldest first with n (a
// weft_qnode *). The body must not unlink n.
#define WEFT_QUEUE_FOREACH(n, q) \
	for ((n) = (q)->head; (n) != NULL; (n) = (n)->next)

// weft_queue_entry returns the address off bytes before n, NULL for NULL.
// Use it through WEFT_QUEUE_ENTRY.
static inline void *
weft_queue_entry(weft_qnode *n, size_t off)
{
	return (n == NULL ? NULL : (void *) ((char *) n - off));
}

// weft_queue_init makes q (caller's storage) empty.
static inline void
weft_queue_init(weft_queue *q)
{
	q->head  = NULL;
	q->tail  = NULL;
	q->count = 0;
}

// weft_queue_is_empty reports whether q holds no node.
static inline bool
weft_queue_is_empty(const weft_queue *q)
{
	return (q->head == NULL);
}

// weft_queue_count returns how many nodes q holds.
static inline size_t
weft_queue_count(const weft_queue *q)
{
	return (q->count);
}

// weft_queue_peek returns the oldest node, left on q; NULL when empty.
static inline weft_qnode *
weft_queue_peek(const weft_queue *q)
{
	return (q->head);
}

// weft_queue_push_tail appends n (retained until it leaves q), which must
// not be on q already.
static inline void
weft_queue_push_tail(weft_queue *q, weft_qnode *n)
{
	n->next = NULL;
	if (q->tail != NULL) {
		q->tail->next = n;
	} else {
		q->head = n;
	}
	q->tail = n;
	q->count++;
}

// weft_queue_push_head puts n (retained until it leaves q) before every
// other node; it must not be on q already.
static inline void
weft_queue_push_head(weft_queue *q, weft_qnode *n)
{
	n->next = q->head;
	if (q->head == NULL) {
		q->tail = n;
	}
	q->head = n;
	q->count++;
}

// weft_queue_unlink takes n off q, where prev is the node before n (NULL
// when n is the head). For the functions below; callers use those.
static inline void
weft_queue_unlink(weft_queue *q, weft_qnode *prev, weft_qnode *n)
{
	if (prev != NULL) {
		prev->next = n->next;
	} else {
		q->head = n->next;
	}
	if (q->tail == n) {
		q->tail = prev;
	}
	q->count--;
	n->next = NULL;
}

// weft_queue_pop_head unlinks and returns the oldest node; NULL when empty.
static inline weft_qnode *
weft_queue_pop_head(weft_queue *q)
{
	weft_qnode *n = q->head;

	if (n != NULL) {
		weft_queue_unlink(q, NULL, n);
	}
	return (n);
}

// weft_queue_remove unlinks n from wherever it is on q: a walk from the
// head, so O(count). Returns false, changing nothing, when n is not on q.
static inline bool
weft_queue_remove(weft_queue *q, weft_qnode *n)
{
	weft_qnode *prev = NULL;

	for (weft_qnode *c = q->head; c != NULL; prev = c, c = c->next) {
		if (c == n) {
			weft_queue_unlink(q, prev, n);
			return (true);
		}
	}
	return (false);
}

// weft_queue_take_all empties q and returns its nodes as a chain, oldest
// first, linked through next and ended by NULL (NULL when q was empty).
// The nodes are the caller's again.
static inline weft_qnode *
weft_queue_take_all(weft_queue *q)
{
	weft_qnode *chain = q->head;

	weft_queue_init(q);
	return (chain);
}

#endif
