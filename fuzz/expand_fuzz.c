// expand_fuzz: libFuzzer target for expansion documents, which an expand
// step's program prints (possibly a model's answer): weft_expand_check on
// arbitrary text as the output of step `plan` of a fixed definition. A
// document that passes must splice (weft_expand_splice), every spliced step
// named "plan.<id>" under plan and none a sink, and dropping it again must
// give the definition back; one that fails explains itself.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "def.h"
#include "expand.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_def[] =
    "{\"name\":\"g\",\"params\":{\"p\":{\"type\":\"int\",\"default\":1}},"
    "\"max_depth\":3,\"steps\":["
    "{\"id\":\"fetch\",\"type\":\"t\"},"
    "{\"id\":\"plan\",\"type\":\"t\",\"expand\":true,"
    "\"depends_on\":[\"fetch\"]},"
    "{\"id\":\"report\",\"type\":\"t\",\"depends_on\":[\"plan\"]}]}";

static weft_def *fuzz_base;

static void
fuzz_check_spliced(const weft_def *def, size_t added)
{
	long plan = weft_def_find(def, "plan");

	if (def->nsteps != fuzz_base->nsteps + added ||
	    def->nsinks != fuzz_base->nsinks || plan != 1) {
		abort();
	}
	for (size_t i = fuzz_base->nsteps; i < def->nsteps; i++) {
		const weft_def_step *s = &def->steps[i];
		if (strncmp(s->id, "plan.", 5) != 0 || s->parent != plan ||
		    weft_def_find(def, s->id) != (long) i ||
		    weft_expand_depth(s->id) != 1) {
			abort();
		}
		for (size_t k = 0; k < s->ndeps; k++) {
			// Its siblings, or what plan depends on; never plan.
			if (s->deps[k] == (uint32_t) plan ||
			    (s->deps[k] < fuzz_base->nsteps && s->deps[k] != 0)) {
				abort();
			}
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char      err[1024];
	json_t   *out, *steps = NULL;
	weft_def *def = NULL, *back = NULL;

	if (fuzz_base == NULL &&
	    weft_def_parse(&fuzz_base, fuzz_def, strlen(fuzz_def), err,
	        sizeof(err)) != WEFT_OK) {
		abort();
	}
	if (size > 1 << 20) {
		return (0);
	}
	out = json_loadb((const char *) data, size, 0, NULL);
	memset(err, 0, sizeof(err));
	if (weft_expand_check(fuzz_base, 1, out, &steps, err, sizeof(err)) !=
	    WEFT_OK) {
		if (steps != NULL || strncmp(err, "expansion of step plan: ",
		                         24) != 0 || err[24] == '\0') {
			abort();
		}
		json_decref(out);
		return (0);
	}
	if (weft_expand_splice(fuzz_base, steps, &def, err, sizeof(err)) !=
	    WEFT_OK) {
		abort(); // checked means it splices
	}
	fuzz_check_spliced(def, json_array_size(steps));
	if (weft_expand_drop(def, "plan", &back, err, sizeof(err)) != WEFT_OK ||
	    back != NULL) {
		abort(); // nothing else was spliced
	}
	weft_def_free(def);
	json_decref(steps);
	json_decref(out);
	return (0);
}
