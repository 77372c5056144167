// depends_fuzz: libFuzzer target for `depends` conditions, whose source
// comes from users' definitions: weft_depends_compile on arbitrary text;
// an error must say where, and what compiles must name at least one step,
// each once, and evaluate the same twice under any assignment of states.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "depends.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// fuzz_state derives a state from the name and a seed: any mix of ends,
// and "not ended" too.
static enum weft_step_state
fuzz_state(void *arg, const char *name)
{
	unsigned h = *(const unsigned *) arg;

	for (const char *p = name; *p != '\0'; p++) {
		h = h * 31u + (unsigned char) *p;
	}
	return ((enum weft_step_state) (h % WEFT_STEP_NSTATES));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char         *src = malloc(size + 1);
	char          err[256];
	weft_depends *d = NULL;
	json_t       *names, *seen;
	size_t        k;
	json_t       *n;

	memcpy(src, data, size);
	src[size] = '\0';
	memset(err, 'x', sizeof(err));
	if (weft_depends_compile(&d, src, err, sizeof(err)) != WEFT_OK) {
		if (d != NULL || memchr(err, '\0', sizeof(err)) == NULL ||
		    (strncmp(err, "col ", 4) != 0 &&
		        strncmp(err, "longer than", 11) != 0)) {
			abort();
		}
		free(src);
		return (0);
	}
	names = weft_depends_names(d);
	seen  = json_object();
	if (json_array_size(names) == 0) {
		abort();
	}
	json_array_foreach (names, k, n) {
		const char *s = json_string_value(n);
		if (s == NULL || s[0] == '\0' || json_object_get(seen, s) != NULL) {
			abort();
		}
		json_object_set_new(seen, s, json_true());
	}
	for (unsigned seed = 0; seed < 4; seed++) {
		if (weft_depends_eval(d, fuzz_state, &seed) !=
		    weft_depends_eval(d, fuzz_state, &seed)) {
			abort();
		}
	}
	json_decref(seen);
	json_decref(names);
	weft_depends_free(d);
	free(src);
	return (0);
}
