// schedule: `weft schedule create|list|get|pause|resume|delete|trigger`,
// cron schedules kept by the coordinator (engine/cron.c); `--at` and
// `--delay` of `weft run`; and `weft clock advance`, the test clock.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "clock.h"

int
weft_cli_start_at(weft_cli *c, int64_t *ms)
{
	const char *at = c->flag[WEFT_CLI_F_AT], *delay = c->flag[WEFT_CLI_F_DELAY];
	char        err[256];
	int64_t     d;

	*ms = 0;
	if (at != NULL && delay != NULL) {
		return (weft_cli_usage_error("--at and --delay: give one of them"));
	}
	if (at != NULL) {
		// A time, not an age: "10m" would mean ten minutes ago.
		bool digits = at[0] != '\0' && strspn(at, "0123456789") == strlen(at);
		if ((!digits && strchr(at, 'T') == NULL) ||
		    !weft_clock_parse_time(at, 0, ms)) {
			return (weft_cli_usage_error(
			    "--at wants a time: RFC 3339 with an offset or Z "
			    "(2026-12-01T09:00:00Z, 2026-12-01T10:00:00+01:00) or "
			    "epoch ms, not '%s' (for a time from now: --delay 10m)",
			    at));
		}
	}
	if (delay != NULL) {
		if (weft_duration_parse(delay, &d, err, sizeof(err)) != WEFT_OK ||
		    d <= 0) {
			return (weft_cli_usage_error(
			    "--delay wants a duration such as 500ms, 30s, 10m, 2h "
			    "or 1d, not '%s'",
			    delay));
		}
		*ms = weft_clock_wall_ms() + d;
	}
	return (WEFT_CLI_OK);
}

static const char *
schedule_flag(weft_cli *c, enum weft_cli_flag f)
{
	return (c->flag[f] != NULL ? c->flag[f] : "");
}

static void
schedule_print_list(json_t *list)
{
	static const char *const head[] = { "NAME", "DEFINITION", "CRON",
		"TIMEZONE", "NEXT FIRE", "LAST FIRE", "LAST RUN", "PAUSED" };
	weft_cli_table t;
	json_t        *s;
	size_t         i;

	weft_cli_table_init(&t, 8, head);
	json_array_foreach (list, i, s) {
		char next[48], last[48];
		const char *row[] = {
			json_string_value(json_object_get(s, "name")),
			json_string_value(json_object_get(s, "definition")),
			json_string_value(json_object_get(s, "cron")),
			json_string_value(json_object_get(s, "timezone")),
			weft_cli_fmt_time(json_object_get(s, "next_fire_ms"), next),
			weft_cli_fmt_time(json_object_get(s, "last_fire_ms"), last),
			json_string_value(json_object_get(s, "last_run_id")),
			json_is_true(json_object_get(s, "paused")) ? "yes" : "no",
		};
		weft_cli_table_add(&t, row);
	}
	weft_cli_table_print(&t);
}

int
weft_cli_cmd_schedule(weft_cli *c)
{
	static const char *const actions[] = { "create", "list", "get",
		"pause", "resume", "delete", "trigger" };
	Weft__ControlRequest  req = WEFT__CONTROL_REQUEST__INIT;
	Weft__ScheduleRequest sr  = WEFT__SCHEDULE_REQUEST__INIT;
	json_t               *body = NULL;
	char                 *input = NULL, *params = NULL;
	const char           *action = c->args[0];
	bool                  known = false, create;
	int                   rv;

	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		known = known || strcmp(action, actions[i]) == 0;
	}
	if (!known) {
		return (weft_cli_usage_error("schedule: unknown action '%s' (use "
		                             "create, list, get, pause, resume, "
		                             "delete or trigger)",
		    action));
	}
	create = strcmp(action, "create") == 0;
	if ((strcmp(action, "list") == 0) != (c->nargs == 1)) {
		return (weft_cli_usage_error(strcmp(action, "list") == 0
		        ? "schedule list takes no name"
		        : "schedule %s: name the schedule",
		    action));
	}
	if (!create &&
	    (c->flag[WEFT_CLI_F_DEFINITION] || c->flag[WEFT_CLI_F_CRON] ||
	        c->flag[WEFT_CLI_F_TIMEZONE] || c->flag[WEFT_CLI_F_INPUT] ||
	        c->flag[WEFT_CLI_F_PARAMS] || c->flag[WEFT_CLI_F_OVERLAP] ||
	        c->flag[WEFT_CLI_F_CATCHUP])) {
		return (weft_cli_usage_error("schedule %s: --definition, --cron, "
		                             "--timezone, --input, --params, "
		                             "--overlap and --catchup go with "
		                             "create",
		    action));
	}
	if (create && (c->flag[WEFT_CLI_F_DEFINITION] == NULL ||
	                  c->flag[WEFT_CLI_F_CRON] == NULL)) {
		return (weft_cli_usage_error(
		    "schedule create NAME needs --definition D and --cron EXPR"));
	}
	if ((rv = weft_cli_json_flag(c, WEFT_CLI_F_INPUT, "input", true,
	         &input)) != WEFT_CLI_OK ||
	    (rv = weft_cli_json_flag(c, WEFT_CLI_F_PARAMS, "params", true,
	         &params)) != WEFT_CLI_OK) {
		goto done;
	}
	sr.action      = (char *) action;
	sr.name        = c->nargs > 1 ? c->args[1] : "";
	sr.definition  = (char *) schedule_flag(c, WEFT_CLI_F_DEFINITION);
	sr.cron        = (char *) schedule_flag(c, WEFT_CLI_F_CRON);
	sr.timezone    = (char *) schedule_flag(c, WEFT_CLI_F_TIMEZONE);
	sr.overlap     = (char *) schedule_flag(c, WEFT_CLI_F_OVERLAP);
	sr.catchup     = (char *) schedule_flag(c, WEFT_CLI_F_CATCHUP);
	sr.input_json  = input != NULL ? input : "";
	sr.params_json = params != NULL ? params : "";
	req.req_case   = WEFT__CONTROL_REQUEST__REQ_SCHEDULE;
	req.schedule   = &sr;
	if ((rv = weft_cli_call(c, &req, &body)) != WEFT_CLI_OK) {
		goto done;
	}
	if (c->json) {
		weft_cli_print_json(strcmp(action, "list") == 0
		        ? json_object_get(body, "schedules")
		        : body);
	} else if (strcmp(action, "list") == 0) {
		schedule_print_list(json_object_get(body, "schedules"));
	} else if (strcmp(action, "trigger") == 0) {
		printf("%s\n", json_string_value(json_object_get(body, "run_id")));
	} else if (strcmp(action, "delete") == 0) {
		printf("schedule %s deleted\n", sr.name);
	} else {
		char next[48];
		weft_cli_print_fields(body);
		if (strcmp(action, "get") != 0 &&
		    json_is_integer(json_object_get(body, "next_fire_ms"))) {
			fprintf(stderr, "weft: schedule %s fires next at %s\n",
			    sr.name,
			    weft_cli_fmt_time(json_object_get(body, "next_fire_ms"),
			        next));
		}
	}
done:
	free(input);
	free(params);
	json_decref(body);
	return (rv);
}

int
weft_cli_cmd_clock(weft_cli *c)
{
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__ClockRequest   cr  = WEFT__CLOCK_REQUEST__INIT;
	char                 err[256];
	int64_t              ms;

	if (strcmp(c->args[0], "advance") != 0) {
		return (weft_cli_usage_error("clock: the one action is advance"));
	}
	if (weft_duration_parse(c->args[1], &ms, err, sizeof(err)) != WEFT_OK) {
		return (weft_cli_usage_error("clock advance: %s", err));
	}
	cr.advance_ms = ms;
	req.req_case  = WEFT__CONTROL_REQUEST__REQ_CLOCK;
	req.clock     = &cr;
	return (weft_cli_call_print(c, &req));
}
