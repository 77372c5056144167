// expr: the `when` condition language of workflow steps. Source text is
// compiled once to a small AST and evaluated against a step's input document
// ({"input", "params", "steps": {id: {"status", "output", "error"}}}).
#ifndef WEFT_EXPR_H
#define WEFT_EXPR_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "err.h"

// Longest source text and deepest nesting (parentheses, '!', calls) accepted.
#define WEFT_EXPR_MAX_BYTES 4096u
#define WEFT_EXPR_MAX_DEPTH 64u

typedef struct weft_expr weft_expr;

// weft_expr_compile compiles src (NUL-terminated, borrowed). The language:
// literals (integers, reals, "strings" with \" and \\ escapes, true, false,
// null), dotted paths rooted at input, params or steps (digits index arrays:
// steps.a.output.files.0), comparisons == != < <= > >=, && || ! with
// parentheses, and the functions length(x) and contains(haystack, needle).
// On success *out is a new expression to free with weft_expr_free. On a
// syntax error returns WEFT_EINVAL and writes "col N: what" into err (errlen
// bytes, N counted in bytes from 1); oversize text gives WEFT_ETOOBIG.
weft_err weft_expr_compile(
    weft_expr **out, const char *src, char *err, size_t errlen);

// weft_expr_eval evaluates e against doc (borrowed) and returns its truth.
// Pure: it reads doc only and frees whatever it allocates. Missing paths are
// null; false, null, 0, "", [] and {} are false. Any thread may call it.
bool weft_expr_eval(const weft_expr *e, json_t *doc);

// weft_expr_free frees e (NULL is fine).
void weft_expr_free(weft_expr *e);

// weft_expr_path_fn is called for each path of an expression: segs[0..n) are
// its segments (borrowed, valid while e lives) and col its 1-based column.
// Returning anything but WEFT_OK stops the walk with that value.
typedef weft_err (*weft_expr_path_fn)(
    void *arg, const char *const *segs, size_t n, int col);

// weft_expr_paths calls fn(arg, ...) for every path in e, in source order,
// and returns the first non-OK value fn returned (WEFT_OK otherwise). Used to
// check references (steps.<id>, params.<name>) when a definition is loaded.
weft_err weft_expr_paths(const weft_expr *e, weft_expr_path_fn fn, void *arg);

#endif
