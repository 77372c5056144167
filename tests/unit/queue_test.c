// queue_test: the intrusive FIFO, driven by a table of operation scripts;
// after every operation the queue's shape (head, tail, count, links) is
// checked against a walk from the head.
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"

#define T_TIMEOUT (30 * WEFT_TEST_MULT)
#define NITEMS 10

// The node is not the first member, so WEFT_QUEUE_ENTRY's offset matters.
struct item {
	int        id;
	weft_qnode node;
};

// One script. ops, space separated: tN push_tail item N, hN push_head N,
// p pop_head, k peek, rN remove N, a take_all. Each p, k, rN and a adds
// to out: the id popped or peeked ("-" for NULL), "+" when rN removed and
// "!" when N was not on the queue, "[ids]" for the chain a took.
struct queue_row {
	const char *name;
	const char *ops;
	const char *want_out;
	const char *want_left; // the queue after the script, oldest first
};

static const struct queue_row queue_rows[] = {
	// Empty behaviour.
	{ "fresh queue", "", "", "" },
	{ "pop and peek on empty give NULL", "p k p", "- - -", "" },
	{ "take_all on empty gives no chain", "a", "[]", "" },

	// Order.
	{ "push_tail is FIFO", "t1 t2 t3 p p p", "1 2 3", "" },
	{ "pop past the end gives NULL", "t1 t2 p p p", "1 2 -", "" },
	{ "push_head goes first", "t1 t2 h3 p", "3", "1 2" },
	{ "push_head on empty is also the tail", "h1 t2 p p", "1 2", "" },
	{ "push_head only is LIFO", "h1 h2 h3", "", "3 2 1" },
	{ "interleaved push and pop", "t1 p t2 t3 p t4 p t5 p p p",
	    "1 2 3 4 5 -", "" },
	{ "refill after emptying", "t1 t2 p p t3 t4", "1 2", "3 4" },
	{ "peek leaves the node", "t1 t2 k k p k", "1 1 1 2", "2" },
	{ "popped node can go back", "t1 t2 p t1", "1", "2 1" },

	// take_all.
	{ "take_all gives the chain oldest first", "t1 t2 t3 a a",
	    "[1 2 3] []", "" },
	{ "queue is usable after take_all", "t1 t2 a t3 h4 p", "[1 2] 4",
	    "3" },
	{ "taken nodes can be pushed again", "t1 t2 a t2 t1", "[1 2]",
	    "2 1" },

	// remove.
	{ "remove the head", "t1 t2 t3 r1", "+", "2 3" },
	{ "remove from the middle", "t1 t2 t3 t4 r3", "+", "1 2 4" },
	{ "remove the tail, then push", "t1 t2 t3 r3 t4", "+", "1 2 4" },
	{ "remove the only node, then push", "t1 r1 t2", "+", "2" },
	{ "remove every node", "t1 t2 t3 r2 r3 r1 p", "+ + + -", "" },
	{ "remove a node not queued", "t1 t2 r3", "!", "1 2" },
	{ "remove from empty", "r1", "!", "" },
	{ "remove twice", "t1 t2 r1 r1", "+ !", "2" },
	{ "remove then pop keeps order", "t1 t2 t3 t4 r2 p p p", "+ 1 3 4",
	    "" },
};

// queue_add appends word to buf, space separated.
static void
queue_add(char *buf, size_t len, const char *word)
{
	size_t at = strlen(buf);

	snprintf(buf + at, len - at, "%s%s", at > 0 ? " " : "", word);
}

// queue_add_id appends the id of n's item to buf, "-" for NULL.
static void
queue_add_id(char *buf, size_t len, weft_qnode *n)
{
	char id[16] = "-";

	if (n != NULL) {
		snprintf(id, sizeof(id), "%d",
		    WEFT_QUEUE_ENTRY(n, struct item, node)->id);
	}
	queue_add(buf, len, id);
}

// queue_check_shape compares q's head, tail, count and emptiness with a
// walk from its head.
static void
queue_check_shape(const weft_queue *q, const char *row, const char *op)
{
	weft_qnode *last = NULL;
	size_t      n    = 0;

	for (weft_qnode *c = q->head; c != NULL && n <= NITEMS; c = c->next) {
		last = c;
		n++;
	}
	cr_expect(n <= NITEMS, "%s, after %s: the links loop", row, op);
	cr_expect_eq(weft_queue_count(q), n,
	    "%s, after %s: count %zu, %zu linked", row, op,
	    weft_queue_count(q), n);
	cr_expect_eq(q->tail, last, "%s, after %s: tail is not the last node",
	    row, op);
	cr_expect_eq(weft_queue_is_empty(q), n == 0,
	    "%s, after %s: is_empty %d with %zu linked", row, op,
	    weft_queue_is_empty(q), n);
	cr_expect_eq(weft_queue_peek(q), q->head,
	    "%s, after %s: peek is not the head", row, op);
}

// queue_run runs one row's script on a fresh queue; out gets what the
// operations returned.
static void
queue_run(const struct queue_row *r, weft_queue *q, struct item *items,
    char *out, size_t outlen)
{
	char       *ops = strdup(r->ops);
	char       *save;
	char        chain[64];
	char        word[68];
	weft_qnode *n;

	for (char *op = strtok_r(ops, " ", &save); op != NULL;
	     op = strtok_r(NULL, " ", &save)) {
		struct item *it = &items[atoi(op + 1) % NITEMS];
		switch (op[0]) {
		case 't':
			weft_queue_push_tail(q, &it->node);
			break;
		case 'h':
			weft_queue_push_head(q, &it->node);
			break;
		case 'p':
		case 'k':
			n = op[0] == 'p' ? weft_queue_pop_head(q)
			                 : weft_queue_peek(q);
			queue_add_id(out, outlen, n);
			break;
		case 'r':
			queue_add(out, outlen,
			    weft_queue_remove(q, &it->node) ? "+" : "!");
			break;
		case 'a':
			// The chain must end with NULL: the mailbox's
			// consumers walk it through next.
			chain[0] = '\0';
			n        = weft_queue_take_all(q);
			for (; n != NULL; n = n->next) {
				queue_add_id(chain, sizeof(chain), n);
			}
			snprintf(word, sizeof(word), "[%s]", chain);
			queue_add(out, outlen, word);
			break;
		default:
			cr_assert_fail("%s: bad op %s", r->name, op);
		}
		queue_check_shape(q, r->name, op);
	}
	free(ops);
}

Test(queue, script_table, .timeout = T_TIMEOUT)
{
	for (size_t i = 0; i < sizeof(queue_rows) / sizeof(queue_rows[0]);
	     i++) {
		const struct queue_row *r = &queue_rows[i];
		struct item             items[NITEMS];
		weft_queue              q;
		weft_qnode             *n;
		char                    out[256]  = "";
		char                    left[256] = "";
		char                    walk[256] = "";

		for (int k = 0; k < NITEMS; k++) {
			items[k].id        = k;
			items[k].node.next = NULL;
		}
		weft_queue_init(&q);
		queue_check_shape(&q, r->name, "init");
		queue_run(r, &q, items, out, sizeof(out));
		cr_expect_str_eq(out, r->want_out,
		    "%s: returned \"%s\", want \"%s\"", r->name, out,
		    r->want_out);

		// What is left, walked with FOREACH and then popped: both
		// oldest first.
		WEFT_QUEUE_FOREACH (n, &q) {
			queue_add_id(walk, sizeof(walk), n);
		}
		cr_expect_str_eq(walk, r->want_left,
		    "%s: left \"%s\", want \"%s\"", r->name, walk,
		    r->want_left);
		while ((n = weft_queue_pop_head(&q)) != NULL) {
			queue_add_id(left, sizeof(left), n);
			cr_expect_null(n->next, "%s: popped node still linked",
			    r->name);
		}
		cr_expect_str_eq(left, r->want_left,
		    "%s: popped \"%s\", want \"%s\"", r->name, left,
		    r->want_left);
		queue_check_shape(&q, r->name, "draining");
	}
}

Test(queue, entry_of_null_is_null, .timeout = T_TIMEOUT)
{
	cr_expect_null(WEFT_QUEUE_ENTRY(NULL, struct item, node));
}

Test(queue, zeroed_queue_is_empty, .timeout = T_TIMEOUT)
{
	weft_queue  q;
	struct item it = { .id = 7 };

	memset(&q, 0, sizeof(q));
	cr_expect(weft_queue_is_empty(&q));
	cr_expect_eq(weft_queue_count(&q), 0);
	cr_expect_null(weft_queue_pop_head(&q));
	weft_queue_push_tail(&q, &it.node);
	cr_expect_eq(weft_queue_peek(&q), &it.node);
	cr_expect_eq(weft_queue_count(&q), 1);
}

Test(queue, one_element_on_two_queues, .timeout = T_TIMEOUT)
{
	struct two {
		weft_qnode a;
		weft_qnode b;
		int        id;
	} x = { .id = 1 }, y = { .id = 2 };
	weft_queue qa, qb;

	weft_queue_init(&qa);
	weft_queue_init(&qb);
	weft_queue_push_tail(&qa, &x.a);
	weft_queue_push_tail(&qa, &y.a);
	weft_queue_push_tail(&qb, &y.b);
	weft_queue_push_tail(&qb, &x.b);
	cr_expect_eq(WEFT_QUEUE_ENTRY(weft_queue_pop_head(&qa), struct two, a),
	    &x);
	cr_expect_eq(WEFT_QUEUE_ENTRY(weft_queue_pop_head(&qb), struct two, b),
	    &y);
	cr_expect_eq(WEFT_QUEUE_ENTRY(weft_queue_pop_head(&qa), struct two, a),
	    &y);
	cr_expect_eq(WEFT_QUEUE_ENTRY(weft_queue_pop_head(&qb), struct two, b),
	    &x);
}
