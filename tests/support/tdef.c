// tdef: workflow definitions written in tests.
#include "tdef.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "tjson.h"

weft_def *
weft_t_def(const char *text)
{
	weft_def *def = NULL;
	char      err[512];

	cr_assert_eq(weft_def_parse(&def, text, strlen(text), err, sizeof(err)),
	    WEFT_OK, "definition: %s", err);
	return (def);
}

weft_def *
weft_t_def_sq(const char *json)
{
	char     *text = weft_t_dq(json);
	weft_def *def  = weft_t_def(text);

	free(text);
	return (def);
}
