// secret: which values of a run are secret, and their masked copies.
//
// A parameter declared "secret": true and every member of the run input's
// top-level "secrets" object are secret: in clear only in the input
// document of an assignment, "***" in everything recorded (events, the
// store's run rows, API answers, logs). Pure functions, no I/O.
#ifndef WEFT_SECRET_H
#define WEFT_SECRET_H

#include <stdbool.h>

#include <jansson.h>

#include "def.h"

#define WEFT_SECRET_MASK "***" // what a secret reads as outside assignments
#define WEFT_SECRET_INPUT "secrets" // the run input's key for secret values
// Shortest secret string searched for in recorded text (outputs, errors):
// shorter ones would mask innocent text ("a", "on") and hide little.
#define WEFT_SECRET_MIN_SCRUB 4

// weft_secret_param reports whether def (borrowed) declares parameter
// name (borrowed) secret.
bool weft_secret_param(const weft_def *def, const char *name);

// weft_secret_present reports whether a run of def with this input and
// these bound params (all borrowed; NULL = none) carries any secret.
bool weft_secret_present(
    const weft_def *def, const json_t *input, const json_t *params);

// weft_secret_mask returns a deep copy of doc (borrowed: an object with
// "input" and/or "params" members, such as run_queued data or a step's
// input document) in which the value of every secret parameter under
// "params", and every member of "input"."secrets" (or "secrets" itself
// when it is not an object), is the string "***". Other members are
// copied as they are. NULL doc gives NULL. New reference.
json_t *weft_secret_mask(const json_t *doc, const weft_def *def);

// weft_secret_values returns the strings to search for in recorded text:
// the distinct string leaves of the secret values of a run (input and
// params borrowed), at least WEFT_SECRET_MIN_SCRUB bytes long, longest
// first (so a secret containing another is masked whole). NULL when there
// is none. New reference (an array).
json_t *weft_secret_values(
    const weft_def *def, const json_t *input, const json_t *params);

// weft_secret_scrub_text returns a copy of text (borrowed) with each
// occurrence of a string of values (borrowed; NULL = none) replaced by
// "***" (malloc'd; free()), or NULL when text contains none.
char *weft_secret_scrub_text(const char *text, const json_t *values);

// weft_secret_scrub returns v (borrowed) with every occurrence of values
// (borrowed; NULL = none) in its strings, at any depth, replaced by
// "***": a new reference to v itself when nothing matched, else to a
// changed deep copy; v is never changed. NULL v gives NULL.
json_t *weft_secret_scrub(json_t *v, const json_t *values);

#endif
