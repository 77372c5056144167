// tdef: workflow definitions written in tests, parsed by the model's own
// parser (coordinator/model/def.c); a definition that does not parse
// fails the test, naming the parser's error.
#ifndef WEFT_TEST_TDEF_H
#define WEFT_TEST_TDEF_H

#include "def.h"

// weft_t_def parses text as written.
weft_def *weft_t_def(const char *text);

// weft_t_def_sq parses json written with ' for " (tjson.h).
weft_def *weft_t_def_sq(const char *json);

#endif
