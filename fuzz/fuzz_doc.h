// fuzz_doc: the step input document the expression and render fuzzers
// evaluate against: every JSON type, nesting, arrays, a failed step, a map
// step's output (for [*]) and a map item's item and index.
#ifndef WEFT_FUZZ_DOC_H
#define WEFT_FUZZ_DOC_H

#include <stdlib.h>

#include <jansson.h>

#define FUZZ_DOC_TEXT                                                       \
	"{\"input\":{\"x\":5,\"name\":\"weft\",\"tags\":[\"a\",\"b\"],"      \
	"\"empty\":\"\",\"obj\":{\"k\":1,\"deep\":{\"a\":[1,[2,{\"b\":3}]]}}," \
	"\"zero\":0,\"real\":2.5,\"t\":true,\"f\":false,\"n\":null,"         \
	"\"arr\":[],\"eobj\":{},\"big\":9007199254740993,"                    \
	"\"neg\":-9223372036854775808,\"q\":\"a\\\"b ${x}\"},"                \
	"\"params\":{\"limit\":10,\"mode\":\"fast\"},"                        \
	"\"steps\":{\"fetch\":{\"status\":\"succeeded\",\"output\":{\"n\":3," \
	"\"files\":[\"x.csv\",\"y.csv\"]}},\"bad\":{\"status\":\"failed\","   \
	"\"output\":null,\"error\":\"boom\",\"exit_code\":3},"                \
	"\"m\":{\"status\":\"succeeded\",\"output\":[{\"s\":1,\"t\":[1,2]},"  \
	"null,{\"s\":[3]},5]}},\"item\":{\"n\":7,\"name\":\"a.csv\"},"      \
	"\"index\":2,"                                                      \
	"\"with\":{\"ms\":10}}"

// fuzz_doc_new returns a new reference to the parsed document; aborts if
// the text above does not parse (a bug in the fuzzer, not a finding).
static inline json_t *
fuzz_doc_new(void)
{
	json_t *doc = json_loads(FUZZ_DOC_TEXT, 0, NULL);

	if (doc == NULL) {
		abort();
	}
	return (doc);
}

#endif
