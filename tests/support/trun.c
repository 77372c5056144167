// trun: checks over a run of the model.
#include "trun.h"

#include <criterion/criterion.h>
#include <stdlib.h>

#include "jsonx.h"

void
weft_t_expect_input_text(const weft_run *r, long i)
{
	char        err[256];
	const char *step = r->def->steps[i].id;
	char       *text = weft_run_step_input_text(r, WEFT_REF(i), NULL, NULL);
	json_t     *doc  = weft_run_step_input(r, WEFT_REF(i), err, sizeof(err));
	char       *want;

	cr_assert_not_null(doc, "%s: %s", step, err);
	cr_assert_not_null(text, "%s: no text", step);
	json_object_del(doc, "input");
	json_object_del(doc, "params");
	want = weft_json_dump(doc);
	cr_expect_str_eq(text, want, "%s", step);
	free(want);
	free(text);
	json_decref(doc);
}
