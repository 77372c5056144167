// def_fuzz: libFuzzer target for workflow definitions, which come from
// users (CLI, HTTP API): weft_def_parse on arbitrary text, then
// weft_def_bind_params. Input: definition text, optionally followed by a NUL
// byte and the params JSON to bind. A definition that parses must be a
// consistent DAG: indices in range, dependents mirroring dependencies,
// roots and sinks right, no cycle, every step findable by id.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "def.h"
#include "expr.h"
#include "fuzz_doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *fuzz_doc;

// fuzz_check_err: a failure always explains itself in a terminated string.
static void
fuzz_check_err(const char *err, size_t errlen)
{
	if (memchr(err, '\0', errlen) == NULL || err[0] == '\0') {
		abort();
	}
}

static bool
fuzz_has(const uint32_t *v, size_t n, uint32_t x)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i] == x) {
			return (true);
		}
	}
	return (false);
}

// fuzz_check_dag checks the compiled graph of a parsed definition.
static void
fuzz_check_dag(const weft_def *def)
{
	size_t    n = def->nsteps, nroots = 0, nsinks = 0, seen = 0;
	uint32_t *indeg, *queue;

	if (n == 0 || n > WEFT_DEF_MAX_STEPS || def->name == NULL ||
	    def->params == NULL || def->json == NULL) {
		abort();
	}
	indeg = calloc(n, sizeof(*indeg));
	queue = calloc(n, sizeof(*queue));
	for (size_t i = 0; i < n; i++) {
		const weft_def_step *s = &def->steps[i];
		if (s->id == NULL || s->type == NULL ||
		    weft_def_find(def, s->id) != (long) i ||
		    s->retry.max_attempts < 1 || (s->when != NULL) !=
		    (s->when_expr != NULL)) {
			abort();
		}
		for (size_t k = 0; k < s->ndeps; k++) {
			uint32_t d = s->deps[k];
			if (d >= n || d == i ||
			    !fuzz_has(def->steps[d].outs, def->steps[d].nouts,
			        (uint32_t) i)) {
				abort();
			}
		}
		for (size_t k = 0; k < s->nouts; k++) {
			uint32_t o = s->outs[k];
			if (o >= n || !fuzz_has(def->steps[o].deps,
			                  def->steps[o].ndeps, (uint32_t) i)) {
				abort();
			}
		}
		indeg[i] = (uint32_t) s->ndeps;
		nroots += s->ndeps == 0;
		nsinks += s->nouts == 0;
		if (s->ndeps == 0) {
			queue[seen++] = (uint32_t) i;
		}
		// Backoff arithmetic over the whole range of attempts.
		static const uint32_t next[] = { 0, 1, 2, 3, 10, 33, 34, 64,
			1000, UINT32_MAX };
		for (size_t k = 0; k < sizeof(next) / sizeof(next[0]); k++) {
			if (weft_retry_delay_ms(&s->retry, next[k]) >
			    s->retry.max_ms && next[k] >= 2) {
				abort();
			}
		}
		if (s->when_expr != NULL) {
			(void) weft_expr_eval(s->when_expr, fuzz_doc);
		}
	}
	if (nroots != def->nroots || nsinks != def->nsinks) {
		abort();
	}
	for (size_t k = 0; k < def->nroots; k++) {
		if (def->roots[k] >= n || def->steps[def->roots[k]].ndeps != 0) {
			abort();
		}
	}
	for (size_t k = 0; k < def->nsinks; k++) {
		if (def->sinks[k] >= n || def->steps[def->sinks[k]].nouts != 0) {
			abort();
		}
	}
	// Kahn: every step is reached when there is no cycle.
	for (size_t h = 0; h < seen; h++) {
		const weft_def_step *s = &def->steps[queue[h]];
		for (size_t k = 0; k < s->nouts; k++) {
			if (--indeg[s->outs[k]] == 0) {
				queue[seen++] = s->outs[k];
			}
		}
	}
	if (seen != n) {
		abort();
	}
	free(indeg);
	free(queue);
}

static void
fuzz_bind(const weft_def *def, json_t *given)
{
	char    err[512];
	json_t *out = NULL;

	memset(err, 'x', sizeof(err));
	if (weft_def_bind_params(def, given, &out, err, sizeof(err)) ==
	    WEFT_OK) {
		if (!json_is_object(out)) {
			abort();
		}
		json_decref(out);
	} else {
		fuzz_check_err(err, sizeof(err));
		if (out != NULL) {
			abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul  = memchr(data, '\0', size);
	size_t         dlen = nul ? (size_t) (nul - data) : size;
	weft_def      *def  = NULL;
	char           err[512];
	json_t        *given;

	if (fuzz_doc == NULL) {
		fuzz_doc = fuzz_doc_new();
	}
	// Not terminated: the parser must respect len.
	memset(err, 'x', sizeof(err));
	if (weft_def_parse(&def, (const char *) data, dlen, err, sizeof(err)) !=
	    WEFT_OK) {
		fuzz_check_err(err, sizeof(err));
		return (0);
	}
	fuzz_check_dag(def);
	fuzz_bind(def, NULL);
	given = json_object();
	fuzz_bind(def, given);
	json_decref(given);
	given = json_array();
	fuzz_bind(def, given);
	json_decref(given);
	if (nul != NULL) {
		given = json_loadb((const char *) nul + 1, size - dlen - 1,
		    JSON_DECODE_ANY, NULL);
		fuzz_bind(def, given);
		json_decref(given);
	}
	weft_def_free(def);
	return (0);
}
