// depends: per-dependency conditions, Argo's `depends`: a boolean expression
// over the end states of named steps ("a.succeeded && (b.failed ||
// b.skipped)"), an alternative to depends_on + trigger. Compiled once when
// the definition is loaded; evaluated, purely, once the named steps ended.
#ifndef WEFT_DEPENDS_H
#define WEFT_DEPENDS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "err.h"
#include "step.h"

// Longest source text and deepest nesting accepted (as for `when`).
#define WEFT_DEPENDS_MAX_BYTES 4096u
#define WEFT_DEPENDS_MAX_DEPTH 64u

typedef struct weft_depends weft_depends;

// weft_depends_compile compiles src (NUL-terminated, borrowed). The
// language: terms `STEP.STATE` where STATE is succeeded, failed,
// upstream_failed, skipped, cancelled or done (ended, any way), or a bare
// `STEP` meaning `STEP.succeeded || STEP.skipped` (Argo's); `&&`, `||`,
// `!` and parentheses; `&&` binds tighter than `||`; spaces anywhere
// between tokens. STEP is a step id (A-Z a-z 0-9 _ -). On success *out is
// a new expression to free with weft_depends_free. On a syntax error
// returns WEFT_EINVAL and writes "col N: what" into err (errlen bytes, N
// counted in bytes from 1); oversize text gives WEFT_ETOOBIG.
weft_err weft_depends_compile(
    weft_depends **out, const char *src, char *err, size_t errlen);

// weft_depends_names returns a new array of the step ids d names, each
// once, in order of first appearance: the step's dependency set.
json_t *weft_depends_names(const weft_depends *d);

// weft_depends_step_deps returns the dependencies a definition step's JSON
// (borrowed) declares: its "depends_on", or the ids its "depends" names.
// New reference; an empty array when it has neither (or the text does not
// compile: a registered definition's always does).
json_t *weft_depends_step_deps(const json_t *def_step);

// weft_depends_state_fn gives the state of the step called name (borrowed).
typedef enum weft_step_state (*weft_depends_state_fn)(
    void *arg, const char *name);

// weft_depends_eval evaluates d with each named step's state from fn(arg,
// name). Pure; meant to be called once every named step has ended (a step
// not ended matches no state, not even done).
bool weft_depends_eval(const weft_depends *d, weft_depends_state_fn fn,
    void *arg);

// weft_depends_free frees d (NULL is fine).
void weft_depends_free(weft_depends *d);

#endif
