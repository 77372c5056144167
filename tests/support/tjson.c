// tjson: JSON in tests written with ' for ".
#include "tjson.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

char *
weft_t_dq(const char *s)
{
	char *d = strdup(s);

	cr_assert_not_null(d);
	for (char *p = d; *p != '\0'; p++) {
		if (*p == '\'') {
			*p = '"';
		}
	}
	return (d);
}

json_t *
weft_t_json(const char *s)
{
	char        *text = weft_t_dq(s);
	json_error_t je;
	json_t      *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);

	cr_assert_not_null(v, "bad JSON in the test: %s: %s", je.text, text);
	free(text);
	return (v);
}
