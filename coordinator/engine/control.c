// control: control requests. Commands that change state (define, run,
// lifecycle) run on the engine thread; queries (status, runs, events) run on
// the query thread with its own store connection, so a large query never
// stalls the engine.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "alloc.h"
#include "clock.h"
#include "depends.h"
#include "engine_int.h"
#include "expand.h"
#include "id.h"
#include "jsonx.h"
#include "log.h"
#include "seal.h"
#include "secret.h"
#include "tags.h"
#include "waiting.h"

// ---- definitions ----

// control_def_hash sets hex to the content hash of definition document
// doc: BLAKE2b-256 of its canonical JSON (keys sorted, compact) without
// "version", so that the same body sent again, inline or registered,
// respaced or reordered, finds the entry it already has. doc is
// borrowed; its "version" is taken out for the dump and put back.
static void
control_def_hash(json_t *doc, char hex[2 * 32 + 1])
{
	json_t       *ver = json_incref(json_object_get(doc, "version"));
	char         *text;
	unsigned char h[32];

	json_object_del(doc, "version");
	text = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
	if (ver != NULL) {
		json_object_set_new(doc, "version", ver);
	}
	crypto_generichash(h, sizeof(h), (const unsigned char *) text,
	    text != NULL ? strlen(text) : 0, NULL, 0);
	free(text);
	sodium_bin2hex(hex, 2 * 32 + 1, h, sizeof(h));
}

static void
control_def_idle_del(weft_engine *e, def_entry *d)
{
	*(d->prev != NULL ? &d->prev->next : &e->idle_head) = d->next;
	*(d->next != NULL ? &d->next->prev : &e->idle_tail) = d->prev;
	d->prev = d->next = NULL;
}

static void
control_def_idle_add(weft_engine *e, def_entry *d)
{
	d->prev = e->idle_tail;
	d->next = NULL;
	*(e->idle_tail != NULL ? &e->idle_tail->next : &e->idle_head) = d;
	e->idle_tail = d;
}

// control_def_touch marks d used now: an idle entry moves to the end of
// the idle list, the last to be evicted.
static def_entry *
control_def_touch(weft_engine *e, def_entry *d)
{
	if (d != NULL && d->refs == 0) {
		control_def_idle_del(e, d);
		control_def_idle_add(e, d);
	}
	return (d);
}

// control_def_add caches def. is_latest says it is the highest version the
// store has: only then does it answer lookups by name alone (a version
// loaded by number may be an old one). hash is its content hash when the
// caller has it (borrowed), else NULL. A new entry is idle (no run uses
// it yet) and the most recently used.
static def_entry *
control_def_add(weft_engine *e, weft_def *def, bool is_latest,
    const char *hash)
{
	def_entry *d = weft_xalloc(sizeof(*d));

	d->def = def;
	retain_note_def(e, def);
	snprintf(d->key, sizeof(d->key), "%s@%" PRId64, def->name,
	    def->version);
	if (hash != NULL) {
		snprintf(d->hash, sizeof(d->hash), "%s", hash);
	} else {
		control_def_hash(def->json, d->hash);
	}
	weft_map_put(&e->defs, d->key, d);
	weft_map_put(&e->def_hashes, d->hash, d);
	if (is_latest) {
		weft_map_put(&e->latest, def->name, d);
	}
	control_def_idle_add(e, d);
	atomic_store(&e->metrics.defs_cached, e->defs.count);
	return (d);
}

static def_entry *
control_def_entry(weft_engine *e, const weft_def *def)
{
	char       key[256];
	def_entry *d;

	snprintf(key, sizeof(key), "%s@%" PRId64, def->name, def->version);
	d = weft_map_get(&e->defs, key);
	WEFT_ASSERT(d != NULL && d->def == def);
	return (d);
}

void
control_def_hold(weft_engine *e, const weft_def *def)
{
	def_entry *d = control_def_entry(e, def);

	if (d->refs++ == 0) {
		control_def_idle_del(e, d);
	}
}

void
control_def_rele(weft_engine *e, const weft_def *def)
{
	def_entry *d = control_def_entry(e, def);

	WEFT_ASSERT(d->refs > 0);
	if (--d->refs == 0) {
		control_def_idle_add(e, d);
	}
}

// control_def_evict drops idle entry d from every index and frees it.
// The store keeps the body (inline definitions are registered like any
// other, under their name and a version), so a later run, retry or
// recovery parses it again.
static void
control_def_evict(weft_engine *e, def_entry *d)
{
	control_def_idle_del(e, d);
	weft_map_del(&e->defs, d->key);
	if (weft_map_get(&e->latest, d->def->name) == d) {
		weft_map_del(&e->latest, d->def->name);
	}
	if (weft_map_get(&e->def_hashes, d->hash) == d) {
		weft_map_del(&e->def_hashes, d->hash);
	}
	weft_def_free(d->def);
	free(d);
}

void
control_def_trim(weft_engine *e)
{
	size_t most = (size_t) (e->cfg.def_cache > 0 ? e->cfg.def_cache
	                                             : WEFT_DEF_CACHE_DEFAULT);

	while (e->defs.count > most && e->idle_head != NULL) {
		control_def_evict(e, e->idle_head);
	}
	atomic_store(&e->metrics.defs_cached, e->defs.count);
}

void
control_def_fini(weft_engine *e)
{
	const char *k;
	void       *v;

	for (size_t i = 0; weft_map_each(&e->defs, &i, &k, &v);) {
		def_entry *d = v;
		weft_def_free(d->def);
		free(d);
	}
	weft_map_fini(&e->defs);
	weft_map_fini(&e->latest);
	weft_map_fini(&e->def_hashes);
	e->idle_head = e->idle_tail = NULL;
}

static def_entry *
control_def_parse(weft_engine *e, const char *text, bool is_latest, char *err,
    size_t errlen)
{
	weft_def *def;

	if (weft_def_parse(&def, text, strlen(text), err, errlen) != WEFT_OK) {
		return (NULL);
	}
	return (control_def_add(e, def, is_latest, NULL));
}

def_entry *
control_def_lookup(weft_engine *e, const char *name, int64_t version,
    char *err, size_t errlen)
{
	char       key[256];
	def_entry *d;
	char      *body = NULL;
	int64_t    found;

	if (version > 0) {
		snprintf(key, sizeof(key), "%s@%" PRId64, name, version);
		d = weft_map_get(&e->defs, key);
	} else {
		d = weft_map_get(&e->latest, name);
	}
	if (d != NULL) {
		return (control_def_touch(e, d));
	}
	if (weft_store_get_definition(engine_quiesce(e), name, version, &body, &found) !=
	    WEFT_OK) {
		snprintf(err, errlen, "no definition named \"%s\"%s", name,
		    version > 0 ? " at that version" : "");
		return (NULL);
	}
	snprintf(key, sizeof(key), "%s@%" PRId64, name, found);
	if ((d = weft_map_get(&e->defs, key)) != NULL) {
		// That version was cached by number: it is the latest too.
		weft_map_put(&e->latest, name, d);
		control_def_touch(e, d);
	} else {
		d = control_def_parse(e, body, version == 0, err, errlen);
	}
	free(body);
	return (d);
}

// def_same compares two definition documents, ignoring "version".
static bool
control_def_same(json_t *a, json_t *b)
{
	json_t *x = json_deep_copy(a), *y = json_deep_copy(b);
	bool    same;

	json_object_del(x, "version");
	json_object_del(y, "version");
	same = json_equal(x, y);
	json_decref(x);
	json_decref(y);
	return (same);
}

// control_def_heartbeats refuses a heartbeat_timeout_ms shorter than two
// survey intervals: heartbeats travel in survey answers, so a shorter one
// could not be told apart from the survey's own rhythm.
static bool
control_def_heartbeats(
    weft_engine *e, const weft_def *def, char *err, size_t errlen)
{
	int64_t least = 2 * (int64_t) e->cfg.survey_ms;

	for (size_t i = 0; i < def->nsteps; i++) {
		uint32_t hb = def->steps[i].heartbeat_timeout_ms;
		if (hb != 0 && (int64_t) hb < least) {
			snprintf(err, errlen,
			    "steps[%zu] (id \"%s\"): field \"heartbeat_timeout_ms\": "
			    "must be at least %lld (two survey intervals of this "
			    "coordinator, --survey-ms %d), got %u",
			    i, def->steps[i].id, (long long) least,
			    e->cfg.survey_ms, hb);
			return (false);
		}
	}
	return (true);
}

// control_define registers a definition. Without an explicit "version" a
// changed body gets the next version and an unchanged one is reused; with
// one, an existing version must have the same body.
static def_entry *
control_define(weft_engine *e, const char *text, char *err, size_t errlen)
{
	weft_def  *def;
	def_entry *old;
	json_t    *raw = json_loads(text, JSON_DECODE_ANY, NULL);
	json_t    *ver = json_object_get(raw, "version");
	bool       explicit_version = ver != NULL;
	char       hash[2 * 32 + 1];
	bool       have_hash = json_is_object(raw);

	// The same body again (a client sending its definition inline with
	// every run): the entry that has it answers, without parsing, when
	// it is what the full path below would pick too — the latest
	// version of its name, or the very version asked for.
	if (have_hash) {
		control_def_hash(raw, hash);
		old = weft_map_get(&e->def_hashes, hash);
		if (old != NULL &&
		    (explicit_version
		            ? json_is_integer(ver) &&
		                json_integer_value(ver) == old->def->version
		            : weft_map_get(&e->latest, old->def->name) == old)) {
			json_decref(raw);
			return (control_def_touch(e, old));
		}
	}
	json_decref(raw);
	if (weft_def_parse(&def, text, strlen(text), err, errlen) != WEFT_OK) {
		return (NULL);
	}
	if (!control_def_heartbeats(e, def, err, errlen) ||
	    !subwf_check_def(e, def, err, errlen)) {
		weft_def_free(def);
		return (NULL);
	}
	old = control_def_lookup(e, def->name,
	    explicit_version ? def->version : 0, err, errlen);
	if (old != NULL && control_def_same(old->def->json, def->json)) {
		weft_def_free(def);
		return (old);
	}
	if (old != NULL && explicit_version) {
		snprintf(err, errlen,
		    "definition \"%s\" version %" PRId64 " already exists with "
		    "a different body: raise \"version\" or leave it out",
		    def->name, def->version);
		weft_def_free(def);
		return (NULL);
	}
	if (old != NULL) {
		def->version = old->def->version + 1;
		json_object_set_new(def->json, "version", json_integer(def->version));
	}
	// Latest: the store's highest version, as cached (or loaded) now.
	if (explicit_version) {
		char e2[64];
		old = control_def_lookup(e, def->name, 0, e2, sizeof(e2));
	}
	weft_out_event_add(&e->out, WEFT_EV_DEFINITION_REGISTERED, NULL, -1, 0,
	    e->node,
	    json_pack("{s:s, s:I, s:O}", "name", def->name, "version",
	        (json_int_t) def->version, "definition", def->json));
	return (control_def_add(e, def,
	    old == NULL || old->def->version < def->version,
	    have_hash ? hash : NULL));
}

static json_t *
control_def_summary(const def_entry *d)
{
	return (json_pack("{s:s, s:I, s:I}", "name", d->def->name, "version",
	    (json_int_t) d->def->version, "steps", (json_int_t) d->def->nsteps));
}

// ---- runs ----

static json_t *
control_object_arg(const char *text, const char *what, char *err, size_t errlen)
{
	json_error_t je;
	json_t      *v;

	if (text == NULL || text[0] == '\0') {
		return (json_object());
	}
	if ((v = json_loads(text, JSON_DECODE_ANY, &je)) == NULL) {
		snprintf(err, errlen, "%s is not valid JSON: %s (line %d, column %d)",
		    what, je.text, je.line, je.column);
	}
	return (v);
}

// control_run_extras checks what issue 14 added to a run request: its
// idempotency key (looked up: *existed and id when a run has it), its
// version (only with a name) and its tags (*tags, a new object, or NULL).
// Returns 0 or the weft_err code with the reason in err.
static int
control_run_extras(weft_engine *e, const Weft__RunRequest *rq, int64_t now,
    bool *existed, char id[WEFT_ID_LEN + 1], json_t **tags, char *err,
    size_t errlen)
{
	const char *key = rq->idempotency_key;
	weft_err    rv;

	*tags = NULL;
	if (key != NULL && strlen(key) > WEFT_IDEMPOTENCY_KEY_MAX) {
		snprintf(err, errlen,
		    "run: idempotency_key: %zu bytes, over the limit of %d",
		    strlen(key), WEFT_IDEMPOTENCY_KEY_MAX);
		return (WEFT_EINVAL);
	}
	if (rq->version > 0 && rq->definition_json[0] != '\0') {
		snprintf(err, errlen, "run: version: only with a registered "
		                      "definition's name, not with an inline "
		                      "definition");
		return (WEFT_EINVAL);
	}
	if (rq->tags_json != NULL && rq->tags_json[0] != '\0') {
		*tags = json_loads(rq->tags_json, JSON_DECODE_ANY, NULL);
		if (!weft_tags_check(*tags, err, errlen)) {
			json_decref(*tags);
			*tags = NULL;
			return (WEFT_EINVAL);
		}
	}
	if (key != NULL && key[0] != '\0') {
		if ((rv = idem_find(e, key, now, id)) == WEFT_OK) {
			*existed = true;
		} else if (rv != WEFT_ENOENT) {
			snprintf(err, errlen, "run: idempotency_key: the store "
			    "did not answer: %s", e->store->error);
			json_decref(*tags);
			*tags = NULL;
			return (rv);
		}
	}
	return (0);
}

// control_run_label puts the tags (taken) and idempotency key of run r,
// just made, into its run_queued event: the store keeps them with the
// run (migration 0008).
static void
control_run_label(weft_engine *e, weft_run *r, json_t *tags, const char *key)
{
	weft_out_event *q = &e->out.events[e->out.nevents - 1];

	WEFT_ASSERT(q->type == WEFT_EV_RUN_QUEUED && q->run == r);
	if (tags != NULL && json_object_size(tags) > 0) {
		json_object_set(q->data, "tags", tags);
	}
	json_decref(tags);
	if (key != NULL && key[0] != '\0') {
		json_object_set_new(q->data, "idempotency_key", json_string(key));
	}
}

// control_run_sched sets the scheduling of new run r (its run_queued event
// the last of e->out): its priority, the request's (rq borrowed) or else
// its definition's, and its concurrency key (taken), both recorded in
// run_queued so that recovery and status read them back.
static void
control_run_sched(weft_engine *e, weft_run *r, const Weft__RunRequest *rq,
    char *key)
{
	weft_out_event *q = &e->out.events[e->out.nevents - 1];

	WEFT_ASSERT(q->type == WEFT_EV_RUN_QUEUED && q->run == r);
	r->priority  = rq->priority != 0 ? rq->priority : r->def->priority;
	r->limit_key = key;
	if (q->data == NULL) {
		q->data = json_object();
	}
	if (r->priority != 0) {
		json_object_set_new(q->data, "priority", json_integer(r->priority));
	}
	if (key != NULL) {
		json_object_set_new(q->data, "concurrency_key", json_string(key));
	}
}

// control_run_one creates the run rq (borrowed) asks for: its definition
// looked up by name or registered inline, its input and params checked
// and bound. On success writes the new run's id into id and returns 0;
// otherwise returns the weft_err code, with the reason in err, and nothing
// is created (an inline definition may have been registered). One
// function for a RunRequest and for each item of a RunBatchRequest, so
// the two cannot accept different things. A batch logs once for all its
// runs (quiet), a single run logs RUN-START.
int
control_run_one(weft_engine *e, const Weft__RunRequest *rq, int64_t now,
    bool quiet, char id[WEFT_ID_LEN + 1], bool *existed, char *err,
    size_t errlen)
{
	def_entry *d;
	json_t    *input = NULL, *given = NULL, *params = NULL, *tags;
	weft_run  *r;
	size_t     inlen = strlen(rq->input_json) + strlen(rq->params_json);
	int        code;

	*existed = false;
	if ((code = control_run_extras(e, rq, now, existed, id, &tags, err,
	         errlen)) != 0 ||
	    *existed) {
		// The same key within the window: the run it made answers,
		// whatever this request asks for.
		json_decref(tags);
		return (code);
	}

	if (inlen > WEFT_RUN_INPUT_MAX) {
		// Checked before anything is parsed or registered: the run's
		// input and params travel with its assignments (sched.c).
		snprintf(err, errlen,
		    "run: input and params too large: %zu bytes, over the run "
		    "input limit of %zu bytes (4 MiB)",
		    inlen, WEFT_RUN_INPUT_MAX);
		json_decref(tags);
		return (WEFT_ETOOBIG);
	}
	if (rq->definition_json[0] != '\0') {
		d = control_define(e, rq->definition_json, err, errlen);
	} else if (rq->definition[0] != '\0') {
		d = control_def_lookup(e, rq->definition, rq->version, err,
		    errlen);
		if (d == NULL && rq->version > 0) {
			snprintf(err, errlen,
			    "run: definition \"%s\" has no version %" PRIu32
			    " (weft definitions shows the versions; GET "
			    "/api/v1/definitions/%s)",
			    rq->definition, rq->version, rq->definition);
			json_decref(tags);
			return (WEFT_ENOENT);
		}
	} else {
		snprintf(err, errlen, "run: name a definition or send one");
		d = NULL;
	}
	if (d == NULL ||
	    (input = control_object_arg(rq->input_json, "input", err,
	         errlen)) == NULL ||
	    (given = control_object_arg(rq->params_json, "params", err,
	         errlen)) == NULL ||
	    weft_def_bind_params(d->def, given, &params, err, errlen) !=
	        WEFT_OK) {
		json_decref(input);
		json_decref(given);
		json_decref(tags);
		return (d == NULL ? WEFT_EDEF : WEFT_EINVAL);
	}
	json_decref(given);
	if (!e->cfg.has_secret_key &&
	    weft_secret_present(d->def, input, params)) {
		json_decref(input);
		json_decref(params);
		json_decref(tags);
		snprintf(err, errlen,
		    "run: this run carries secrets and the coordinator has no "
		    "key to store them under (--secret-key-file or the cluster "
		    "cookie)");
		return (WEFT_EINVAL);
	}
	char *key = NULL;
	if (d->def->concurrency_key != NULL &&
	    (key = admit_key(d->def, input, params, err, errlen)) == NULL) {
		json_decref(input);
		json_decref(params);
		json_decref(tags);
		return (WEFT_EINVAL);
	}
	weft_id_new(id);
	r = weft_run_alloc(id, d->def, input, params, now, &e->out);
	control_run_sched(e, r, rq, key);
	control_run_label(e, r, tags, rq->idempotency_key);
	if (rq->idempotency_key != NULL && rq->idempotency_key[0] != '\0') {
		idem_note(e, rq->idempotency_key, id, now);
	}
	engine_run_add(e, r);
	if (rq->start_at_ms > now) {
		// A delayed start (--at, --delay, start_at): a timer starts
		// it (through the limits, sched.c); a time already past
		// starts it now.
		weft_run_schedule(r, rq->start_at_ms, &e->out);
	} else {
		admit_run(e, r, now, true); // started now, or queued by a limit
	}
	if (!quiet) {
		weft_log_info("RUN-START",
		    "run=%s definition=%s version=%" PRId64, id, d->def->name,
		    d->def->version);
	}
	return (0);
}

static void
control_run(weft_engine *e, engine_mail *m, int64_t now)
{
	const Weft__RunRequest *rq = m->env->control->run;
	char                    err[1024] = "";
	char                    id[WEFT_ID_LEN + 1];
	int                     code;
	bool                    existed;

	if ((code = control_run_one(e, rq, now, false, id, &existed, err,
	         sizeof(err))) != 0) {
		engine_reply_now(e, m->to, code, err, NULL);
		return;
	}
	engine_reply_now(e, m->to, 0, NULL,
	    json_pack("{s:s, s:s, s:b}", "run_id", id, "events_url",
	        e->io.events_url, "existed", (int) existed));
}

// control_run_batch answers a RunBatchRequest: every item is created (or
// refused) here, in one engine iteration, so one commit holds all the
// runs and the reply leaves after it. An item's error names its index and
// never stops the others; only an empty or oversize list is refused whole,
// before anything is created.
static void
control_run_batch(weft_engine *e, engine_mail *m, int64_t now)
{
	const Weft__RunBatchRequest *rq = m->env->control->run_batch;
	char                         err[1024];
	char                         id[WEFT_ID_LEN + 1];
	json_t                      *results;
	size_t                       failed = 0;
	int                          code;
	bool                         existed;

	if (rq->n_runs == 0) {
		engine_reply_now(e, m->to, WEFT_EINVAL,
		    "run batch: the list of runs is empty", NULL);
		return;
	}
	if (rq->n_runs > WEFT_WIRE_RUN_BATCH_MAX) {
		snprintf(err, sizeof(err),
		    "run batch: %zu runs, over the limit of %d per batch: send "
		    "them in several batches",
		    rq->n_runs, WEFT_WIRE_RUN_BATCH_MAX);
		engine_reply_now(e, m->to, WEFT_ETOOBIG, err, NULL);
		return;
	}
	results = json_array();
	for (size_t i = 0; i < rq->n_runs; i++) {
		err[0] = '\0';
		code   = control_run_one(e, rq->runs[i], now, true, id,
                    &existed, err, sizeof(err));
		if (code == 0) {
			json_array_append_new(results,
			    existed ? json_pack("{s:s, s:b}", "run_id", id,
			                  "existed", 1)
			            : json_pack("{s:s}", "run_id", id));
			continue;
		}
		failed++;
		json_array_append_new(results,
		    json_pack("{s:I, s:s, s:s}", "index", (json_int_t) i,
		        "error", err, "code", weft_err_name((weft_err) code)));
	}
	// One line per batch, not per run: the runs are in the event log.
	weft_log_info("RUN-BATCH", "runs=%zu started=%zu failed=%zu",
	    rq->n_runs, rq->n_runs - failed, failed);
	engine_reply_now(e, m->to, 0, NULL,
	    json_pack("{s:o, s:s}", "results", results, "events_url",
	        e->io.events_url));
}

// Most tries, and the longest wait between two, to read a run's blobs
// while the store is unavailable during recovery (then the run is left
// for the next start, logged).
#define CONTROL_BLOB_TRIES 8
#define CONTROL_BLOB_WAIT_MS 5000

// control_restore_blobs puts back, in run row jr, every value a blob
// reference stands for (its input, params and step outputs): the store
// keeps large values once (blob.h), the run in memory needs them whole —
// a step must never run on a reference's 200-byte preview. All or
// nothing, before the run is built; an unavailable store is tried again.
static weft_err
control_restore_blobs(weft_engine *e, json_t *jr)
{
	static const char *const keys[] = { "input", "params" };
	weft_err                 rv     = WEFT_OK;
	int                      delay  = 50;

	for (int t = 0; t < CONTROL_BLOB_TRIES; t++) {
		json_t *js;
		size_t  k;
		for (size_t i = 0; rv == WEFT_OK && i < 2; i++) {
			rv = weft_store_blob_resolve(engine_quiesce(e), jr, keys[i]);
		}
		json_array_foreach (json_object_get(jr, "steps"), k, js) {
			if (rv == WEFT_OK) {
				rv = weft_store_blob_resolve(engine_quiesce(e), js, "output");
			}
		}
		if (rv != WEFT_EUNAVAIL || atomic_load(&e->stopping)) {
			break;
		}
		weft_clock_sleep_ms(delay);
		delay = delay * 2 < CONTROL_BLOB_WAIT_MS ? delay * 2
		                                         : CONTROL_BLOB_WAIT_MS;
		rv = WEFT_OK;
	}
	return (rv);
}

// control_restore_unit restores one row of the steps projection (js) into
// r: steps when items is false, map items when it is true.
static void
control_restore_unit(weft_engine *e, weft_run *r, json_t *js, bool items)
{
	const char          *name = json_string_value(json_object_get(js, "step_id"));
	const char          *node = json_string_value(json_object_get(js, "node"));
	enum weft_step_state st   = WEFT_STEP_PENDING;
	weft_ref             u;

	if (name == NULL || !engine_unit(r, name, &u) || (u.item >= 0) != items) {
		return;
	}
	weft_step_state_parse(
	    json_string_value(json_object_get(js, "status")), &st);
	if (!weft_run_restore_step(r, u, st,
	        (uint32_t) json_integer_value(json_object_get(js, "attempt")),
	        node, json_object_get(js, "output"),
	        json_string_value(json_object_get(js, "error")))) {
		return;
	}
	// The unit's node, not the row's: an expanded step's row names the
	// worker of its attempt, which holds nothing of it any more.
	if ((st == WEFT_STEP_DISPATCHED || st == WEFT_STEP_RUNNING) &&
	    weft_run_unit(r, u)->node[0] != '\0') {
		sched_restore_inflight(e, node);
		sched_type_hold(e, r, u.step, node, true);
	}
}

// control_open_secrets puts back the clear input and params of run id
// from its sealed secrets, if it has any, over the masked ones the runs
// row holds (*input and *params: references, replaced). False when they
// exist but cannot be opened (a wrong key, a damaged row, the store out
// of reach): the run keeps "***" and control_restore_run marks it so
// that no step of it runs with "***" in place of a secret. The run is
// not dropped: restarted with the right key, `weft retry` brings it back.
static bool
control_open_secrets(weft_engine *e, const char *id, json_t **input,
    json_t **params)
{
	char    *box = NULL, *text = NULL;
	size_t   len;
	json_t  *doc = NULL;
	weft_err rv;
	const char *why;

	if ((rv = weft_store_get_secrets(engine_quiesce(e), id, &box)) != WEFT_OK) {
		why = "the store did not answer";
	} else if (box == NULL) {
		return (true); // no secrets
	} else if (!e->cfg.has_secret_key) {
		why = "no secret key";
	} else if ((rv = weft_unseal(e->cfg.secret_key, box, &text, &len)) !=
	    WEFT_OK) {
		why = rv == WEFT_EAUTH ? "wrong cookie/secret key, or the "
		                         "stored secrets were altered"
		                       : "the stored secrets are malformed";
	} else if ((doc = json_loadb(text, len, 0, NULL)) == NULL ||
	    !json_is_object(json_object_get(doc, "input")) ||
	    !json_is_object(json_object_get(doc, "params"))) {
		why = "the stored secrets are malformed";
	} else {
		why = NULL;
	}
	if (text != NULL) {
		sodium_memzero(text, len);
		free(text);
	}
	free(box);
	if (why != NULL) {
		json_decref(doc);
		weft_log_err("SECRET-OPEN", "run=%s: secret cannot be "
		    "decrypted: %s; its steps fail instead of running without "
		    "their secrets", id, why);
		return (false);
	}
	json_decref(*input);
	json_decref(*params);
	*input  = json_incref(json_object_get(doc, "input"));
	*params = json_incref(json_object_get(doc, "params"));
	json_decref(doc);
	return (true);
}

// control_restore_exit_codes puts back the exit code of each failed step
// of r from its last step_failed event: the steps projection keeps the
// error but not the code, and a dependent made ready after the restart
// reads both (steps.<id>.exit_code). Only runs with a failed step ask.
static void
control_restore_exit_codes(weft_engine *e, weft_run *r)
{
	json_t  *last = NULL;
	bool     any  = false;
	weft_err rv;

	for (size_t i = 0; i < r->def->nsteps && !any; i++) {
		any = r->steps[i].state == WEFT_STEP_FAILED;
	}
	if (!any) {
		return;
	}
	if ((rv = weft_store_last_step_data(engine_quiesce(e), r->id,
	         "step_failed", &last)) != WEFT_OK) {
		// Not fatal: the dependents still see the error.
		weft_log_warn("RECOVER", "run=%s: exit codes not read: %s",
		    r->id, weft_err_str(rv));
	}
	for (size_t i = 0; rv == WEFT_OK && i < r->def->nsteps; i++) {
		json_t *data = json_object_get(last, r->def->steps[i].id);
		if (r->steps[i].state == WEFT_STEP_FAILED) {
			r->steps[i].exit_code = (int) json_integer_value(
			    json_object_get(data, "exit_code"));
		}
	}
	json_decref(last);
}

// control_expansion_current says whether the expansion recorded by
// step_expanded data (borrowed) is the one step row js (NULL: none) is
// in: the same attempt, and a step that has expanded (a step a run retry
// sent back, pending, has not yet: its old expansion is gone).
static bool
control_expansion_current(const json_t *js, const json_t *data)
{
	enum weft_step_state st = WEFT_STEP_PENDING;

	weft_step_state_parse(
	    json_string_value(json_object_get(js, "status")), &st);
	return (js != NULL &&
	    json_integer_value(json_object_get(js, "attempt")) ==
	        json_integer_value(json_object_get(data, "attempt")) &&
	    (st == WEFT_STEP_RUNNING || weft_step_terminal(st)));
}

// control_restore_expansions splices into r, before its steps' rows are
// restored, the expansions its step_expanded events recorded: the last
// one of each step, shallowest first (a nested expansion's step exists
// once its parent's is in), each when still current.
static void
control_restore_expansions(weft_engine *e, weft_run *r, json_t *jr)
{
	json_t     *last = NULL, *rows = json_object(), *js, *data;
	const char *key;
	size_t      k;
	bool        more = true;

	if (weft_store_last_step_data(engine_quiesce(e), r->id,
	        weft_event_name(WEFT_EV_STEP_EXPANDED), &last) != WEFT_OK) {
		weft_log_err("RECOVER-EXPAND", "run=%s: cannot read its "
		    "step_expanded events: %s", r->id, e->store->error);
	}
	json_array_foreach (json_object_get(jr, "steps"), k, js) {
		const char *id = json_string_value(json_object_get(js, "step_id"));
		if (id != NULL) {
			json_object_set(rows, id, js);
		}
	}
	for (uint32_t depth = 0; more && depth <= WEFT_DEF_MAX_DEPTH_CEIL;
	     depth++) {
		more = false;
		json_object_foreach (last, key, data) {
			if (!json_is_object(data) ||
			    json_object_get(data, "steps") == NULL ||
			    weft_expand_depth(key) != depth) {
				continue; // a map's (count only), or later
			}
			more = true;
			if (engine_step_index(r, key) < 0 ||
			    !control_expansion_current(
			        json_object_get(rows, key), data)) {
				continue; // in an expansion since discarded, or old
			}
			if (weft_store_blob_resolve(engine_quiesce(e), data,
			        "steps") != WEFT_OK ||
			    weft_store_blob_resolve(engine_quiesce(e), data,
			        "output") != WEFT_OK ||
			    !weft_run_restore_expansion(r, key, data)) {
				weft_log_err("RECOVER-EXPAND", "run=%s step=%s: "
				    "its expansion could not be restored", r->id,
				    key);
			}
		}
	}
	json_decref(rows);
	json_decref(last);
}

weft_err
control_restore_run(weft_engine *e, json_t *jr)
{
	char        err[512];
	const char *id   = json_string_value(json_object_get(jr, "id"));
	const char *name = json_string_value(json_object_get(jr, "definition"));
	int64_t     ver  = json_integer_value(json_object_get(jr, "version"));
	def_entry  *d    = control_def_lookup(e, name, ver, err, sizeof(err));
	weft_out    scratch;
	weft_run   *r;
	json_t     *js, *input, *params;
	size_t      k;
	bool        lost;

	if (d == NULL) {
		weft_log_err("RECOVER", "run=%s: %s", id, err);
		return (WEFT_ENOENT);
	}
	if (control_restore_blobs(e, jr) != WEFT_OK) {
		// Not restored rather than restored with a reference where
		// its value was: the run stays as stored, for the next start.
		weft_log_err("RECOVER-BLOB", "run=%s: not restored: %s", id,
		    e->store->error);
		return (WEFT_ESTORE);
	}
	input  = json_incref(json_object_get(jr, "input"));
	params = json_incref(json_object_get(jr, "params"));
	lost   = !control_open_secrets(e, id, &input, &params);
	weft_out_init(&scratch);
	r = weft_run_alloc(id, d->def, input, params, 0, &scratch);
	weft_out_fini(&scratch);
	r->secrets_lost = lost;
	r->seq = (uint64_t) json_integer_value(json_object_get(jr, "last_seq"));
	weft_run_state_parse(
	    json_string_value(json_object_get(jr, "status")), &r->state);
	engine_run_add(e, r);
	control_restore_expansions(e, r, jr);
	// Steps first, then map items: an item's list comes from its step's
	// dependencies, which must be back by then.
	for (int pass = 0; pass < 2; pass++) {
		json_array_foreach (json_object_get(jr, "steps"), k, js) {
			control_restore_unit(e, r, js, pass == 1);
		}
	}
	control_restore_exit_codes(e, r);
	// Its scheduling (sched): the priority stored, the key rendered
	// again (same input, same params), its age for the admission order.
	r->priority   = (int32_t) json_integer_value(json_object_get(jr,
	      "priority"));
	r->created_ms = json_integer_value(json_object_get(jr, "created_ms"));
	r->limit_key  = admit_key(d->def, r->input, r->params, err, sizeof(err));
	if (r->state == WEFT_RUN_QUEUED) {
		// Admitted in order by the first pass, once every run is
		// back and counted.
		admit_run(e, r, e->clock.wall_ms(e->clock.arg), false);
	} else if (r->state == WEFT_RUN_SCHEDULED) {
		// Its timer again; a start time passed while we were down
		// fires at once (through the limits: sched.c).
		r->start_at_ms = json_integer_value(
		    json_object_get(jr, "start_at_ms"));
		weft_run_schedule_rearm(r, &e->out);
	} else {
		weft_run_restore_done(r, &e->out);
		holds_restore(e, r);
		if (!weft_run_terminal(r->state) && r->parent[0] == '\0') {
			admit_count(e, r);
		}
	}
	return (WEFT_OK);
}

// control_retry_load brings ended run id (its stored row jr, borrowed)
// back into memory for a retry; NULL, with msg, when it cannot be.
static weft_run *
control_retry_load(weft_engine *e, const char *id, json_t *jr, char *msg,
    size_t len)
{
	json_t  *steps = json_object_get(jr, "steps");
	json_t  *js;
	size_t   k;
	weft_err rv;
	weft_run *r;
	uint64_t  seq = 0;

	json_array_foreach (steps, k, js) {
		json_object_set(js, "step_id", json_object_get(js, "id"));
	}
	json_object_set_new(jr, "last_seq", json_integer(0));
	if ((rv = control_restore_run(e, jr)) != WEFT_OK) {
		snprintf(msg, len, "retry: run %s cannot be restored: %s", id,
		    rv == WEFT_ENOENT ? "its definition is not in the store"
		                      : e->store->error);
		return (NULL);
	}
	if ((r = engine_run(e, id)) != NULL) {
		weft_store_run_last_seq(engine_quiesce(e), id, &seq);
		r->seq = seq;
	}
	return (r);
}

// control_action_input maps an action to the run machine's input.
static enum weft_run_input
control_action_input(const char *action, bool from)
{
	if (strcmp(action, "cancel") == 0) {
		return (WEFT_RUN_IN_CANCEL);
	}
	if (strcmp(action, "pause") == 0) {
		return (WEFT_RUN_IN_PAUSE);
	}
	if (strcmp(action, "resume") == 0) {
		return (WEFT_RUN_IN_RESUME);
	}
	return (from ? WEFT_RUN_IN_RETRY_FROM : WEFT_RUN_IN_RETRY);
}

// control_from_step finds step `from` of the definition name@version; -1
// with msg when it has none.
static long
control_from_step(weft_engine *e, const char *id, const char *name,
    int64_t version, const char *from, char *msg, size_t len)
{
	def_entry *d = control_def_lookup(e, name, version, msg, len);
	long       i = d != NULL ? weft_def_find(d->def, from) : -1;

	if (d != NULL && i < 0) {
		snprintf(msg, len,
		    "retry --from: run %s (definition \"%s\" version %" PRId64
		    ") has no step \"%s\"",
		    id, name, version, from);
	}
	return (i);
}

// control_apply runs action on r, in memory; false when r's state does
// not allow it.
static weft_err
control_apply(weft_engine *e, weft_run *r, const char *action, long from)
{
	weft_err rv = WEFT_ESTATE;

	if (strcmp(action, "cancel") == 0) {
		rv = weft_run_cancel(r, "cancelled by request", &e->out);
	} else if (strcmp(action, "pause") == 0) {
		if ((rv = weft_run_pause(r, &e->out)) == WEFT_OK) {
			subwf_lifecycle(e, r, true);
		}
	} else if (strcmp(action, "resume") == 0) {
		if ((rv = weft_run_resume(r, &e->out)) == WEFT_OK) {
			subwf_lifecycle(e, r, false);
		}
	} else if (from >= 0) {
		rv = weft_run_retry_from(r, from, e->now_ms, &e->out);
	} else {
		rv = weft_run_retry(r, e->now_ms, &e->out);
	}
	if (rv == WEFT_OK && strcmp(action, "retry") == 0 &&
	    r->parent[0] == '\0') {
		admit_count(e, r); // running again: it counts again
	}
	return (rv);
}

weft_err
control_lifecycle_one(weft_engine *e, const char *id, const char *action,
    const char *from, bool dry, char *msg, size_t len)
{
	weft_run           *r       = engine_run(e, id);
	bool                has_from = from != NULL && from[0] != '\0';
	enum weft_run_input in      = control_action_input(action, has_from);
	enum weft_run_state st, to;
	json_t             *jr = NULL;
	long                step = -1;
	weft_err            rv;

	if (has_from && in != WEFT_RUN_IN_RETRY_FROM) {
		snprintf(msg, len, "from: only a retry starts from a step");
		return (WEFT_EINVAL);
	}
	if (r == NULL) {
		// Ended runs leave memory; the store still knows them.
		if (weft_store_get_run(engine_quiesce(e), id, &jr) != WEFT_OK) {
			snprintf(msg, len, "no such run");
			return (WEFT_ENOENT);
		}
		st = WEFT_RUN_QUEUED;
		weft_run_state_parse(
		    json_string_value(json_object_get(jr, "status")), &st);
	} else {
		st = r->state;
	}
	if (has_from &&
	    (step = control_from_step(e, id,
	         r != NULL ? r->def->name
	                   : json_string_value(json_object_get(jr, "definition")),
	         r != NULL ? r->def->version
	                   : json_integer_value(json_object_get(jr, "version")),
	         from, msg, len)) < 0) {
		json_decref(jr);
		return (WEFT_ENOENT);
	}
	if (weft_run_next(st, in, &to) != WEFT_OK ||
	    (r == NULL && !weft_run_terminal(st))) {
		snprintf(msg, len, "cannot %s run %s: it is %s", action, id,
		    weft_run_state_name(st));
		json_decref(jr);
		return (WEFT_ESTATE);
	}
	if (dry) {
		json_decref(jr);
		return (WEFT_OK);
	}
	if (r == NULL) {
		// An ended run leaves memory; a retry brings it back.
		r = control_retry_load(e, id, jr, msg, len);
		json_decref(jr);
		if (r == NULL) {
			return (WEFT_ESTORE);
		}
	}
	if (step >= 0 && r->def_own != NULL) {
		snprintf(msg, len, "cannot retry run %s from a step: it has "
		    "expanded steps, and retry --from does not redo expansions "
		    "yet", r->id);
		rv = WEFT_EINVAL;
	} else if ((rv = control_apply(e, r, action, step)) != WEFT_OK) {
		snprintf(msg, len, "cannot %s run %s: it is %s", action, r->id,
		    weft_run_state_name(r->state));
	}
	if (rv != WEFT_OK) {
		if (weft_run_terminal(r->state)) {
			engine_run_forget(e, r); // loaded for the retry only
		}
	}
	return (rv);
}

// control_lifecycle_known says whether action is one of the four.
static bool
control_lifecycle_known(const char *action)
{
	static const char *const actions[] = { "cancel", "pause", "resume",
		"retry" };

	for (size_t a = 0; a < 4; a++) {
		if (strcmp(action, actions[a]) == 0) {
			return (true);
		}
	}
	return (false);
}

static void
control_lifecycle(weft_engine *e, engine_mail *m)
{
	Weft__LifecycleRequest *rq = m->env->control->lifecycle;
	char                    msg[512];
	weft_err                rv;
	weft_run               *r;

	if (!control_lifecycle_known(rq->action)) {
		engine_reply_now(e, m->to, WEFT_EINVAL,
		    "unknown action (use cancel, pause, resume or retry)", NULL);
		return;
	}
	if ((rv = control_lifecycle_one(e, rq->run_id, rq->action, rq->from,
	         false, msg, sizeof(msg))) != WEFT_OK) {
		engine_reply_now(e, m->to, rv, msg, NULL);
		return;
	}
	r = engine_run(e, rq->run_id);
	engine_reply_now(e, m->to, 0, NULL,
	    json_pack("{s:s, s:s}", "run_id", rq->run_id, "status",
	        r != NULL ? weft_run_state_name(r->state) : "?"));
}

// control_info describes the coordinator from atomics only: it is answered
// on the query thread, so it still answers while the engine waits for an
// unavailable store (and says so).
static json_t *
control_info(weft_engine *e)
{
	weft_metrics *m       = &e->metrics;
	uint64_t      commits = atomic_load(&e->batches_committed);
	double        avg     = commits ? (double) atomic_load(&m->commit_us_total) /
                                 1000.0 / (double) commits
	                                : 0.0;
	char          why[600];
	bool          ok = engine_store_error(e, why, sizeof(why));
	json_t       *o;

	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:I, "
	                  "s:{s:I, s:I, s:f, s:f, s:f, s:I, s:I, s:I}}",
	    "name", e->node, "events_url", e->io.events_url, "control_url",
	    e->io.control_url, "cluster_url", e->io.cluster_url,
	    "results_url", e->io.results_url, "http", e->io.http_addr,
	    "store", weft_store_is_pg(e->cfg.db_url) ? "postgres" : "sqlite",
	    "store_ok", ok, "version", "0.1.0",
	    "last_event_id", (json_int_t) atomic_load(&e->last_event_id),
	    "stats", "commits", (json_int_t) commits, "events",
	    (json_int_t) atomic_load(&e->events_committed), "commit_ms_avg",
	    avg, "commit_ms_p50", (double) atomic_load(&m->p50_us) / 1000.0,
	    "commit_ms_p99", (double) atomic_load(&m->p99_us) / 1000.0,
	    "steps_dispatched",
	    (json_int_t) atomic_load(&e->steps_dispatched), "steps_succeeded",
	    (json_int_t) atomic_load(&e->steps_succeeded), "steps_failed",
	    (json_int_t) atomic_load(&e->steps_failed));
	// Memory held by live work (docs/operations.md, "Memory").
	json_object_set_new(json_object_get(o, "stats"), "runs_in_memory",
	    json_integer((json_int_t) atomic_load(&m->runs_in_memory)));
	json_object_set_new(json_object_get(o, "stats"), "definitions_cached",
	    json_integer((json_int_t) atomic_load(&m->defs_cached)));
	// The pipelined commit: the engine computing, the store thread
	// writing (docs/operations.md, "Throughput"). Their sum over the
	// wall time is how much the two overlapped.
	json_object_set_new(json_object_get(o, "stats"), "engine_busy_us",
	    json_integer((json_int_t) atomic_load(&e->engine_busy_us)));
	json_object_set_new(json_object_get(o, "stats"), "commit_busy_us",
	    json_integer((json_int_t) atomic_load(&e->commit_busy_us)));
	json_object_set_new(o, "store_error", ok ? json_null() : json_string(why));
	return (o);
}

void
control_handle(weft_engine *e, engine_mail *m, int64_t now)
{
	Weft__ControlRequest *rq = m->env->control;
	char                  err[1024] = "";
	def_entry            *d;

	switch (rq->req_case) {
	case WEFT__CONTROL_REQUEST__REQ_DEFINE:
		d = control_define(e, rq->define->definition_json, err, sizeof(err));
		engine_reply_now(e, m->to, d ? 0 : WEFT_EDEF, err,
		    d ? control_def_summary(d) : NULL);
		break;
	case WEFT__CONTROL_REQUEST__REQ_RUN:
		control_run(e, m, now);
		break;
	case WEFT__CONTROL_REQUEST__REQ_RUN_BATCH:
		control_run_batch(e, m, now);
		break;
	case WEFT__CONTROL_REQUEST__REQ_LIFECYCLE:
		control_lifecycle(e, m);
		break;
	case WEFT__CONTROL_REQUEST__REQ_SIGNAL:
		holds_signal(e, m);
		break;
	case WEFT__CONTROL_REQUEST__REQ_WORKERS:
		engine_reply_now(e, m->to, 0, NULL, sched_workers_json(e));
		break;
	case WEFT__CONTROL_REQUEST__REQ_DELETE_RUNS:
		retain_request(e, m);
		break;
	case WEFT__CONTROL_REQUEST__REQ_SCHEDULE:
		cron_request(e, m, now);
		break;
	case WEFT__CONTROL_REQUEST__REQ_CLOCK:
		cron_clock_request(e, m);
		break;
	case WEFT__CONTROL_REQUEST__REQ_BULK:
		bulk_handle(e, m);
		break;
	default:
		engine_reply_now(e, m->to, WEFT_EINVAL,
		    "empty or unknown control request", NULL);
		break;
	}
}

// ---- the query thread ----

static const char *
control_opt(const char *s)
{
	return (s != NULL && s[0] != '\0' ? s : NULL);
}

// control_step_waiting gives one step row (of run body) its waiting_for,
// from the row, its definition (def_step), the run's other rows (by id)
// and the engine's snapshot (waits).
static void
control_step_waiting(json_t *step, json_t *def_step, json_t *by_id,
    bool paused, json_t *waits, json_t *retries, json_t *started)
{
	enum weft_step_state st;
	weft_wait_facts      f = { 0 };
	json_t              *facts, *o, *dep, *deps;
	const char          *type;
	char                 key[400];
	size_t               k;

	if (!weft_step_state_parse(
	        json_string_value(json_object_get(step, "status")), &st) ||
	    weft_step_terminal(st)) {
		return;
	}
	type         = json_string_value(json_object_get(step, "type"));
	f.state      = st;
	f.run_paused = paused;
	f.type       = type != NULL ? type : "?";
	f.is_map     = json_object_get(def_step, "map") != NULL ||
	    json_object_get(step, "items") != NULL; // a spliced map step
	f.items      = json_object_get(step, "items");
	f.expansion  = json_object_get(step, "expansion");
	f.node       = json_string_value(json_object_get(step, "node"));
	f.deps       = json_array();
	// A spliced step's definition is its row's depends_on (store_query.c).
	deps = weft_depends_step_deps(def_step != NULL ? def_step : step);
	json_array_foreach (deps, k, dep) {
		json_t *row = json_object_get(by_id, json_string_value(dep));
		enum weft_step_state ds = WEFT_STEP_PENDING;
		weft_step_state_parse(
		    json_string_value(json_object_get(row, "status")), &ds);
		if (!weft_step_terminal(ds)) {
			json_array_append(f.deps, dep);
		}
	}
	json_decref(deps);
	facts = json_object_get(json_object_get(waits, "types"), f.type);
	if (facts != NULL) {
		f.type_known = true;
		f.advertised = json_is_true(json_object_get(facts, "advertised"));
		f.unadvertised_since_ms =
		    json_integer_value(json_object_get(facts, "since_ms"));
		f.unschedulable = !f.advertised && f.unadvertised_since_ms > 0 &&
		    json_integer_value(json_object_get(waits, "now_ms")) -
		            f.unadvertised_since_ms >=
		        json_integer_value(json_object_get(waits, "after_ms"));
		f.queued = (uint32_t) json_integer_value(
		    json_object_get(facts, "queued"));
		f.free_slots =
		    (uint32_t) json_integer_value(json_object_get(facts, "free"));
		f.workers = (uint32_t) json_integer_value(
		    json_object_get(facts, "workers"));
		f.type_limit = (uint32_t) json_integer_value(
		    json_object_get(facts, "limit"));
		f.type_running = (uint32_t) json_integer_value(
		    json_object_get(facts, "running"));
	}
	snprintf(key, sizeof(key), "%s",
	    json_string_value(json_object_get(step, "id")));
	f.retry_until_ms = json_integer_value(json_object_get(
	    json_object_get(retries, key), "until_ms"));
	switch (weft_hold_kind(type)) {
	case WEFT_HOLD_SIGNAL:
		f.hold_signal = json_string_value(json_object_get(
		    json_object_get(def_step, "with"), "signal"));
		break;
	case WEFT_HOLD_TIMER:
		f.hold_timer = true;
		break;
	case WEFT_HOLD_CHILD:
		f.hold_child = "?"; // subwf_status names it (child_started)
		break;
	default:
		break;
	}
	f.hold_until_ms = json_integer_value(json_object_get(
	    json_object_get(started, key), "until_ms"));
	f.hold_timeout_at_ms = json_integer_value(json_object_get(
	    json_object_get(started, key), "timeout_at_ms"));
	json_t *run_id = json_object_get(waits, "run_id");
	snprintf(key, sizeof(key), "%s/%s", json_string_value(run_id),
	    json_string_value(json_object_get(step, "id")));
	f.schedule_at_ms = json_integer_value(
	    json_object_get(json_object_get(waits, "deadlines"), key));
	if ((o = weft_waiting_for(&f)) != NULL) {
		json_object_set_new(step, "waiting_for", o);
	}
	json_decref(f.deps);
}

// control_add_waiting says why each step of run (a status body) that has
// not ended is not done yet ("waiting_for", waiting.h). The store has the
// rows; what workers advertise and how full they are is the engine's
// (its snapshot, refreshed each survey round).
static void
control_add_waiting(weft_engine *e, json_t *run, json_t *statuses,
    json_t *defs)
{
	const char *status = json_string_value(json_object_get(run, "status"));
	enum weft_run_state rs;
	json_t     *steps  = json_object_get(run, "steps");
	json_t     *by_id  = json_object(); // every step: {id: {status}}
	json_t     *def_of = json_object(); // definition steps by id
	json_t     *retries = NULL, *started = NULL, *waits, *step, *st;
	const char *sid;
	size_t      k;

	if (status == NULL || !weft_run_state_parse(status, &rs) ||
	    weft_run_terminal(rs)) {
		json_decref(by_id);
		json_decref(def_of);
		return;
	}
	// The page may hold some steps only: dependencies are looked up in
	// the statuses of all of them.
	json_object_foreach (statuses, sid, st) {
		json_object_set_new(by_id, sid, json_pack("{s:O}", "status", st));
	}
	json_array_foreach (defs, k, step) {
		json_object_set(def_of,
		    json_string_value(json_object_get(step, "id")), step);
	}
	json_array_foreach (steps, k, step) {
		if (strcmp(json_string_value(json_object_get(step, "status")),
		        "retry_wait") == 0 &&
		    retries == NULL) {
			weft_store_last_step_data(e->qstore,
			    json_string_value(json_object_get(run, "id")),
			    weft_event_name(WEFT_EV_STEP_RETRY_SCHEDULED), &retries);
		}
		// A step the coordinator holds: its deadlines are in its
		// step_started event (holds.c).
		if (started == NULL &&
		    weft_hold_kind(json_string_value(json_object_get(step,
		        "type"))) != WEFT_HOLD_NONE &&
		    strcmp(json_string_value(json_object_get(step, "status")),
		        "running") == 0) {
			weft_store_last_step_data(e->qstore,
			    json_string_value(json_object_get(run, "id")),
			    weft_event_name(WEFT_EV_STEP_STARTED), &started);
		}
	}
	waits = sched_waits_json(e);
	json_object_set(waits, "run_id", json_object_get(run, "id"));
	json_object_set_new(waits, "now_ms", json_integer(weft_clock_wall_ms()));
	json_object_set_new(waits, "after_ms",
	    json_integer(e->cfg.unschedulable_after_ms));
	json_array_foreach (steps, k, step) {
		control_step_waiting(step,
		    json_object_get(def_of,
		        json_string_value(json_object_get(step, "id"))),
		    by_id, rs == WEFT_RUN_PAUSED, waits, retries, started);
	}
	json_decref(waits);
	json_decref(retries);
	json_decref(started);
	json_decref(by_id);
	json_decref(def_of);
}

// control_status answers a StatusRequest: the run with one page of its
// steps; "next_after" names the step to ask after for the next page.
static weft_err
control_status(weft_engine *e, Weft__StatusRequest *q, json_t **body,
    char *next, size_t nextlen, char *err, size_t errlen)
{
	json_t         *statuses = NULL, *defs;
	weft_steps_page pg = { .after = control_opt(q->steps_after),
		.limit = q->steps_limit, .bytes = WEFT_QUERY_BYTES, .next = next,
		.next_len = nextlen, .statuses = &statuses };
	weft_err rv;

	if (q->steps_limit > WEFT_QUERY_MAX_LIMIT) {
		snprintf(err, errlen, "steps_limit: at most %u, got %u",
		    WEFT_QUERY_MAX_LIMIT, q->steps_limit);
		return (WEFT_EINVAL);
	}
	if ((rv = weft_store_get_run_page(e->qstore, q->run_id, &pg, body)) !=
	    WEFT_OK) {
		if (rv == WEFT_EINVAL) {
			snprintf(err, errlen, "%s", e->qstore->error);
		}
		return (rv);
	}
	defs = json_object_get(json_object_get(*body, "definition_body"), "steps");
	if (defs == NULL) {
		// The body was left out (too big): waiting_for needs its steps.
		json_t *d = NULL;
		char   *text = NULL;
		int64_t found;
		if (weft_store_get_definition(e->qstore,
		        json_string_value(json_object_get(*body, "definition")),
		        json_integer_value(json_object_get(*body, "version")),
		        &text, &found) == WEFT_OK) {
			d = json_loads(text, 0, NULL);
		}
		free(text);
		control_add_waiting(e, *body, statuses, json_object_get(d, "steps"));
		json_decref(d);
	} else {
		control_add_waiting(e, *body, statuses, defs);
	}
	json_object_set_new(*body, "next_after",
	    next[0] != '\0' ? json_string(next) : json_null());
	subwf_status(e, *body);
	admit_status(e, *body);
	learn_status(e, *body);
	json_decref(statuses);
	return (WEFT_OK);
}

// control_output answers an OutputRequest: one chunk of a step's (or the
// run's) output, read from the blob table when it is a reference. *data
// (malloc'd) gets the chunk, *body its place.
static weft_err
control_output(weft_engine *e, Weft__OutputRequest *q, json_t **body,
    char **data, size_t *len, char *err, size_t errlen)
{
	json_t     *v;
	const char *h;
	uint64_t    size;
	uint32_t    nch = 1;
	weft_err    rv;

	if ((rv = weft_store_output(e->qstore, q->run_id,
	         control_opt(q->step_id), &v)) != WEFT_OK) {
		snprintf(err, errlen, "%s", e->qstore->error);
		return (rv);
	}
	h = weft_blob_ref_hash(v);
	if (q->blob != NULL && q->blob[0] != '\0' &&
	    (h == NULL || strcmp(h, q->blob) != 0)) {
		snprintf(err, errlen, "output of %s%s%s changed while it was "
		    "read (the step ran again, or the run was deleted): read it "
		    "again", q->run_id, q->step_id[0] ? "/" : "", q->step_id);
		json_decref(v);
		return (WEFT_ESTATE);
	}
	if (h != NULL) {
		rv = weft_store_blob_chunk(e->qstore, h, q->chunk, data, &size, &nch);
		if (rv != WEFT_OK) {
			snprintf(err, errlen, "%s", e->qstore->error);
		}
	} else if (q->chunk > 0) {
		snprintf(err, errlen, "chunk: the output has one chunk, not %u",
		    q->chunk + 1);
		rv = WEFT_EINVAL;
	} else {
		*data = weft_json_dump(v);
		size  = strlen(*data);
	}
	if (rv != WEFT_OK) {
		json_decref(v);
		return (rv);
	}
	*len  = strlen(*data);
	*body = json_pack("{s:I, s:I, s:I, s:s?}", "size", (json_int_t) size,
	    "chunks", (json_int_t) nch, "chunk", (json_int_t) q->chunk, "blob",
	    h != NULL ? h : NULL);
	json_decref(v);
	return (WEFT_OK);
}

// control_limit refuses a page size above the maximum: a larger one was
// silently cut before, which looked like the end of the list.
static bool
control_limit(uint32_t limit, char *err, size_t errlen)
{
	if (limit <= WEFT_QUERY_MAX_LIMIT) {
		return (true);
	}
	snprintf(err, errlen, "limit: at most %u, got %u", WEFT_QUERY_MAX_LIMIT,
	    limit);
	return (false);
}

static nng_msg *
control_query_answer(weft_engine *e, Weft__ControlRequest *rq)
{
	json_t  *body = NULL;
	weft_err rv   = WEFT_EINVAL;
	nng_msg *msg;
	char     err[700] = "", next[300] = "";
	char    *data = NULL;
	size_t   len  = 0;

	if (rq->req_case != WEFT__CONTROL_REQUEST__REQ_INFO &&
	    !atomic_load(&e->store_ready)) {
		char why[600];
		engine_store_error(e, why, sizeof(why));
		snprintf(err, sizeof(err), "store unavailable: %s",
		    why[0] != '\0' ? why : "not connected yet");
		return (engine_control_reply(e, WEFT_EUNAVAIL, err, NULL));
	}
	if (rq->req_case == WEFT__CONTROL_REQUEST__REQ_STATUS ||
	    rq->req_case == WEFT__CONTROL_REQUEST__REQ_OUTPUT) {
		// These read the steps table: the step rows held back
		// (store.h) are written first.
		engine_lag_barrier(e);
	}
	if (rq->req_case == WEFT__CONTROL_REQUEST__REQ_STATUS) {
		rv = control_status(e, rq->status, &body, next, sizeof(next), err,
		    sizeof(err));
	} else if (rq->req_case == WEFT__CONTROL_REQUEST__REQ_OUTPUT) {
		rv = control_output(e, rq->output, &body, &data, &len, err,
		    sizeof(err));
	} else if (rq->req_case == WEFT__CONTROL_REQUEST__REQ_RUNS) {
		weft_runs_filter f = { control_opt(rq->runs->status),
			control_opt(rq->runs->definition), control_opt(rq->runs->before),
			rq->runs->limit, (int64_t) rq->runs->since_ms,
			(int64_t) rq->runs->until_ms, .next = next,
			.next_len = sizeof(next) };
		tag_filter tf;
		rv = control_limit(rq->runs->limit, err, sizeof(err)) &&
		        bulk_tag_filter(&tf, rq->runs->tags, rq->runs->n_tags,
		            &f, err, sizeof(err))
		    ? weft_store_list_runs(e->qstore, &f, &body)
		    : WEFT_EINVAL;
	} else if (rq->req_case == WEFT__CONTROL_REQUEST__REQ_DEFINITION) {
		rv = weft_store_definition_versions(e->qstore,
		    rq->definition->name, rq->definition->version, &body);
		if (rv == WEFT_ENOENT) {
			snprintf(err, sizeof(err), "%s", e->qstore->error);
		}
	} else if (rq->req_case == WEFT__CONTROL_REQUEST__REQ_INFO) {
		body = control_info(e);
		rv   = WEFT_OK;
	} else if (rq->req_case == WEFT__CONTROL_REQUEST__REQ_DEFINITIONS) {
		rv = weft_store_list_definitions(e->qstore, &body);
	} else if (rq->req_case == WEFT__CONTROL_REQUEST__REQ_EVENTS) {
		Weft__EventsRequest *q = rq->events;
		weft_events_filter   f = { .run_id = control_opt(q->run_id),
			  .step_id = control_opt(q->step_id), .node = control_opt(q->node),
			  .text = control_opt(q->text), .types = (const char **) q->types,
			  .ntypes = q->n_types, .after = q->after,
			  .since_ms = (int64_t) q->since_ms,
			  .until_ms = (int64_t) q->until_ms, .limit = q->limit,
			  .next = next, .next_len = sizeof(next) };
		rv = control_limit(q->limit, err, sizeof(err))
		    ? weft_store_list_events(e->qstore, &f, &body)
		    : WEFT_EINVAL;
	}
	if (rv == WEFT_ENOENT) {
		return (engine_control_reply(
		    e, rv, err[0] != '\0' ? err : "no such run", NULL));
	}
	if (rv == WEFT_EINVAL && err[0] != '\0') {
		return (engine_control_reply(e, rv, err, NULL));
	}
	if (rv != WEFT_OK) {
		snprintf(err, sizeof(err), "%s: %s",
		    rv == WEFT_EUNAVAIL ? "store unavailable" : "query failed",
		    e->qstore->error);
		return (engine_control_reply(e, rv, err, NULL));
	}
	msg = engine_control_reply_page(e, 0, NULL, body, next, data, len);
	json_decref(body);
	free(data);
	return (msg);
}

void *
control_query_main(void *arg)
{
	weft_engine *e = arg;

	weft_thread_name("query");
	while (!atomic_load(&e->stopping)) {
		weft_mail *mail = weft_mailbox_drain(&e->qmailbox, 1000);
		while (mail != NULL) {
			engine_mail *m = (engine_mail *) mail;
			mail           = mail->next;
			if (m->kind == MAIL_METRICS) {
				e->io.metrics(e->io.arg, m->to);
				free(m);
				continue;
			}
			e->io.reply(e->io.arg, m->to,
			    control_query_answer(e, m->env->control));
			weft_wire_free(m->env);
			free(m);
		}
	}
	return (NULL);
}
