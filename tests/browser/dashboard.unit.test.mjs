// dashboard.unit.test: the dashboard's pure parts under node, no browser,
// no cluster (ctest dashboard_js_test): the timeline's attempts from a
// run's events and its lanes, and the metrics page's Prometheus parser
// and rates. The browser tests (web.test.mjs) check the same against a
// real coordinator; these pin the edge cases table by table.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
	attemptsOf, renderTimeline, COORD_LANE, MAX_LANES, MAX_BARS,
} from '../../dashboard/js/timeline.js';
import { parseProm, totals, pointsOf } from '../../dashboard/js/pages/metrics.js';
import { setMeta } from '../../dashboard/js/util.js';

let id = 0;
const ev = (type, step, attempt, ts, node) => ({ id: ++id, type, step, attempt, ts_ms: ts, node, data: {} });

describe('timeline: attempts from events', () => {
	const cases = [
		{
			what: 'one attempt: ready → dispatched → started → succeeded',
			events: [ev('step_ready', 'a', 0, 100), ev('step_dispatched', 'a', 1, 150, 'w1'),
				ev('step_started', 'a', 1, 160, 'w1'), ev('step_succeeded', 'a', 1, 400, 'w1')],
			want: [{ step: 'a', attempt: 1, node: 'w1', ready: 100, started: 160, ended: 400, state: 'succeeded' }],
		},
		{
			what: 'a retry is a second bar; the first is failed; its ready is the second step_ready',
			events: [ev('step_ready', 'f', 0, 0), ev('step_dispatched', 'f', 1, 10, 'w1'), ev('step_started', 'f', 1, 20, 'w1'),
				ev('step_retry_scheduled', 'f', 1, 30, 'w1'), ev('step_ready', 'f', 0, 230),
				ev('step_dispatched', 'f', 2, 240, 'w2'), ev('step_started', 'f', 2, 250, 'w2'),
				ev('step_succeeded', 'f', 2, 300, 'w2')],
			want: [
				{ step: 'f', attempt: 1, node: 'w1', ready: 0, started: 20, ended: 30, state: 'failed' },
				{ step: 'f', attempt: 2, node: 'w2', ready: 230, started: 250, ended: 300, state: 'succeeded' },
			],
		},
		{
			what: 'a retry\'s step_ready naming the attempt before still opens the next bar',
			events: [ev('step_ready', 'f', 0, 0), ev('step_dispatched', 'f', 1, 10, 'w1'), ev('step_started', 'f', 1, 20, 'w1'),
				ev('step_retry_scheduled', 'f', 1, 30, 'w1'), ev('step_ready', 'f', 1, 230),
				ev('step_dispatched', 'f', 2, 240, 'w1'), ev('step_started', 'f', 2, 250, 'w1')],
			want: [
				{ step: 'f', attempt: 1, node: 'w1', ready: 0, started: 20, ended: 30, state: 'failed' },
				{ step: 'f', attempt: 2, node: 'w1', ready: 230, started: 250, ended: null, state: 'running' },
			],
		},
		{
			what: 'ready and not dispatched: a waiting bar with no node',
			events: [ev('step_ready', 'q', 0, 50)],
			want: [{ step: 'q', attempt: 0, node: null, ready: 50, started: null, ended: null, state: 'waiting' }],
		},
		{
			what: 'cancelled before a worker took it: the waiting bar ends cancelled',
			events: [ev('step_ready', 'q', 0, 50), ev('step_cancelled', 'q', 0, 90)],
			want: [{ step: 'q', attempt: 0, node: null, ready: 50, started: null, ended: 90, state: 'cancelled' }],
		},
		{
			what: 'a held step (no node) starting and ending; progress adds nothing',
			events: [ev('step_ready', 'd', 0, 5), ev('step_started', 'd', 1, 5), ev('step_progress', 'd', 1, 6),
				ev('step_succeeded', 'd', 1, 305)],
			want: [{ step: 'd', attempt: 1, node: null, ready: 5, started: 5, ended: 305, state: 'succeeded' }],
		},
		{
			what: 'a timed-out attempt and a lost one keep how they ended',
			events: [ev('step_dispatched', 't', 1, 0, 'w1'), ev('step_started', 't', 1, 1, 'w1'), ev('step_timed_out', 't', 1, 9, 'w1'),
				ev('step_failed', 't', 1, 9, 'w1'), ev('step_dispatched', 't', 2, 10, 'w2'), ev('step_lost', 't', 2, 20, 'w2')],
			want: [
				{ step: 't', attempt: 1, node: 'w1', ready: 0, started: 1, ended: 9, state: 'timed_out' },
				{ step: 't', attempt: 2, node: 'w2', ready: 10, started: null, ended: 20, state: 'lost' },
			],
		},
		{
			what: 'an ending of an attempt never seen to begin is ignored',
			events: [ev('step_succeeded', 'z', 3, 10, 'w1')],
			want: [],
		},
	];
	for (const c of cases) {
		it(c.what, () => {
			assert.deepEqual(attemptsOf(c.events).map((a) => ({ ...a })), c.want);
		});
	}
});

describe('timeline: lanes', () => {
	const atts = [
		{ step: 'a', attempt: 1, node: 'w1', ready: 0, started: 10, ended: 100, state: 'succeeded' },
		{ step: 'b', attempt: 1, node: 'w1', ready: 0, started: 20, ended: 90, state: 'failed' },
		{ step: 'b', attempt: 2, node: 'w2', ready: 95, started: 96, ended: 120, state: 'succeeded' },
		{ step: 'cool', attempt: 1, node: null, ready: 0, started: 0, ended: 50, state: 'succeeded' },
	];
	const typeOf = (s) => (s === 'cool' ? 'delay' : 'echo');
	const lanesOf = (svg) => [...svg.matchAll(/data-lane="([^"]*)" data-rows="(\d+)"/g)].map((m) => [m[1], Number(m[2])]);
	it('per worker: overlapping bars on one worker stack; held steps in the coordinator lane', () => {
		const svg = renderTimeline(atts.map((a) => ({ ...a })), 800, { mode: 'worker', typeOf, now: 200 });
		assert.deepEqual(lanesOf(svg), [['w1', 2], ['w2', 1], [COORD_LANE, 1]]);
		assert.equal((svg.match(/class="tl-bar /g) || []).length, 4, 'a bar per attempt');
		assert.match(svg, /data-step="b" data-attempt="1" data-state="failed"/);
	});
	it('per worker: a step no worker took yet waits in a lane of its own, not the coordinator\'s', () => {
		const q = [{ step: 'q', attempt: 0, node: null, ready: 0, started: null, ended: null, state: 'waiting' }];
		assert.deepEqual(lanesOf(renderTimeline(q, 800, { mode: 'worker', typeOf, now: 10 })), [['(not dispatched)', 1]]);
	});
	it('per step: one lane per step, attempts side by side', () => {
		const svg = renderTimeline(atts.map((a) => ({ ...a })), 800, { mode: 'step', typeOf, now: 200 });
		assert.deepEqual(lanesOf(svg), [['a', 1], ['b', 1], ['cool', 1]]);
	});
	it('the wait is drawn before the run, and a running bar ends at now', () => {
		const svg = renderTimeline([{ step: 'r', attempt: 1, node: 'w1', ready: 0, started: 50, ended: null, state: 'running' }],
			420, { mode: 'worker', typeOf, now: 100 });
		const wait = svg.match(/class="tl-wait" x="([\d.]+)" y="\d+" width="([\d.]+)"/);
		const run = svg.match(/class="tl-run" x="([\d.]+)" y="\d+" width="([\d.]+)"/);
		assert.ok(Number(wait[1]) < Number(run[1]));
		// The plot is 420 - 150 - 16 = 254 px for 100 ms: half each.
		assert.equal(Math.round(Number(wait[2])), 127);
		assert.equal(Math.round(Number(run[2])), 127);
	});
	it(`draws at most ${MAX_LANES} lanes and says how many it left out`, () => {
		const many = Array.from({ length: MAX_LANES + 5 }, (_, i) => ({
			step: `s${i}`, attempt: 1, node: 'w1', ready: i, started: i + 1, ended: i + 2, state: 'succeeded',
		}));
		const svg = renderTimeline(many, 800, { mode: 'step', typeOf, now: 1000 });
		assert.equal(lanesOf(svg).length, MAX_LANES);
		assert.match(svg, />5 more lanes not drawn</);
	});
	it(`draws the latest ${MAX_BARS} attempts and counts the earlier ones`, () => {
		const many = Array.from({ length: MAX_BARS + 7 }, (_, i) => ({
			step: `s${i}`, attempt: 1, node: `w${i % 4}`, ready: i, started: i + 1, ended: i + 2, state: 'succeeded',
		}));
		const svg = renderTimeline(many, 800, { mode: 'worker', typeOf, now: 1e5 });
		assert.equal((svg.match(/class="tl-bar /g) || []).length, MAX_BARS);
		assert.ok(!svg.includes('data-step="s6"') && svg.includes('data-step="s7"'), 'the earliest left out');
		assert.match(svg, />7 earlier attempts not drawn</);
	});
	it('names are escaped', () => {
		const svg = renderTimeline([{ step: '<x>', attempt: 1, node: 'w"1', ready: 0, started: 1, ended: 2, state: 'succeeded' }],
			400, { mode: 'worker', typeOf, now: 5 });
		assert.ok(!svg.includes('<x>') && !svg.includes('w"1'));
	});
});

describe('metrics: Prometheus text and rates', () => {
	setMeta({
		event_types: ['succeeded', 'failed', 'cancelled', 'timed_out']
			.map((s) => ({ name: `run_${s}`, scope: 'run', terminal: true, run_status: s })),
	});
	const text = (runs, steps, sum, count) => [
		'# HELP weft_runs Runs by status.', '# TYPE weft_runs gauge',
		`weft_runs{status="running"} ${runs.running}`, `weft_runs{status="succeeded"} ${runs.succeeded}`,
		`weft_runs{status="failed"} ${runs.failed}`,
		`weft_steps_succeeded_total ${steps[0]}`, `weft_steps_failed_total ${steps[1]}`,
		'weft_steps_dispatched_total 999', 'weft_ready_queue_depth 7', 'weft_workers_alive 2',
		'weft_store_commit_seconds_bucket{le="+Inf"} 5', `weft_store_commit_seconds_sum ${sum}`,
		`weft_store_commit_seconds_count ${count}`, 'garbage line', '',
	].join('\n');
	it('parses names, labels and values, skipping what it cannot read', () => {
		const ms = parseProm('a{x="1",y="q\\"z"} 3\n# c\nb 4.5\nc +Inf\nd{} NaNx\n');
		assert.deepEqual(ms, [
			{ name: 'a', labels: { x: '1', y: 'q"z' }, value: 3 },
			{ name: 'b', labels: {}, value: 4.5 },
			{ name: 'c', labels: {}, value: Infinity },
		]);
	});
	it('sums runs (all, ended), steps ended and the commit histogram', () => {
		const t = totals(parseProm(text({ running: 2, succeeded: 5, failed: 1 }, [10, 3], 0.5, 100)));
		assert.deepEqual(t, { runs: 8, ended: 6, steps: 13, ready: 7, workers: 2, commitSum: 0.5, commitCount: 100 });
	});
	it('turns two samples into per-second rates and a mean commit latency', () => {
		const a = { ...totals(parseProm(text({ running: 2, succeeded: 5, failed: 1 }, [10, 3], 0.5, 100))), t: 0 };
		const b = { ...totals(parseProm(text({ running: 0, succeeded: 12, failed: 2 }, [30, 5], 0.53, 110))), t: 2000 };
		const p = pointsOf(a, b);
		assert.equal(p.runs_started, 3); // 8 → 14 runs in 2 s
		assert.equal(p.runs_ended, 4);   // 6 → 14
		assert.equal(p.steps, 11);       // 13 → 35
		assert.equal(p.ready, 7);
		assert.equal(p.workers, 2);
		assert.ok(Math.abs(p.commit_ms - 3) < 1e-9, `commit ${p.commit_ms}`); // 0.03 s over 10 commits
		assert.deepEqual(pointsOf(null, b), { ready: 7, workers: 2 }, 'one sample: gauges only');
		assert.equal(pointsOf(b, a).steps, null, 'a counter that went down is no rate');
		assert.equal(pointsOf(a, { ...a, t: 2000 }).commit_ms, null, 'no commits: no latency');
	});
});
