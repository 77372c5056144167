// timeline: a run's attempts as a Gantt chart (SVG). Each attempt is one
// bar: a light part for its queue wait (step_ready → step_started, or →
// now while it waits) and a solid part for its run time (step_started →
// the event that ended it, or → now while it runs), coloured by how it
// ended, so a retry is a second bar beside the failed first. Lanes are the
// workers (several bars at once on one worker stack into sub-rows), or the
// steps; steps the coordinator holds itself (wait, delay, workflow,
// expand: no worker runs them) get the lane "coordinator". Built from the
// run's events only, so the run page feeds it the same history and live
// events it already has; nothing here fetches.
import { esc, fmtClock, fmtDuration } from './util.js';

// Step types the coordinator runs itself: their attempts have no node.
export const HELD_TYPES = new Set(['wait', 'delay', 'sleep_until', 'workflow', 'expand']);
export const COORD_LANE = 'coordinator';
const QUEUE_LANE = '(not dispatched)';

const END_STATE = {
	step_succeeded: 'succeeded', step_failed: 'failed', step_retry_scheduled: 'failed',
	step_timed_out: 'timed_out', step_lost: 'lost', step_cancelled: 'cancelled',
};

// Lanes drawn at most: a 100,000-step run per step would be a chart
// kilometres high; the rest are counted under it.
export const MAX_LANES = 300;
// Bars drawn at most (the latest attempts): a draw stays in the tens of
// ms however large the run; the rest are counted under the chart.
export const MAX_BARS = 3000;
const LABEL_W = 150;
const ROW_H = 18;
const ROW_GAP = 4;
const AXIS_H = 22;
const PAD = 8;

// attemptsOf folds a run's events (in id order) into attempts:
// [{step, attempt, node, ready, started, ended, state}]; state is
// 'waiting' or 'running' until an ending event names how it ended. Map
// items ("m[3]") are attempts of their own.
export function attemptsOf(events) {
	const by = new Map();
	const out = [];
	// A step_ready has no attempt number: it opens a bar that the attempt
	// dispatched next (its number from step_dispatched) takes over, so a
	// step still queued shows as waiting.
	const pending = new Map(); // step -> its bar not dispatched yet
	const open = (step, attempt, ts) => {
		const a = { step, attempt, node: null, ready: ts, started: null, ended: null, state: 'waiting' };
		out.push(a);
		return a;
	};
	for (const ev of events) {
		if (!ev.step) {
			continue;
		}
		if (ev.type === 'step_ready') {
			// Its attempt, when it has one, is the one before (a retry's
			// step_ready says 1): the bar belongs to the next dispatch.
			if (!pending.has(ev.step)) {
				pending.set(ev.step, open(ev.step, 0, ev.ts_ms));
			}
			continue;
		}
		if (!ev.attempt) {
			if (END_STATE[ev.type] && pending.has(ev.step)) {
				const a = pending.get(ev.step); // cancelled before a worker took it
				a.ended = ev.ts_ms;
				a.state = END_STATE[ev.type];
				pending.delete(ev.step);
			}
			continue;
		}
		const k = `${ev.step}\u0000${ev.attempt}`;
		let a = by.get(k);
		if (!a) {
			if (pending.has(ev.step)) {
				a = pending.get(ev.step);
				a.attempt = ev.attempt;
				pending.delete(ev.step);
			} else if (ev.type === 'step_dispatched' || ev.type === 'step_started') {
				a = open(ev.step, ev.attempt, ev.ts_ms);
			} else {
				continue; // progress or an ending of an attempt never seen to begin
			}
			by.set(k, a);
		}
		if (ev.node) {
			a.node = ev.node;
		}
		if (ev.type === 'step_started') {
			a.started = a.started || ev.ts_ms;
			if (a.state === 'waiting') {
				a.state = 'running';
			}
		} else if (END_STATE[ev.type] && !a.ended) {
			a.ended = ev.ts_ms;
			a.state = END_STATE[ev.type];
		}
	}
	return out;
}

// laneOf names an attempt's lane: its step, or its worker (the
// coordinator for held step types, or a lane of its own for attempts no
// worker took yet).
function laneOf(a, mode, typeOf) {
	if (mode === 'step') {
		return a.step;
	}
	const base = a.step.replace(/\[\d+\]$/, '');
	if (HELD_TYPES.has(typeOf(base))) {
		return COORD_LANE;
	}
	return a.node || QUEUE_LANE;
}

// pack gives each attempt of one lane the first sub-row where it does
// not overlap the one before it (bars sorted by start).
function pack(list, now) {
	const rowsEnd = [];
	for (const a of list.sort((x, y) => x.ready - y.ready)) {
		const end = a.ended || now;
		let r = rowsEnd.findIndex((e) => e <= a.ready);
		if (r < 0) {
			r = rowsEnd.length;
			rowsEnd.push(end);
		} else {
			rowsEnd[r] = end;
		}
		a.row = r;
	}
	return Math.max(1, rowsEnd.length);
}

// renderTimeline returns the chart's SVG markup for attempts, width px
// wide. opts: {mode: 'worker'|'step', typeOf(step) → type, now: where
// bars that have not ended stop (the clock, or the run's end)}.
export function renderTimeline(attempts, width, opts) {
	const now = opts.now || Date.now();
	const typeOf = opts.typeOf || (() => '');
	if (attempts.length === 0) {
		return '';
	}
	let dropped = 0;
	if (attempts.length > MAX_BARS) {
		dropped = attempts.length - MAX_BARS;
		attempts = [...attempts].sort((x, y) => x.ready - y.ready).slice(dropped);
	}
	let t0 = Infinity;
	let t1 = -Infinity;
	for (const a of attempts) {
		t0 = Math.min(t0, a.ready);
		t1 = Math.max(t1, a.ended || now);
	}
	t1 = Math.max(t1, t0 + 1);
	const lanes = new Map();
	for (const a of attempts) {
		const l = laneOf(a, opts.mode, typeOf);
		if (!lanes.has(l)) {
			lanes.set(l, []);
		}
		lanes.get(l).push(a);
	}
	// Workers by name, the coordinator and the queue last; steps in the
	// order they first became ready.
	const names = [...lanes.keys()];
	if (opts.mode !== 'step') {
		const rank = (n) => (n === COORD_LANE ? 1 : n === QUEUE_LANE ? 2 : 0);
		names.sort((x, y) => rank(x) - rank(y) || x.localeCompare(y));
	}
	const hidden = Math.max(0, names.length - MAX_LANES);
	names.length = Math.min(names.length, MAX_LANES);
	const plotW = Math.max(100, width - LABEL_W - 2 * PAD);
	const x = (t) => LABEL_W + PAD + ((t - t0) / (t1 - t0)) * plotW;
	const parts = [];
	let y = AXIS_H;
	for (const name of names) {
		const list = lanes.get(name);
		const rows = pack(list, now);
		const laneH = rows * (ROW_H + ROW_GAP) + ROW_GAP;
		parts.push(`<g class="tl-lane" data-lane="${esc(name)}" data-rows="${rows}">`,
			`<rect class="tl-lane-bg" x="0" y="${y}" width="${width}" height="${laneH}"/>`,
			`<text class="tl-label" x="${PAD}" y="${y + ROW_GAP + ROW_H - 5}"><title>${esc(name)}</title>${esc(name.length > 20 ? `${name.slice(0, 19)}…` : name)}</text>`);
		for (const a of list) {
			const by = y + ROW_GAP + a.row * (ROW_H + ROW_GAP);
			const runFrom = a.started || a.ended || now;
			const end = a.ended || now;
			const wx = x(a.ready);
			const ww = Math.max(0, x(runFrom) - wx);
			const rx = x(runFrom);
			const rw = a.started ? Math.max(2, x(end) - rx) : 0;
			const tip = `${a.step} ${a.attempt ? `attempt ${a.attempt}` : 'ready'}${a.node ? ` on ${a.node}` : ''}: ${a.state.replace('_', ' ')}\n`
				+ `ready +${fmtDuration(a.ready - t0)}${a.started ? ` · started +${fmtDuration(a.started - t0)}` : ''}${a.ended ? ` · ended +${fmtDuration(a.ended - t0)}` : ''}\n`
				+ `queued ${fmtDuration(runFrom - a.ready)}${a.started ? ` · ran ${fmtDuration(end - a.started)}` : ''}`;
			parts.push(`<g class="tl-bar st-${a.state}" data-step="${esc(a.step)}" data-attempt="${a.attempt}" data-state="${a.state}" data-node="${esc(a.node || '')}"><title>${esc(tip)}</title>`,
				`<rect class="tl-wait" x="${wx.toFixed(1)}" y="${by}" width="${Math.max(1, ww).toFixed(1)}" height="${ROW_H}"/>`,
				rw ? `<rect class="tl-run" x="${rx.toFixed(1)}" y="${by}" width="${rw.toFixed(1)}" height="${ROW_H}"/>` : '',
				rw > 40 && opts.mode !== 'step' ? `<text class="tl-bar-text" x="${(rx + 4).toFixed(1)}" y="${by + ROW_H - 5}">${esc(a.step)}${a.attempt > 1 ? ` #${a.attempt}` : ''}</text>` : '',
				rw > 24 && opts.mode === 'step' ? `<text class="tl-bar-text" x="${(rx + 4).toFixed(1)}" y="${by + ROW_H - 5}">#${a.attempt}</text>` : '',
				'</g>');
		}
		parts.push('</g>');
		y += laneH;
	}
	// The axis: a tick every "nice" interval, times relative to the first
	// ready (what a reader compares), the clock time in the tooltip.
	const span = t1 - t0;
	const step = [10, 50, 100, 250, 500, 1e3, 2e3, 5e3, 1e4, 3e4, 6e4, 3e5, 6e5, 1.8e6, 3.6e6, 2.16e7, 8.64e7]
		.find((s) => span / s <= 8) || 8.64e7;
	const axis = [];
	for (let t = 0; t <= span; t += step) {
		const tx = x(t0 + t).toFixed(1);
		axis.push(`<line class="tl-tick" x1="${tx}" x2="${tx}" y1="${AXIS_H - 4}" y2="${y}"/>`,
			`<text class="tl-axis" x="${tx}" y="${AXIS_H - 8}"><title>${esc(fmtClock(t0 + t))}</title>+${esc(fmtDuration(t))}</text>`);
	}
	if (hidden || dropped) {
		const what = [hidden ? `${hidden} more lane${hidden === 1 ? '' : 's'}` : '',
			dropped ? `${dropped} earlier attempt${dropped === 1 ? '' : 's'}` : ''].filter(Boolean).join(' and ');
		parts.push(`<text class="tl-more" x="${PAD}" y="${y + 14}">${what} not drawn</text>`);
		y += 20;
	}
	const h = y + PAD;
	return `<svg class="tl-svg" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${h}" viewBox="0 0 ${width} ${h}" role="img" aria-label="timeline">`
		+ `${axis.join('')}${parts.join('')}</svg>`;
}
