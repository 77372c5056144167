// cron: schedule objects that start runs of a definition on a cron
// expression in a time zone (weft schedule, /api/v1/schedules), and the
// test clock that lets the tests move time instead of waiting for it.
//
// The engine thread owns the schedules (e->schedules) and decides every
// fire in its iteration: a fire is a run created the way a RunRequest
// creates one, plus schedule_fired (a coordinator event, on the
// node:<coordinator> topic, naming the schedule and the run). The store projects
// schedule_fired onto schedules.last_fire_ms in the same transaction as
// the run's run_queued, so a crash either loses both (the fire happens
// after the restart) or keeps both (it is not repeated): no double fire.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "cron.h"
#include "engine_int.h"
#include "hold.h"
#include "log.h"

// Fires one schedule may make up at recovery with catchup "all"; missed
// fires beyond it are recorded as one schedule_skipped.
#define CRON_CATCHUP_MAX 100

// The longest zone file read (the largest in tzdata is ~4 KiB).
#define CRON_TZ_MAX (64 * 1024)

enum cron_overlap { CRON_SKIP, CRON_ALLOW, CRON_CANCEL_PREVIOUS };
enum cron_catchup { CRON_CATCHUP_NONE, CRON_CATCHUP_ONE, CRON_CATCHUP_ALL };

static const char *const cron_overlaps[] = { "skip", "allow",
	"cancel_previous" };
static const char *const cron_catchups[] = { "none", "one", "all" };

typedef struct cron_sched {
	char             *name, *definition, *expr, *zone; // owned
	json_t           *input, *params; // owned objects
	weft_cron         cron;
	weft_tz           tz;
	enum cron_overlap overlap;
	enum cron_catchup catchup;
	bool              paused;
	int64_t           created_ms;
	int64_t           last_fire_ms; // the last fire time decided (fired
	                                // or skipped), wall ms
	int64_t           next_ms;      // the next fire time, 0 none (never,
	                                // or paused)
	char              last_run[WEFT_ID_LEN + 1]; // "" none
} cron_sched;

// ---- the test clock ----

static int64_t
cron_wall(void *arg)
{
	weft_engine *e = arg;
	return (weft_clock_wall_ms() + atomic_load(&e->clock_offset));
}

static int64_t
cron_mono(void *arg)
{
	weft_engine *e = arg;
	return (weft_clock_mono_ms() + atomic_load(&e->clock_offset));
}

void
cron_clock_install(weft_engine *e)
{
	if (!e->cfg.test_clock || e->cfg.clock != NULL) {
		return;
	}
	atomic_store(&e->clock_offset, e->cfg.test_clock_ms);
	e->clock = (weft_engine_clock) { e, cron_wall, cron_mono };
	weft_log_warn("TEST-CLOCK", "the engine clock is offset by %" PRId64
	    " ms and may be moved (--test-clock): tests only",
	    e->cfg.test_clock_ms);
}

void
cron_clock_request(weft_engine *e, engine_mail *m)
{
	int64_t ms = m->env->control->clock->advance_ms;

	if (!e->cfg.test_clock) {
		engine_reply_now(e, m->to, WEFT_EINVAL,
		    "clock: the coordinator was not started with --test-clock",
		    NULL);
		return;
	}
	if (ms < 0 || ms > (int64_t) 10 * 366 * 86400000) {
		engine_reply_now(e, m->to, WEFT_EINVAL,
		    "clock: advance_ms must be 0 to 10 years", NULL);
		return;
	}
	// Timers keep their monotonic due times: moving both clocks makes
	// every timer due within ms fire at the next turn, as if it passed.
	atomic_fetch_add(&e->clock_offset, ms);
	engine_reply_now(e, m->to, 0, NULL,
	    json_pack("{s:I, s:I}", "offset_ms",
	        (json_int_t) atomic_load(&e->clock_offset), "now_ms",
	        (json_int_t) e->clock.wall_ms(e->clock.arg)));
}

// ---- schedules ----

static void
cron_sched_free(cron_sched *s)
{
	if (s == NULL) {
		return;
	}
	free(s->name);
	free(s->definition);
	free(s->expr);
	free(s->zone);
	json_decref(s->input);
	json_decref(s->params);
	weft_tz_fini(&s->tz);
	free(s);
}

void
cron_fini(weft_engine *e)
{
	const char *k;
	void       *v;

	for (size_t i = 0; weft_map_each(&e->schedules, &i, &k, &v);) {
		cron_sched_free(v);
	}
	weft_map_fini(&e->schedules);
}

// cron_zone loads zone name (borrowed) from the tz database: $TZDIR or
// /usr/share/zoneinfo. "UTC" and "" need no file.
static weft_err
cron_zone(weft_tz *tz, const char *name, char *err, size_t errlen)
{
	const char *dir = getenv("TZDIR");
	char        path[512], why[128];
	uint8_t    *buf;
	size_t      n;
	FILE       *f;
	weft_err    rv;

	if (name[0] == '\0' || strcmp(name, "UTC") == 0) {
		weft_tz_utc(tz);
		return (WEFT_OK);
	}
	if (!weft_tz_name_ok(name)) {
		snprintf(err, errlen,
		    "schedule: bad time zone \"%.64s\" (a tz database name such "
		    "as Europe/Berlin or America/New_York)",
		    name);
		return (WEFT_EINVAL);
	}
	snprintf(path, sizeof(path), "%s/%s",
	    dir != NULL && dir[0] != '\0' ? dir : "/usr/share/zoneinfo", name);
	if ((f = fopen(path, "rb")) == NULL) {
		snprintf(err, errlen,
		    "schedule: unknown time zone \"%s\" (not in the tz database "
		    "at %s)",
		    name, path);
		return (WEFT_EINVAL);
	}
	buf = weft_xalloc(CRON_TZ_MAX);
	n   = fread(buf, 1, CRON_TZ_MAX, f);
	fclose(f);
	if ((rv = weft_tz_parse(tz, buf, n, why, sizeof(why))) != WEFT_OK) {
		snprintf(err, errlen, "schedule: time zone \"%s\": %s", name, why);
	}
	free(buf);
	return (rv);
}

static bool
cron_word(const char *text, const char *const *words, int n, int *out)
{
	for (int i = 0; i < n; i++) {
		if (strcmp(text, words[i]) == 0) {
			*out = i;
			return (true);
		}
	}
	return (false);
}

// cron_next sets s->next_ms from its last decided fire time.
static void
cron_next(cron_sched *s)
{
	if (s->paused ||
	    !weft_cron_next(&s->cron, &s->tz, s->last_fire_ms, &s->next_ms)) {
		s->next_ms = 0;
	}
}

static json_t *
cron_json(const cron_sched *s)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:O, s:O, s:s, s:s, s:b, "
	                      "s:I}",
	    "name", s->name, "definition", s->definition, "cron", s->expr,
	    "timezone", s->zone, "input", s->input, "params", s->params,
	    "overlap", cron_overlaps[s->overlap], "catchup",
	    cron_catchups[s->catchup], "paused", s->paused, "created_ms",
	    (json_int_t) s->created_ms);
	json_object_set_new(o, "last_fire_ms",
	    s->last_fire_ms > s->created_ms
	        ? json_integer((json_int_t) s->last_fire_ms)
	        : json_null());
	json_object_set_new(o, "last_run_id",
	    s->last_run[0] ? json_string(s->last_run) : json_null());
	json_object_set_new(o, "next_fire_ms",
	    s->next_ms > 0 ? json_integer((json_int_t) s->next_ms)
	                   : json_null());
	return (o);
}

// cron_build makes a schedule from its stored or requested fields (all
// borrowed), or writes why not into err.
static cron_sched *
cron_build(const char *name, const char *definition, const char *expr,
    const char *zone, const char *overlap, const char *catchup, char *err,
    size_t errlen, weft_err *rv)
{
	cron_sched *s = weft_xalloc(sizeof(*s));
	int         ov = CRON_SKIP, cu = CRON_CATCHUP_ONE;

	*rv = WEFT_EINVAL;
	if (!weft_hold_name_ok(name)) {
		snprintf(err, errlen,
		    "schedule: bad name \"%.64s\" (1-128 of A-Z a-z 0-9 _ . -)",
		    name);
		goto fail;
	}
	if (overlap[0] != '\0' && !cron_word(overlap, cron_overlaps, 3, &ov)) {
		snprintf(err, errlen,
		    "schedule: bad overlap \"%.32s\" (skip, allow or "
		    "cancel_previous)",
		    overlap);
		goto fail;
	}
	if (catchup[0] != '\0' && !cron_word(catchup, cron_catchups, 3, &cu)) {
		snprintf(err, errlen,
		    "schedule: bad catchup \"%.32s\" (none, one or all)", catchup);
		goto fail;
	}
	if (weft_cron_parse(&s->cron, expr, err, errlen) != WEFT_OK ||
	    cron_zone(&s->tz, zone, err, errlen) != WEFT_OK) {
		goto fail;
	}
	s->name       = weft_xstrdup(name);
	s->definition = weft_xstrdup(definition);
	s->expr       = weft_xstrdup(expr);
	s->zone       = weft_xstrdup(zone[0] ? zone : "UTC");
	s->overlap    = (enum cron_overlap) ov;
	s->catchup    = (enum cron_catchup) cu;
	*rv           = WEFT_OK;
	return (s);
fail:
	cron_sched_free(s);
	return (NULL);
}

// cron_skip records that fire time at passed without a run (why).
static void
cron_skip(weft_engine *e, cron_sched *s, int64_t at, const char *why,
    int64_t missed)
{
	json_t *d = json_pack("{s:s, s:I, s:s}", "name", s->name, "fire_ms",
	    (json_int_t) at, "reason", why);
	if (missed > 1) {
		json_object_set_new(d, "missed", json_integer((json_int_t) missed));
	}
	weft_out_event_add(&e->out, WEFT_EV_SCHEDULE_SKIPPED, NULL, -1, 0,
	    e->node, d);
	weft_log_notice("SCHEDULE-SKIP", "schedule=%s fire_ms=%" PRId64 " %s",
	    s->name, at, why);
	s->last_fire_ms = at;
}

// cron_fire starts a run of s for fire time at (0: a manual trigger,
// which leaves the cadence alone), as its overlap allows. The run's id
// goes into id ("" when none was started); err says why not.
static weft_err
cron_fire(weft_engine *e, cron_sched *s, int64_t at, int64_t now,
    char id[WEFT_ID_LEN + 1], char *err, size_t errlen)
{
	weft_run          *prev = s->last_run[0] ? engine_run(e, s->last_run)
	                                         : NULL;
	Weft__RunRequest   rq   = WEFT__RUN_REQUEST__INIT;
	char              *in, *pa;
	int                code;
	bool               existed;
	json_t            *d;

	id[0] = '\0';
	if (prev != NULL && weft_run_terminal(prev->state)) {
		prev = NULL; // ended, not let go yet
	}
	if (prev != NULL && s->overlap == CRON_SKIP) {
		snprintf(err, errlen,
		    "the previous run %s is still %s (overlap skip)", prev->id,
		    weft_run_state_name(prev->state));
		if (at > 0) {
			cron_skip(e, s, at, err, 1);
		}
		return (WEFT_ESTATE);
	}
	if (prev != NULL && s->overlap == CRON_CANCEL_PREVIOUS) {
		char why[256];
		snprintf(why, sizeof(why),
		    "cancelled by schedule %s: a new fire (overlap "
		    "cancel_previous)",
		    s->name);
		if (weft_run_cancel(prev, why, &e->out) == WEFT_OK) {
			subwf_lifecycle(e, prev, true);
		}
	}
	in             = json_dumps(s->input, JSON_COMPACT);
	pa             = json_dumps(s->params, JSON_COMPACT);
	rq.definition  = s->definition;
	rq.input_json  = in;
	rq.params_json = pa;
	// No idempotency key: each fire is its own run.
	code = control_run_one(e, &rq, now, true, id, &existed, err, errlen);
	free(in);
	free(pa);
	if (code != 0) {
		id[0] = '\0';
		if (at > 0) {
			char why[1100];
			snprintf(why, sizeof(why), "no run: %s", err);
			cron_skip(e, s, at, why, 1);
		}
		return ((weft_err) code);
	}
	d = json_pack("{s:s, s:s}", "schedule", s->name, "run_id", id);
	if (at > 0) {
		json_object_set_new(d, "fire_ms", json_integer((json_int_t) at));
		s->last_fire_ms = at;
	} else {
		json_object_set_new(d, "trigger", json_true());
	}
	weft_out_event_add(&e->out, WEFT_EV_SCHEDULE_FIRED, NULL, -1, 0,
	    e->node, d);
	snprintf(s->last_run, sizeof(s->last_run), "%s", id);
	weft_log_info("SCHEDULE-FIRE", "schedule=%s run=%s fire_ms=%" PRId64,
	    s->name, id, at);
	return (WEFT_OK);
}

// cron_catch decides the fire times of s in (last_fire_ms, now]: one is
// fired; several (the coordinator was down, or its clock jumped) go by
// the policy: none skips them all, one fires the latest, all fires them
// in order up to CRON_CATCHUP_MAX and skips the rest. Live turns use
// `one`; recovery uses the schedule's own catchup.
static void
cron_catch(weft_engine *e, cron_sched *s, int64_t now, enum cron_catchup how)
{
	char    id[WEFT_ID_LEN + 1], err[1024];
	int64_t t = s->last_fire_ms, latest = 0, n = 0;

	if (s->paused) {
		return;
	}
	// Count what was missed (bounded: a minutely schedule down for a
	// year is 525,600 fire times; counting stops at a million).
	while (n < 1000000 && weft_cron_next(&s->cron, &s->tz, t, &t) &&
	    t <= now) {
		latest = t;
		n++;
		if (how == CRON_CATCHUP_ALL && n <= CRON_CATCHUP_MAX) {
			cron_fire(e, s, t, now, id, err, sizeof(err));
		}
	}
	if (n == 0) {
		cron_next(s);
		return;
	}
	if (how == CRON_CATCHUP_NONE) {
		cron_skip(e, s, latest,
		    "missed while the coordinator was down (catchup none)", n);
	} else if (how == CRON_CATCHUP_ONE) {
		if (n > 1) {
			weft_log_notice("SCHEDULE-CATCHUP",
			    "schedule=%s missed=%" PRId64 ": firing the latest",
			    s->name, n);
		}
		cron_fire(e, s, latest, now, id, err, sizeof(err));
	} else if (n > CRON_CATCHUP_MAX) {
		char why[128];
		snprintf(why, sizeof(why),
		    "missed while the coordinator was down: beyond the %d "
		    "fires catchup all makes up",
		    CRON_CATCHUP_MAX);
		cron_skip(e, s, latest, why, n - CRON_CATCHUP_MAX);
	}
	s->last_fire_ms = latest > s->last_fire_ms ? latest : s->last_fire_ms;
	cron_next(s);
}

void
cron_turn(weft_engine *e, int64_t now)
{
	const char *k;
	void       *v;

	for (size_t i = 0; weft_map_each(&e->schedules, &i, &k, &v);) {
		cron_sched *s = v;
		if (s->next_ms > 0 && s->next_ms <= now) {
			cron_catch(e, s, now, CRON_CATCHUP_ONE);
		}
	}
}

void
cron_recover(weft_engine *e, int64_t now)
{
	json_t  *rows, *row;
	size_t   k;
	char     err[1024];
	weft_err rv;

	if (weft_store_list_schedules(engine_quiesce(e), &rows) != WEFT_OK) {
		weft_log_err("SCHEDULE-LOAD", "%s", e->store->error);
		return;
	}
	json_array_foreach (rows, k, row) {
		const char *name = json_string_value(json_object_get(row, "name"));
		const char *lr = json_string_value(json_object_get(row, "last_run_id"));
		cron_sched *s = cron_build(name,
		    json_string_value(json_object_get(row, "definition")),
		    json_string_value(json_object_get(row, "cron")),
		    json_string_value(json_object_get(row, "timezone")),
		    json_string_value(json_object_get(row, "overlap")),
		    json_string_value(json_object_get(row, "catchup")), err,
		    sizeof(err), &rv);
		if (s == NULL) {
			// A zone file gone from the system: the schedule stays
			// stored, and is back once the zone is.
			weft_log_err("SCHEDULE-LOAD", "schedule=%s: %s", name, err);
			continue;
		}
		s->input  = json_incref(json_object_get(row, "input"));
		s->params = json_incref(json_object_get(row, "params"));
		s->input  = s->input ? s->input : json_object();
		s->params = s->params ? s->params : json_object();
		s->paused = json_is_true(json_object_get(row, "paused"));
		s->created_ms =
		    json_integer_value(json_object_get(row, "created_ms"));
		s->last_fire_ms =
		    json_integer_value(json_object_get(row, "last_fire_ms"));
		if (s->last_fire_ms < s->created_ms) {
			s->last_fire_ms = s->created_ms;
		}
		snprintf(s->last_run, sizeof(s->last_run), "%s", lr ? lr : "");
		weft_map_put(&e->schedules, s->name, s);
		cron_catch(e, s, now, s->catchup);
	}
	if (json_array_size(rows) > 0) {
		weft_log_notice("SCHEDULE-LOAD", "schedules=%zu",
		    json_array_size(rows));
	}
	json_decref(rows);
}

// cron_json_arg parses text (borrowed; "" = {}) as a JSON object.
static json_t *
cron_json_arg(const char *text, const char *what, char *err, size_t errlen)
{
	json_error_t je;
	json_t      *v;

	if (text == NULL || text[0] == '\0') {
		return (json_object());
	}
	if ((v = json_loads(text, 0, &je)) == NULL || !json_is_object(v)) {
		snprintf(err, errlen, "schedule: %s is not a JSON object%s%s",
		    what, v == NULL ? ": " : "", v == NULL ? je.text : "");
		json_decref(v);
		return (NULL);
	}
	return (v);
}

static void
cron_create(weft_engine *e, engine_mail *m, const Weft__ScheduleRequest *q,
    int64_t now)
{
	char        err[1024] = "";
	weft_err    rv;
	cron_sched *s;
	def_entry  *d;
	json_t     *bound = NULL;

	if (weft_map_get(&e->schedules, q->name) != NULL) {
		snprintf(err, sizeof(err), "schedule: \"%.128s\" already exists "
		    "(delete it first)", q->name);
		engine_reply_now(e, m->to, WEFT_EEXIST, err, NULL);
		return;
	}
	if (q->definition[0] == '\0') {
		engine_reply_now(e, m->to, WEFT_EINVAL,
		    "schedule: --definition is required", NULL);
		return;
	}
	if ((s = cron_build(q->name, q->definition, q->cron, q->timezone,
	         q->overlap, q->catchup, err, sizeof(err), &rv)) == NULL) {
		engine_reply_now(e, m->to, rv, err, NULL);
		return;
	}
	if ((s->input = cron_json_arg(q->input_json, "input", err,
	         sizeof(err))) == NULL ||
	    (s->params = cron_json_arg(q->params_json, "params", err,
	         sizeof(err))) == NULL) {
		cron_sched_free(s);
		engine_reply_now(e, m->to, WEFT_EINVAL, err, NULL);
		return;
	}
	// The definition and params are checked now, so that a typo is
	// refused here and not at 3 a.m.; each fire checks them again
	// against the latest version.
	if ((d = control_def_lookup(e, q->definition, 0, err, sizeof(err))) ==
	        NULL ||
	    weft_def_bind_params(d->def, s->params, &bound, err, sizeof(err)) !=
	        WEFT_OK) {
		cron_sched_free(s);
		engine_reply_now(e, m->to, d == NULL ? WEFT_EDEF : WEFT_EINVAL,
		    err, NULL);
		return;
	}
	json_decref(bound);
	s->created_ms   = now;
	s->last_fire_ms = now;
	cron_next(s);
	if (s->next_ms == 0) {
		snprintf(err, sizeof(err),
		    "cron: \"%s\" never fires (no such date within 8 years)",
		    s->expr);
		cron_sched_free(s);
		engine_reply_now(e, m->to, WEFT_EINVAL, err, NULL);
		return;
	}
	weft_map_put(&e->schedules, s->name, s);
	weft_out_event_add(&e->out, WEFT_EV_SCHEDULE_CREATED, NULL, -1, 0,
	    e->node,
	    json_pack("{s:s, s:s, s:s, s:s, s:O, s:O, s:s, s:s}", "name",
	        s->name, "definition", s->definition, "cron", s->expr,
	        "timezone", s->zone, "input", s->input, "params", s->params,
	        "overlap", cron_overlaps[s->overlap], "catchup",
	        cron_catchups[s->catchup]));
	weft_log_info("SCHEDULE-CREATE", "schedule=%s cron=\"%s\" tz=%s",
	    s->name, s->expr, s->zone);
	engine_reply_now(e, m->to, 0, NULL, cron_json(s));
}

void
cron_request(weft_engine *e, engine_mail *m, int64_t now)
{
	const Weft__ScheduleRequest *q = m->env->control->schedule;
	cron_sched                  *s;
	char                         err[1200];

	if (strcmp(q->action, "list") == 0) {
		json_t     *arr = json_array();
		const char *k;
		void       *v;
		for (size_t i = 0; weft_map_each(&e->schedules, &i, &k, &v);) {
			json_array_append_new(arr, cron_json(v));
		}
		engine_reply_now(e, m->to, 0, NULL,
		    json_pack("{s:o}", "schedules", arr));
		return;
	}
	if (strcmp(q->action, "create") == 0) {
		cron_create(e, m, q, now);
		return;
	}
	if (strcmp(q->action, "get") != 0 && strcmp(q->action, "pause") != 0 &&
	    strcmp(q->action, "resume") != 0 &&
	    strcmp(q->action, "delete") != 0 &&
	    strcmp(q->action, "trigger") != 0) {
		engine_reply_now(e, m->to, WEFT_EINVAL,
		    "schedule: unknown action (use create, list, get, pause, "
		    "resume, delete or trigger)",
		    NULL);
		return;
	}
	if ((s = weft_map_get(&e->schedules, q->name)) == NULL) {
		snprintf(err, sizeof(err), "schedule: no schedule \"%.128s\"",
		    q->name);
		engine_reply_now(e, m->to, WEFT_ENOENT, err, NULL);
		return;
	}
	if (strcmp(q->action, "trigger") == 0) {
		char     id[WEFT_ID_LEN + 1];
		weft_err rv = cron_fire(e, s, 0, now, id, err, sizeof(err));
		if (rv != WEFT_OK) {
			char msg[1300];
			snprintf(msg, sizeof(msg), "schedule %s: %s", s->name, err);
			engine_reply_now(e, m->to, rv, msg, NULL);
			return;
		}
		engine_reply_now(e, m->to, 0, NULL,
		    json_pack("{s:s, s:s}", "schedule", s->name, "run_id", id));
		return;
	}
	if (strcmp(q->action, "delete") == 0) {
		weft_out_event_add(&e->out, WEFT_EV_SCHEDULE_DELETED, NULL, -1, 0,
		    e->node, json_pack("{s:s}", "name", s->name));
		weft_map_del(&e->schedules, s->name);
		engine_reply_now(e, m->to, 0, NULL,
		    json_pack("{s:s, s:b}", "name", q->name, "deleted", 1));
		cron_sched_free(s);
		return;
	}
	if (strcmp(q->action, "pause") == 0 && !s->paused) {
		s->paused = true;
		weft_out_event_add(&e->out, WEFT_EV_SCHEDULE_PAUSED, NULL, -1, 0,
		    e->node, json_pack("{s:s}", "name", s->name));
	} else if (strcmp(q->action, "resume") == 0 && s->paused) {
		// Counting starts again from now: the fires of the paused
		// time are not made up, now or after a restart.
		s->paused       = false;
		s->last_fire_ms = now;
		weft_out_event_add(&e->out, WEFT_EV_SCHEDULE_RESUMED, NULL, -1, 0,
		    e->node,
		    json_pack("{s:s, s:I}", "name", s->name, "fire_ms",
		        (json_int_t) now));
	}
	cron_next(s);
	engine_reply_now(e, m->to, 0, NULL, cron_json(s));
}
