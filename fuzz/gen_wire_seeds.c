// gen_wire_seeds: writes the wire fuzzer's seed corpus: one packed Envelope
// per body kind, as the sockets carry them (events with their topic
// prefix). Usage: gen_wire_seeds DIR. The output is checked in under
// fuzz/corpus/wire/; rerun it when weft.proto changes.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

static uint64_t gen_seq;

// gen_write packs env the way weft_wire_pack does without a key (topic,
// NUL, frame header, Envelope) but with fixed stamps, so the files do not
// change between runs.
static int
gen_write(const char *dir, const char *name, Weft__Envelope *env,
    const char *topic)
{
	char     path[1024];
	size_t   tlen = topic ? strlen(topic) + 1 : 0;
	size_t   len;
	uint8_t *buf;
	FILE    *f;
	int      rv = 0;

	env->version = WEFT_WIRE_VERSION;
	env->sender  = "seed";
	env->seq     = ++gen_seq;
	env->ts_ms   = 1795368400000ULL + gen_seq;
	env->incarnation = 0x5eed;
	len          = weft__envelope__get_packed_size(env) + WEFT_WIRE_HEADER;
	buf          = malloc(tlen + len);
	if (tlen > 0) {
		memcpy(buf, topic, tlen);
	}
	buf[tlen]     = 'W';
	buf[tlen + 1] = 'F';
	buf[tlen + 2] = WEFT_WIRE_VERSION;
	buf[tlen + 3] = 0;
	weft__envelope__pack(env, buf + tlen + WEFT_WIRE_HEADER);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL ||
	    fwrite(buf, 1, tlen + len, f) != tlen + len) {
		fprintf(stderr, "gen_wire_seeds: cannot write %s\n", path);
		rv = 1;
	}
	if (f != NULL) {
		fclose(f);
	}
	free(buf);
	return (rv);
}

static int
gen_cluster(const char *dir)
{
	Weft__Envelope   env = WEFT__ENVELOPE__INIT;
	Weft__Survey     sv  = WEFT__SURVEY__INIT;
	Weft__Member     m1 = WEFT__MEMBER__INIT, m2 = WEFT__MEMBER__INIT;
	Weft__Member    *ms[] = { &m1, &m2 };
	Weft__WorkerInfo wi = WEFT__WORKER_INFO__INIT;
	char            *types[] = { "noop", "echo", "exec" };
	int              rv = 0;

	m1.name = "coordinator", m1.role = "coordinator";
	m1.address = "tcp://127.0.0.1:7420", m1.state = "alive";
	m2.name = "w0", m2.role = "worker";
	m2.address = "tcp://127.0.0.1:40001", m2.state = "lost";
	sv.round = 7, sv.results_url = "tcp://127.0.0.1:7422";
	sv.n_members = 2, sv.members = ms;
	env.body_case = WEFT__ENVELOPE__BODY_SURVEY, env.survey = &sv;
	rv |= gen_write(dir, "survey.bin", &env, NULL);

	wi.name = "w0", wi.dispatch_url = "tcp://127.0.0.1:40001";
	wi.n_step_types = 3, wi.step_types = types;
	wi.slots = 4, wi.running = 2, wi.held_results = 1, wi.round = 7;
	wi.started_ms = 1795368400556ULL, wi.queue = 8;
	env.body_case = WEFT__ENVELOPE__BODY_WORKER_INFO, env.worker_info = &wi;
	rv |= gen_write(dir, "worker_info.bin", &env, NULL);
	return (rv);
}

static int
gen_dispatch(const char *dir)
{
	Weft__Envelope    env = WEFT__ENVELOPE__INIT;
	Weft__Assignment  a1 = WEFT__ASSIGNMENT__INIT, a2 = WEFT__ASSIGNMENT__INIT;
	Weft__Assignment *as[] = { &a1, &a2 };
	Weft__Abort       ab = WEFT__ABORT__INIT;
	Weft__Abort      *abs[] = { &ab };
	Weft__AssignBatch batch = WEFT__ASSIGN_BATCH__INIT;
	Weft__AssignReply rep = WEFT__ASSIGN_REPLY__INIT;
	protobuf_c_boolean acc[] = { 1, 0 };
	char             *why[] = { "", "no free slot" };
	int               rv = 0;

	a1.run_id = "01M824QDQD4PG8QQWWYZ25B82E", a1.step_id = "fetch";
	a1.attempt = 1, a1.type = "echo";
	a1.input_json = "{\"input\":{},\"params\":{\"who\":\"world\"},"
	                "\"steps\":{},\"with\":{\"greeting\":\"hello\"}}";
	a2 = a1;
	a2.step_id = "count", a2.type = "sleep", a2.timeout_ms = 5000;
	a2.input_json = "{\"with\":{\"ms\":200}}";
	ab.run_id = a1.run_id, ab.step_id = "old", ab.attempt = 2;
	batch.n_items = 2, batch.items = as, batch.n_aborts = 1;
	batch.aborts = abs;
	env.body_case = WEFT__ENVELOPE__BODY_ASSIGN, env.assign = &batch;
	rv |= gen_write(dir, "assign.bin", &env, NULL);

	rep.n_accepted = 2, rep.accepted = acc, rep.n_reason = 2;
	rep.reason = why;
	env.body_case = WEFT__ENVELOPE__BODY_ASSIGN_REPLY;
	env.assign_reply = &rep;
	rv |= gen_write(dir, "assign_reply.bin", &env, NULL);

	// A one-step batch's reply with the step's result (--reply-wait),
	// and the next batch acking it.
	Weft__StepResult  sr = WEFT__STEP_RESULT__INIT, *srs[] = { &sr };
	Weft__ResultRef   ref = WEFT__RESULT_REF__INIT, *refs[] = { &ref };
	sr.run_id = a1.run_id, sr.step_id = "fetch", sr.attempt = 1;
	sr.ok = 1, sr.output_json = "{\"greeting\":\"hello\"}";
	sr.started_ms = 1795368400620ULL, sr.finished_ms = 1795368400621ULL;
	rep.n_accepted = 1, rep.n_reason = 1;
	rep.n_results = 1, rep.results = srs;
	rv |= gen_write(dir, "assign_reply_result.bin", &env, NULL);
	ref.run_id = a1.run_id, ref.step_id = "fetch", ref.attempt = 1;
	batch.n_items = 1, batch.n_aborts = 0;
	batch.n_acked = 1, batch.acked = refs;
	env.body_case = WEFT__ENVELOPE__BODY_ASSIGN, env.assign = &batch;
	rv |= gen_write(dir, "assign_acked.bin", &env, NULL);
	return (rv);
}

static int
gen_results(const char *dir)
{
	Weft__Envelope    env = WEFT__ENVELOPE__INIT;
	Weft__StepResult  r1 = WEFT__STEP_RESULT__INIT, r2 = WEFT__STEP_RESULT__INIT;
	Weft__StepResult *rs[] = { &r1, &r2 };
	Weft__ResultBatch rb = WEFT__RESULT_BATCH__INIT;
	Weft__ResultAck   ack = WEFT__RESULT_ACK__INIT;
	int               rv = 0;

	r1.run_id = "01M824QDQD4PG8QQWWYZ25B82E", r1.step_id = "fetch";
	r1.attempt = 1, r1.ok = 1, r1.output_json = "{\"n\":3}";
	r1.started_ms = 1795368400620ULL, r1.finished_ms = 1795368400626ULL;
	r2 = r1;
	r2.step_id = "measure", r2.ok = 0, r2.output_json = "";
	r2.error = "exit status 2", r2.exit_code = 2;
	r2.stderr_tail = "measure.sh: no such file\n";
	rb.n_results = 2, rb.results = rs;
	env.body_case = WEFT__ENVELOPE__BODY_RESULTS, env.results = &rb;
	rv |= gen_write(dir, "results.bin", &env, NULL);

	ack.count = 2;
	env.body_case = WEFT__ENVELOPE__BODY_RESULT_ACK, env.result_ack = &ack;
	rv |= gen_write(dir, "result_ack.bin", &env, NULL);
	return (rv);
}

static int
gen_control(const char *dir)
{
	Weft__Envelope       env = WEFT__ENVELOPE__INIT;
	Weft__ControlRequest req = WEFT__CONTROL_REQUEST__INIT;
	Weft__RunRequest     run = WEFT__RUN_REQUEST__INIT;
	Weft__EventsRequest  evq = WEFT__EVENTS_REQUEST__INIT;
	Weft__ControlReply   rep = WEFT__CONTROL_REPLY__INIT;
	char                *types[] = { "step_failed", "run_failed" };
	int                  rv = 0;

	run.definition = "diamond", run.input_json = "{\"x\":1}";
	run.params_json = "{\"who\":\"fuzz\"}";
	req.req_case = WEFT__CONTROL_REQUEST__REQ_RUN, req.run = &run;
	env.body_case = WEFT__ENVELOPE__BODY_CONTROL, env.control = &req;
	rv |= gen_write(dir, "control_run.bin", &env, NULL);

	// A batch: a good item, one without a definition, one inline.
	Weft__RunRequest       items[3], *itemp[3];
	Weft__RunBatchRequest  batch = WEFT__RUN_BATCH_REQUEST__INIT;
	for (int i = 0; i < 3; i++) {
		weft__run_request__init(&items[i]);
		itemp[i] = &items[i];
	}
	items[0].definition      = "diamond", items[0].input_json = "{\"x\":1}";
	items[1].input_json      = "{";
	items[2].definition_json =
	    "{\"name\":\"one\",\"steps\":[{\"id\":\"a\",\"type\":\"noop\"}]}";
	batch.n_runs = 3, batch.runs = itemp;
	req.req_case = WEFT__CONTROL_REQUEST__REQ_RUN_BATCH;
	req.run_batch = &batch;
	rv |= gen_write(dir, "control_run_batch.bin", &env, NULL);

	evq.run_id = "01M824QDQD4PG8QQWWYZ25B82E", evq.n_types = 2;
	evq.types = types, evq.after = 10, evq.limit = 100;
	evq.since_ms = 1795368400000ULL, evq.text = "boom";
	req.req_case = WEFT__CONTROL_REQUEST__REQ_EVENTS, req.events = &evq;
	rv |= gen_write(dir, "control_events.bin", &env, NULL);

	Weft__StatusRequest st = WEFT__STATUS_REQUEST__INIT;
	st.run_id = "01M824QDQD4PG8QQWWYZ25B82E", st.steps_after = "m";
	st.steps_limit = 10;
	req.req_case = WEFT__CONTROL_REQUEST__REQ_STATUS, req.status = &st;
	rv |= gen_write(dir, "control_status_page.bin", &env, NULL);

	Weft__OutputRequest out = WEFT__OUTPUT_REQUEST__INIT;
	out.run_id = "01M824QDQD4PG8QQWWYZ25B82E", out.step_id = "m[3]";
	out.chunk = 2;
	req.req_case = WEFT__CONTROL_REQUEST__REQ_OUTPUT, req.output = &out;
	rv |= gen_write(dir, "control_output.bin", &env, NULL);

	rep.code = 0, rep.body_json = "{\"run_id\":\"01M824QDQD4PG8QQWWYZ25B82E\"}";
	env.body_case = WEFT__ENVELOPE__BODY_CONTROL_REPLY;
	env.control_reply = &rep;
	rv |= gen_write(dir, "control_reply.bin", &env, NULL);
	return (rv);
}

static int
gen_events(const char *dir)
{
	Weft__Envelope   env = WEFT__ENVELOPE__INIT;
	Weft__Event      e1 = WEFT__EVENT__INIT, e2 = WEFT__EVENT__INIT;
	Weft__Event     *es[] = { &e1, &e2 };
	Weft__EventBatch eb = WEFT__EVENT_BATCH__INIT;
	int              rv = 0;

	e1.id = 41, e1.run_id = "01M824QDQD4PG8QQWWYZ25B82E", e1.seq = 9;
	e1.ts_ms = 1795368400830ULL, e1.type = "step_succeeded";
	e1.step_id = "join", e1.attempt = 1, e1.node = "w0";
	e1.data_json = "{\"output\":{\"n\":3}}";
	e2 = e1;
	e2.id = 42, e2.seq = 10, e2.type = "run_succeeded", e2.step_id = "";
	e2.attempt = 0, e2.node = "coordinator", e2.data_json = "{}";
	eb.n_events = 2, eb.events = es;
	env.body_case = WEFT__ENVELOPE__BODY_EVENTS, env.events = &eb;
	rv |= gen_write(dir, "events_topic.bin", &env,
	    "run:01M824QDQD4PG8QQWWYZ25B82E");

	e1.run_id = "", e1.seq = 0, e1.type = "worker_lost", e1.step_id = "";
	e1.data_json = "{\"missed\":3}";
	env.body_case = WEFT__ENVELOPE__BODY_EVENT, env.event = &e1;
	rv |= gen_write(dir, "event_node_topic.bin", &env, "node:w0");
	return (rv);
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_wire_seeds DIR\n");
		return (2);
	}
	return (gen_cluster(argv[1]) | gen_dispatch(argv[1]) |
	    gen_results(argv[1]) | gen_control(argv[1]) | gen_events(argv[1]));
}
