// expr_fuzz: libFuzzer target for the `when` condition language, whose
// source comes from users' definitions: weft_expr_compile on arbitrary text,
// then weft_expr_eval against a fixed document and weft_expr_paths. Eval is
// pure, so two evaluations must agree; a compile error explains itself.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "expr.h"
#include "fuzz_doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *fuzz_doc;

static weft_err
fuzz_path_cb(void *arg, const char *const *segs, size_t n, int col)
{
	size_t *count = arg;

	if (n == 0 || segs == NULL || col < 1) {
		abort();
	}
	for (size_t i = 0; i < n; i++) {
		if (segs[i] == NULL) {
			abort();
		}
	}
	(*count)++;
	return (WEFT_OK);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char      *src = malloc(size + 1);
	char       err[256];
	weft_expr *e = NULL;
	size_t     npaths = 0;
	weft_err   rv;

	if (fuzz_doc == NULL) {
		fuzz_doc = fuzz_doc_new();
	}
	memcpy(src, data, size);
	src[size] = '\0';
	memset(err, 'x', sizeof(err));
	rv = weft_expr_compile(&e, src, err, sizeof(err));
	if (rv != WEFT_OK) {
		if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0') {
			abort();
		}
		free(src);
		return (0);
	}
	if (weft_expr_eval(e, fuzz_doc) != weft_expr_eval(e, fuzz_doc)) {
		abort();
	}
	(void) weft_expr_eval(e, json_null());
	(void) weft_expr_eval(e, json_object_get(fuzz_doc, "input"));
	if (weft_expr_paths(e, fuzz_path_cb, &npaths) != WEFT_OK) {
		abort();
	}
	weft_expr_free(e);
	free(src);
	return (0);
}
