// metrics page: small live charts from the coordinator's GET /metrics
// (Prometheus text, parsed here), sampled every 2 s while the page is
// open, the last 5 minutes kept in memory (lost when the page closes:
// this is a glance, Prometheus is the history). Rates are differences
// between two samples: runs started (the runs of every status, counted
// by weft_runs), runs ended (those in an ended status), steps ended
// (weft_steps_succeeded_total + weft_steps_failed_total); the commit
// latency is the mean of the commits between two samples (the
// weft_store_commit_seconds histogram's sum and count).
import { h, runEnded, skeleton, dropPlaceholders } from '../util.js';

export const SAMPLE_MS = 2000;
const KEEP = 150; // 5 minutes of samples

// parseProm reads Prometheus text into [{name, labels: {k: v}, value}].
// Comments, and lines it cannot read, are skipped.
export function parseProm(text) {
	const out = [];
	const re = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/;
	for (const line of text.split('\n')) {
		if (line === '' || line.startsWith('#')) {
			continue;
		}
		const m = re.exec(line);
		if (!m) {
			continue;
		}
		const labels = {};
		if (m[2]) {
			for (const [, k, v] of m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
				labels[k] = v.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
			}
		}
		const value = Number(m[3] === '+Inf' ? Infinity : m[3]);
		if (!Number.isNaN(value)) {
			out.push({ name: m[1], labels, value });
		}
	}
	return out;
}

// totals sums what a sample needs from the parsed metrics.
export function totals(ms) {
	const t = { runs: 0, ended: 0, steps: 0, ready: null, workers: null, commitSum: 0, commitCount: 0 };
	for (const m of ms) {
		switch (m.name) {
		case 'weft_runs':
			t.runs += m.value;
			if (runEnded(m.labels.status)) {
				t.ended += m.value;
			}
			break;
		case 'weft_steps_succeeded_total':
		case 'weft_steps_failed_total':
			t.steps += m.value;
			break;
		case 'weft_ready_queue_depth':
			t.ready = m.value;
			break;
		case 'weft_workers_alive':
			t.workers = m.value;
			break;
		case 'weft_store_commit_seconds_sum':
			t.commitSum = m.value;
			break;
		case 'weft_store_commit_seconds_count':
			t.commitCount = m.value;
			break;
		default:
			break;
		}
	}
	return t;
}

const CHARTS = [
	{ key: 'runs_started', title: 'Runs started', unit: '/s', digits: 2 },
	{ key: 'runs_ended', title: 'Runs ended', unit: '/s', digits: 2 },
	{ key: 'steps', title: 'Steps ended', unit: '/s', digits: 1 },
	{ key: 'ready', title: 'Ready queue depth', unit: '', digits: 0 },
	{ key: 'commit_ms', title: 'Store commit latency (mean)', unit: ' ms', digits: 2 },
	{ key: 'workers', title: 'Workers alive', unit: '', digits: 0 },
];

// rate is the per-second increase between two counters; a counter that
// went down (a coordinator restart, runs deleted by retention) is no
// negative rate, just no data for that interval.
const rate = (a, b, dt) => (b >= a ? (b - a) / dt : null);

// pointsOf turns two samples' totals ({..., t: epoch ms}) into the
// charts' values at cur.t (prev null: the gauges only).
export function pointsOf(prev, cur) {
	const p = { ready: cur.ready, workers: cur.workers };
	if (prev) {
		const dt = (cur.t - prev.t) / 1000;
		p.runs_started = rate(prev.runs, cur.runs, dt);
		p.runs_ended = rate(prev.ended, cur.ended, dt);
		p.steps = rate(prev.steps, cur.steps, dt);
		const n = cur.commitCount - prev.commitCount;
		p.commit_ms = n > 0 ? ((cur.commitSum - prev.commitSum) / n) * 1000 : null;
	}
	return p;
}

export function mount(root) {
	let alive = true;
	let prev = null;
	const series = new Map(CHARTS.map((c) => [c.key, []])); // [{t, v}]
	const err = h('div', { class: 'alert error', id: 'metrics-error', hidden: true });
	const info = h('span', { class: 'muted small', id: 'metrics-info' }, 'sampling GET /metrics every 2 s');
	const cards = new Map();
	const grid = h('div', { class: 'charts', id: 'charts' });
	for (const c of CHARTS) {
		const now = h('div', { class: 'now' }, '—');
		const plot = h('div', { class: 'plot' }, skeleton(3));
		const card = h('section', { class: 'card chart', 'data-chart': c.key, 'data-samples': '0' },
			h('h2', null, c.title), now, plot);
		cards.set(c.key, { card, now, plot });
		grid.append(card);
	}
	root.append(h('div', { class: 'page-head' }, h('h1', null, 'Metrics'), info), err, grid);

	function push(key, t, v) {
		const s = series.get(key);
		s.push({ t, v });
		while (s.length > KEEP) {
			s.shift();
		}
	}

	let busy = false; // one request at a time, however slow the answer
	async function sample() {
		if (busy) {
			return;
		}
		busy = true;
		let text;
		try {
			const r = await fetch('/metrics', { headers: { Accept: 'text/plain' } });
			if (!r.ok) {
				throw new Error(`HTTP ${r.status}`);
			}
			text = await r.text();
		} catch (e) {
			err.textContent = `Cannot read /metrics: ${e.message}`;
			err.hidden = false;
			dropPlaceholders(grid);
			return;
		} finally {
			busy = false;
		}
		if (!alive) {
			return;
		}
		err.hidden = true;
		const t = Date.now();
		const cur = { ...totals(parseProm(text)), t };
		for (const [k, v] of Object.entries(pointsOf(prev, cur))) {
			push(k, t, v);
		}
		prev = cur;
		draw();
	}

	function draw() {
		for (const c of CHARTS) {
			const s = series.get(c.key);
			const { card, now, plot } = cards.get(c.key);
			const vals = s.filter((p) => p.v !== null && p.v !== undefined);
			const last = vals.length ? vals[vals.length - 1].v : null;
			now.textContent = last === null ? '—' : `${last.toFixed(c.digits)}${c.unit}`;
			card.dataset.samples = String(s.length);
			card.dataset.last = last === null ? '' : String(last);
			card.dataset.max = String(vals.reduce((m, p) => Math.max(m, p.v), 0));
			plot.innerHTML = svgOf(s, c);
		}
	}

	// svgOf draws a series as a line over its area, scaled to its own
	// maximum (at least 1), the last 5 minutes left to right; the SVG
	// stretches to the card (so its labels are HTML, not SVG text) and
	// its strokes keep their width.
	function svgOf(s, c) {
		const W = 300;
		const H = 80;
		const t1 = Date.now();
		const t0 = t1 - KEEP * SAMPLE_MS;
		const max = Math.max(1, ...s.filter((p) => p.v !== null).map((p) => p.v));
		const x = (t) => (((t - t0) / (t1 - t0)) * W).toFixed(1);
		const y = (v) => (H - 2 - (v / max) * (H - 6)).toFixed(1);
		const pts = s.filter((p) => p.v !== null && p.v !== undefined).map((p) => `${x(p.t)},${y(p.v)}`);
		const line = pts.length ? `<polyline class="line" vector-effect="non-scaling-stroke" points="${pts.join(' ')}"/>` : '';
		const area = pts.length > 1
			? `<polygon class="area" points="${pts[0].split(',')[0]},${H - 2} ${pts.join(' ')} ${pts[pts.length - 1].split(',')[0]},${H - 2}"/>` : '';
		return `<svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="${c.title}">`
			+ `<line class="grid" vector-effect="non-scaling-stroke" x1="0" x2="${W}" y1="${H - 2}" y2="${H - 2}"/>`
			+ `<line class="grid" vector-effect="non-scaling-stroke" x1="0" x2="${W}" y1="4" y2="4"/>${area}${line}</svg>`
			+ `<div class="axis"><span>−5 min</span><span>top ${max.toFixed(c.digits)}${c.unit}</span><span>now</span></div>`;
	}

	const timer = setInterval(sample, SAMPLE_MS);
	sample();
	return {
		unmount() {
			alive = false;
			clearInterval(timer);
		},
	};
}
