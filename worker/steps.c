// steps: the built-in step types every worker advertises: noop, echo,
// sleep and fail (exec lives in exec.c). Each reads its settings from the
// "with" object of the input document.
#include "worker_impl.h"

#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"

// steps_with_int reads with.<key> as an integer (reals are truncated).
// Returns 0 and sets *v, 1 when absent, -1 when not a number.
static int
steps_with_int(json_t *input, const char *key, json_int_t *v)
{
	json_t *x = json_object_get(json_object_get(input, "with"), key);

	if (x == NULL || json_is_null(x)) {
		return (1);
	}
	if (json_is_integer(x)) {
		*v = json_integer_value(x);
		return (0);
	}
	if (json_is_real(x)) {
		*v = (json_int_t) json_real_value(x);
		return (0);
	}
	return (-1);
}

int
weft_step_noop(void *arg, const weft_step_ctx *ctx, json_t *input,
    json_t **output, char **error)
{
	(void) arg;
	(void) ctx;
	(void) input;
	(void) error;
	*output = json_null();
	return (0);
}

int
weft_step_echo(void *arg, const weft_step_ctx *ctx, json_t *input,
    json_t **output, char **error)
{
	(void) arg;
	(void) ctx;
	(void) error;
	*output = json_incref(input);
	return (0);
}

// weft_step_pass outputs its rendered `with` and nothing else (null
// without one), like a Step Functions Pass state: the step for shaping
// data between steps, whose output does not carry its dependencies'
// outputs along as echo's does.
int
weft_step_pass(void *arg, const weft_step_ctx *ctx, json_t *input,
    json_t **output, char **error)
{
	json_t *with = json_object_get(input, "with");

	(void) arg;
	(void) ctx;
	(void) error;
	*output = with != NULL ? json_incref(with) : json_null();
	return (0);
}

int
weft_step_sleep_fn(void *arg, const weft_step_ctx *ctx, json_t *input,
    json_t **output, char **error)
{
	json_int_t ms = 0;

	(void) arg;
	if (steps_with_int(input, "ms", &ms) != 0 || ms < 0) {
		return (worker_step_error(error,
		    "sleep: with.ms must be a non-negative number of "
		    "milliseconds"));
	}
	// Sleeping is all this step does: it beats while it sleeps.
	worker_attempt_auto_beat(ctx->att, true);
	weft_err err = weft_step_sleep(ctx, (int64_t) ms);
	worker_attempt_auto_beat(ctx->att, false);
	switch (err) {
	case WEFT_OK:
		break;
	case WEFT_ETIMEDOUT:
		return (worker_step_error(
		    error, "sleep: timed out after %u ms", ctx->timeout_ms));
	default:
		return (worker_step_error(error, "sleep: aborted"));
	}
	*output = json_pack("{sI}", "slept_ms", ms);
	return (0);
}

int
weft_step_fail(void *arg, const weft_step_ctx *ctx, json_t *input,
    json_t **output, char **error)
{
	json_int_t times = 1;

	(void) arg;
	if (steps_with_int(input, "times", &times) < 0 || times < 0) {
		return (worker_step_error(error,
		    "fail: with.times must be a non-negative integer"));
	}
	if ((json_int_t) ctx->attempt <= times) {
		return (worker_step_error(error, "fail: attempt %u of %lld set to fail",
		    ctx->attempt, (long long) times));
	}
	*output = json_pack("{sI}", "attempt", (json_int_t) ctx->attempt);
	return (0);
}
