// expand: dynamic expansion. A step with "expand": true returns
// {"steps": [...]} in the definition format; the run splices those steps
// in as "<step>.<id>" and the step ends when they all have.
//
// Pure: checking an expansion document against the run's definition, and
// building the definitions with an expansion spliced in or taken out. The
// run's side (the step waiting for its expansion) is in run.c.
#ifndef WEFT_EXPAND_H
#define WEFT_EXPAND_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "def.h"
#include "err.h"

// Most steps one expansion may add, and most a run may have spliced in
// over all its expansions (docs/definitions.md, "Dynamic expansion").
#define WEFT_EXPAND_MAX_STEPS 1000u
#define WEFT_EXPAND_MAX_TOTAL 10000u

// weft_expand_depth gives how deep step id sits: 0 for a definition's own
// step, 1 for a step of its expansion, and so on (its count of '.').
uint32_t weft_expand_depth(const char *id);

// weft_expand_local gives the id step id goes by in the documents its
// neighbours read ("design" for "plan.design"): a pointer into id.
const char *weft_expand_local(const char *id);

// weft_expand_check checks output (borrowed), what step x of def returned,
// as an expansion: an object with a "steps" array that is a valid
// definition's when the steps x may read (x itself and its dependencies)
// are beside them, no deeper than def's max_depth, within the size caps.
// On success *steps is a new array of the step documents to splice, with
// ids and depends_on in full ("plan.design"; x itself left out of
// depends_on: its expansion runs inside it). On failure WEFT_EDEF and a
// message in err (errlen bytes) saying what and where.
weft_err weft_expand_check(const weft_def *def, long x, const json_t *output,
    json_t **steps, char *err, size_t errlen);

// weft_expand_splice makes *out, a new definition: def with steps (from
// weft_expand_check; borrowed) appended. WEFT_EDEF with err set when the
// result does not parse (over WEFT_DEF_MAX_STEPS).
weft_err weft_expand_splice(const weft_def *def, const json_t *steps,
    weft_def **out, char *err, size_t errlen);

// weft_expand_drop makes *out, def without the expansion of step x_id
// (every step under it, nested ones included); *out is NULL when no
// spliced step is left (the run's own definition serves again).
weft_err weft_expand_drop(const weft_def *def, const char *x_id,
    weft_def **out, char *err, size_t errlen);

#endif
