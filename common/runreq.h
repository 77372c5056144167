// runreq: a run request written as JSON (the body of POST /api/v1/runs, an
// item of POST /api/v1/runs/batch, a line of `weft submit`) turned into the
// protobuf RunRequest the engine takes: one translation for every front
// end, so they all accept the same documents.
#ifndef WEFT_RUNREQ_H
#define WEFT_RUNREQ_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "weft.pb-c.h"

// A RunRequest made from a JSON object, and the texts it points into.
typedef struct weft_runreq {
	Weft__RunRequest rr;     // definition borrows the source object's
	                         // string; the other fields point below
	char            *def;    // "definition_json" as compact text, or NULL
	char            *input;  // "input" as compact text ("" when absent)
	char            *params; // "params" as compact text ("" when absent)
	char            *tags;   // "tags" as compact text ("" when absent)
} weft_runreq;

// weft_runreq_from_json fills q (caller's storage) from obj, an object
// {"definition": NAME | "definition_json": {...}, "input": ...,
// "params": ..., "version": N, "idempotency_key": K, "tags": {...}}
// (borrowed, and retained: q->rr.definition points into it
// until q is no longer used). What the engine checks (that a definition is
// named, that input is JSON of the right shape, secrets, sizes) passes
// through. Returns false, with the reason in err and q zeroed, when obj is
// not an object, has a member not listed above (nor start_at, priority),
// its "input" or "params" is not an object (or null), its "definition"
// or "idempotency_key" is not a string,
// or its "version" is not a whole number from 1 to 4294967295. Any thread. Finish
// with weft_runreq_fini.
bool weft_runreq_from_json(weft_runreq *q, json_t *obj, char *err,
    size_t errlen);

// weft_runreq_fini frees q's texts; safe on a zeroed or failed q.
void weft_runreq_fini(weft_runreq *q);

#endif
