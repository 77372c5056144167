// secret_test: masking and scrubbing of a run's secrets (model/secret.c),
// run_queued as the model records it, and sealing at rest (common/seal.c):
// round trip, a fresh nonce each time, tampering and a wrong key refused.
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "def.h"
#include "run.h"
#include "seal.h"
#include "secret.h"
#include "tdef.h"
#include "tjson.h"

#define T_TIMEOUT (30 * WEFT_TEST_MULT)

// A definition with one secret parameter (tok), one plain (who) and one
// secret of type object (cfg).
static const char *secret_def =
    "{'name':'s','params':{"
    "'tok':{'type':'string','secret':true},"
    "'who':{'type':'string','default':'world'},"
    "'cfg':{'type':'object','secret':true},"
    "'n':{'type':'int','secret':true}},"
    "'steps':[{'id':'a','type':'echo','with':{'t':'${params.tok}',"
    "'k':'${input.secrets.key}'}}]}";

struct mask_row {
	const char *name;
	const char *doc;  // ' stands for "
	const char *want; // the masked document
};

static const struct mask_row mask_rows[] = {
	{ "nothing secret", "{'input':{'a':1},'params':{'who':'x'}}",
	    "{'input':{'a':1},'params':{'who':'x'}}" },
	{ "secret param", "{'params':{'tok':'hunter22','who':'x'}}",
	    "{'params':{'tok':'***','who':'x'}}" },
	{ "secret param of type object",
	    "{'params':{'cfg':{'user':'u','pass':'p'}}}",
	    "{'params':{'cfg':'***'}}" },
	{ "secret param that is a number", "{'params':{'n':1234}}",
	    "{'params':{'n':'***'}}" },
	{ "secret param null is masked too", "{'params':{'tok':null}}",
	    "{'params':{'tok':'***'}}" },
	{ "input.secrets members",
	    "{'input':{'a':'keep','secrets':{'key':'k1','deep':{'x':[1,2]}}}}",
	    "{'input':{'a':'keep','secrets':{'key':'***','deep':'***'}}}" },
	{ "input.secrets not an object",
	    "{'input':{'secrets':'s3cret'}}", "{'input':{'secrets':'***'}}" },
	{ "input.secrets empty", "{'input':{'secrets':{}}}",
	    "{'input':{'secrets':{}}}" },
	{ "only the top-level secrets key",
	    "{'input':{'x':{'secrets':{'a':'b'}}}}",
	    "{'input':{'x':{'secrets':{'a':'b'}}}}" },
	{ "both, other members kept",
	    "{'input':{'secrets':{'key':'k'}},'params':{'tok':'t','who':'w'},"
	    "'steps':{},'with':{'t':'t'}}",
	    "{'input':{'secrets':{'key':'***'}},'params':{'tok':'***',"
	    "'who':'w'},'steps':{},'with':{'t':'t'}}" },
	{ "no input, no params", "{}", "{}" },
};

Test(secret, mask_table, .timeout = T_TIMEOUT)
{
	weft_def *def = weft_t_def_sq(secret_def);

	for (size_t i = 0; i < sizeof(mask_rows) / sizeof(mask_rows[0]); i++) {
		const struct mask_row *r    = &mask_rows[i];
		json_t                *doc  =weft_t_json(r->doc);
		json_t                *want =weft_t_json(r->want);
		char                  *before = json_dumps(doc, JSON_SORT_KEYS);
		json_t                *got  = weft_secret_mask(doc, def);
		char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
		char *after = json_dumps(doc, JSON_SORT_KEYS);

		cr_expect(json_equal(got, want), "%s: got %s", r->name, g);
		cr_expect_str_eq(before, after, "%s: the input changed", r->name);
		free(g);
		free(before);
		free(after);
		json_decref(doc);
		json_decref(want);
		json_decref(got);
	}
	cr_expect_null(weft_secret_mask(NULL, def));
	weft_def_free(def);
}

struct present_row {
	const char *name;
	const char *input, *params;
	bool        want;
};

static const struct present_row present_rows[] = {
	{ "none", "{'a':1}", "{'who':'x'}", false },
	{ "secret param", "{}", "{'tok':'x'}", true },
	{ "input.secrets", "{'secrets':{}}", "{}", true },
	{ "nested secrets key does not count", "{'x':{'secrets':1}}", "{}",
	    false },
};

Test(secret, present_table, .timeout = T_TIMEOUT)
{
	weft_def *def = weft_t_def_sq(secret_def);

	for (size_t i = 0; i < sizeof(present_rows) / sizeof(present_rows[0]);
	     i++) {
		const struct present_row *r = &present_rows[i];
		json_t *in =weft_t_json(r->input), *pa =weft_t_json(r->params);
		cr_expect_eq(weft_secret_present(def, in, pa), r->want, "%s",
		    r->name);
		json_decref(in);
		json_decref(pa);
	}
	cr_expect(weft_secret_param(def, "tok"));
	cr_expect(!weft_secret_param(def, "who"));
	cr_expect(!weft_secret_param(def, "nope"));
	weft_def_free(def);
}

Test(secret, values_are_distinct_long_enough_longest_first,
    .timeout = T_TIMEOUT)
{
	weft_def *def = weft_t_def_sq(secret_def);
	json_t   *in  =weft_t_json("{'secrets':{'key':'abcd','short':'abc','dup':"
	                   "'tok-123456','list':['inner-1','***']},'plain':"
	                   "'notsecret'}");
	json_t   *pa  =weft_t_json("{'tok':'tok-123456','who':'world','n':123456,"
	                   "'cfg':{'pass':'p4ssw0rd!'}}");
	json_t   *v   = weft_secret_values(def, in, pa);
	json_t   *want =weft_t_json("['tok-123456','p4ssw0rd!','inner-1','abcd']");
	char     *g    = json_dumps(v, JSON_COMPACT);

	cr_expect(json_equal(v, want), "got %s", g);
	free(g);
	json_decref(v);
	json_decref(want);
	json_decref(in);
	json_decref(pa);
	in =weft_t_json("{'a':1}");
	pa =weft_t_json("{'who':'world'}");
	cr_expect_null(weft_secret_values(def, in, pa), "no secrets: NULL");
	json_decref(in);
	json_decref(pa);
	weft_def_free(def);
}

struct scrub_row {
	const char *name;
	const char *text;
	const char *want; // NULL: nothing to replace
};

static const struct scrub_row scrub_rows[] = {
	{ "no match", "hello world", NULL },
	{ "whole", "hunter22", "***" },
	{ "inside", "token=hunter22; done", "token=***; done" },
	{ "twice", "hunter22hunter22 and hunter22", "****** and ***" },
	{ "longest first", "x-hunter22-long-y", "x-***-y" },
	{ "two secrets", "a hunter22 b s3cr3t! c", "a *** b *** c" },
	{ "empty text", "", NULL },
	{ "prefix only", "hunter2", NULL },
};

Test(secret, scrub_text_table, .timeout = T_TIMEOUT)
{
	// Longest first, as weft_secret_values gives them.
	json_t *values =weft_t_json("['hunter22-long','hunter22','s3cr3t!']");

	for (size_t i = 0; i < sizeof(scrub_rows) / sizeof(scrub_rows[0]);
	     i++) {
		const struct scrub_row *r = &scrub_rows[i];
		char *got = weft_secret_scrub_text(r->text, values);
		if (r->want == NULL) {
			cr_expect_null(got, "%s: got \"%s\"", r->name, got);
		} else {
			cr_expect_not_null(got, "%s: nothing replaced", r->name);
			if (got != NULL) {
				cr_expect_str_eq(got, r->want, "%s", r->name);
			}
		}
		free(got);
	}
	cr_expect_null(weft_secret_scrub_text(NULL, values));
	cr_expect_null(weft_secret_scrub_text("hunter22", NULL));
	json_decref(values);
}

Test(secret, scrub_json_copies_only_when_needed, .timeout = T_TIMEOUT)
{
	json_t *values =weft_t_json("['hunter22']");
	json_t *clean  =weft_t_json("{'a':[1,'x',{'b':'y'}]}");
	json_t *dirty  =weft_t_json("{'a':[1,'my hunter22',{'b':'hunter22'}],'n':2}");
	json_t *want   =weft_t_json("{'a':[1,'my ***',{'b':'***'}],'n':2}");
	json_t *copy   = json_deep_copy(dirty);
	json_t *got;

	got = weft_secret_scrub(clean, values);
	cr_expect(got == clean, "nothing to mask: the same value");
	json_decref(got);
	got = weft_secret_scrub(dirty, values);
	cr_expect(got != dirty, "masked: a copy");
	cr_expect(json_equal(got, want));
	cr_expect(json_equal(dirty, copy), "the original is unchanged");
	json_decref(got);
	got = weft_secret_scrub(dirty, NULL);
	cr_expect(got == dirty);
	json_decref(got);
	{
		// A secret JSON escapes (a quote, a backslash) is found in
		// the value, where it is whole.
		json_t *q  = json_pack("[s]", "pa\"ss\\w0rd");
		json_t *in = json_pack("{s:s}", "e", "x pa\"ss\\w0rd y");
		json_t *g  = weft_secret_scrub(in, q);
		cr_expect_str_eq(json_string_value(json_object_get(g, "e")),
		    "x *** y");
		json_decref(g);
		json_decref(in);
		json_decref(q);
	}
	cr_expect_null(weft_secret_scrub(NULL, values));
	json_decref(values);
	json_decref(clean);
	json_decref(dirty);
	json_decref(want);
	json_decref(copy);
}

// The model records a run masked, and keeps it in clear for assignments.
Test(secret, run_queued_is_masked_step_input_is_clear, .timeout = T_TIMEOUT)
{
	weft_def *def = weft_t_def_sq(secret_def);
	weft_out  o;
	json_t   *params, *given =weft_t_json("{'tok':'hunter22'}");
	char      err[256];
	weft_run *r;
	json_t   *input, *data;
	char     *text;

	weft_out_init(&o);
	cr_assert_eq(weft_def_bind_params(def, given, &params, err,
	                 sizeof(err)),
	    WEFT_OK, "%s", err);
	r = weft_run_alloc("R1", def,weft_t_json("{'secrets':{'key':'k3y-value'}}"),
	    params, 0, &o);
	cr_assert_eq(o.nevents, 1);
	cr_assert_eq(o.events[0].type, WEFT_EV_RUN_QUEUED);
	data = o.events[0].data;
	text = json_dumps(data, JSON_COMPACT);
	cr_expect(strstr(text, "hunter22") == NULL, "run_queued: %s", text);
	cr_expect(strstr(text, "k3y-value") == NULL, "run_queued: %s", text);
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(data, "params"), "tok")),
	    "***");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(json_object_get(data, "input"),
	                         "secrets"),
	                     "key")),
	    "***");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(data, "params"), "who")),
	    "world", "plain params stay");
	free(text);
	cr_expect(r->secrets);
	cr_expect_eq(json_array_size(r->secret_values), 2);
	cr_expect_eq(weft_run_start(r, 0, &o), WEFT_OK);
	input = weft_run_step_input(r, WEFT_REF(0), err, sizeof(err));
	cr_assert_not_null(input, "%s", err);
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(input, "with"), "t")),
	    "hunter22", "the assignment has the clear value");
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(input, "with"), "k")),
	    "k3y-value");
	json_decref(input);
	weft_run_free(r);
	weft_out_fini(&o);
	json_decref(given);
	weft_def_free(def);
}

Test(secret, run_without_secrets_is_recorded_as_given, .timeout = T_TIMEOUT)
{
	weft_def *def = weft_t_def_sq(secret_def);
	weft_out  o;
	weft_run *r;

	weft_out_init(&o);
	r = weft_run_alloc("R2", def,weft_t_json("{'a':'hunter22'}"),
	   weft_t_json("{'who':'w'}"), 0, &o);
	cr_expect(!r->secrets);
	cr_expect_null(r->secret_values);
	cr_expect_str_eq(json_string_value(json_object_get(
	                     json_object_get(o.events[0].data, "input"), "a")),
	    "hunter22");
	weft_run_free(r);
	weft_out_fini(&o);
	weft_def_free(def);
}

// ---- sealing ----

static void
key_fill(uint8_t key[WEFT_KEY_LEN], uint8_t b)
{
	memset(key, b, WEFT_KEY_LEN);
}

Test(seal, round_trip_with_a_fresh_nonce, .timeout = T_TIMEOUT)
{
	uint8_t     key[WEFT_KEY_LEN];
	const char *msg = "{\"params\":{\"tok\":\"hunter22\"}}";
	char       *a, *b, *out;
	size_t      len;

	key_fill(key, 7);
	a = weft_seal(key, msg, strlen(msg));
	b = weft_seal(key, msg, strlen(msg));
	cr_expect(strcmp(a, b) != 0, "same text, same seal: nonce reused");
	cr_expect(strstr(a, "hunter22") == NULL);
	cr_assert_eq(weft_unseal(key, a, &out, &len), WEFT_OK);
	cr_expect_eq(len, strlen(msg));
	cr_expect_str_eq(out, msg);
	free(out);
	cr_assert_eq(weft_unseal(key, b, &out, &len), WEFT_OK);
	cr_expect_str_eq(out, msg);
	free(out);
	free(a);
	free(b);
	a = weft_seal(key, "", 0);
	cr_assert_eq(weft_unseal(key, a, &out, &len), WEFT_OK);
	cr_expect_eq(len, 0);
	cr_expect_str_eq(out, "");
	free(out);
	free(a);
}

Test(seal, wrong_key_is_refused, .timeout = T_TIMEOUT)
{
	uint8_t k1[WEFT_KEY_LEN], k2[WEFT_KEY_LEN];
	char   *box, *out = (char *) 1;
	size_t  len = 99;

	key_fill(k1, 1);
	key_fill(k2, 1);
	k2[31] ^= 1;
	box = weft_seal(k1, "secret", 6);
	cr_expect_eq(weft_unseal(k2, box, &out, &len), WEFT_EAUTH);
	cr_expect_null(out);
	cr_expect_eq(len, 0);
	free(box);
}

Test(seal, every_altered_byte_is_detected, .timeout = T_TIMEOUT)
{
	uint8_t key[WEFT_KEY_LEN];
	char   *box, *out;
	size_t  len, n;

	key_fill(key, 3);
	box = weft_seal(key, "hunter22", 8);
	n   = strlen(box);
	// Flip each base64 character of the body (not the padding) to
	// another valid one: nonce, MAC and ciphertext are all covered.
	for (size_t i = 0; i < n && box[i] != '='; i++) {
		char c = box[i];
		box[i] = c == 'A' ? 'B' : 'A';
		weft_err rv = weft_unseal(key, box, &out, &len);
		cr_expect(rv == WEFT_EAUTH || rv == WEFT_EINVAL,
		    "byte %zu altered: %s", i, weft_err_name(rv));
		if (rv == WEFT_OK) {
			free(out);
		}
		box[i] = c;
	}
	cr_expect_eq(weft_unseal(key, box, &out, &len), WEFT_OK);
	free(out);
	free(box);
}

Test(seal, malformed_text_is_refused, .timeout = T_TIMEOUT)
{
	static const char *bad[] = { "", "not base64 at all!", "AAAA",
		"QUJD" /* "ABC": shorter than a nonce and a MAC */ };
	uint8_t key[WEFT_KEY_LEN];
	char   *out;
	size_t  len;

	key_fill(key, 5);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(weft_unseal(key, bad[i], &out, &len), WEFT_EINVAL,
		    "\"%s\"", bad[i]);
		cr_expect_null(out);
	}
}
