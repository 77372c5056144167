// run page: one run. Its DAG (layout computed here, SVG built once, node
// classes updated per event), a side panel for the selected step (attempts
// from the run's events, the `with` template, output, error, stderr tail,
// latest progress),
// the run's event log with a filter, and the lifecycle buttons. State comes
// from the run's full event history replayed in order, then from the live
// stream; nothing polls.
import { api, allEvents, wholeRun, ApiError } from '../api.js';
import { DagView, depsOf } from '../dag.js';
import { attemptsOf as timelineAttempts, renderTimeline } from '../timeline.js';
import {
	h, add, clear, fill, badge, timeCell, fmtClock, fmtClockShort, fmtTime, fmtDuration, pretty, short, summary,
	eventTypes, stepStates, eventState, runStatusOf, stepStatusOf, runEnded,
	stepEnded, debounceMap, isBlob, blobText, tagChips, skeleton, dropPlaceholders,
} from '../util.js';

const MAX_LOG_ROWS = 500;
const MAX_EVENT_PAGES = 100; // 100,000 events
const RESULT_LABEL = {
	step_succeeded: 'succeeded', step_failed: 'failed',
	step_retry_scheduled: 'failed, will retry', step_timed_out: 'timed out',
	step_lost: 'lost', step_cancelled: 'cancelled',
};
const ACTIONS = {
	cancel: new Set(['queued', 'running', 'paused']),
	pause: new Set(['running']),
	resume: new Set(['paused']),
	retry: new Set(['failed', 'cancelled', 'timed_out']),
};

// findDefinition returns the definition document of a run: from the run
// object when the coordinator includes it, else from the definitions list
// (latest version), else from the definition_registered events.
async function findDefinition(run) {
	if (run.definition_body && typeof run.definition_body === 'object') {
		return run.definition_body;
	}
	if (typeof run.definition_body === 'string') {
		try {
			return JSON.parse(run.definition_body);
		} catch {
			// fall through
		}
	}
	try {
		const defs = await api.definitions();
		const d = defs.find((x) => x.name === run.definition && x.version === run.version);
		if (d && d.definition) {
			return d.definition;
		}
	} catch {
		// fall through
	}
	let found = null;
	try {
		await allEvents({ type: 'definition_registered', text: run.definition }, (page) => {
			for (const ev of page) {
				const d = ev.data || {};
				if (d.name === run.definition && d.version === run.version && d.definition) {
					found = d.definition;
				}
			}
		}, { maxPages: 20 });
	} catch {
		// none
	}
	return found;
}

export function mount(root, ctx) {
	const runId = ctx.args[0];
	let alive = true;
	let run = null;
	let def = null;
	const steps = new Map();    // step id -> {id, type, status, attempt, node, output, error, started_ms, ended_ms}
	const defSteps = new Map(); // step id -> definition step
	const dependents = new Map();
	const mapKids = new Map();  // map step id -> Map(item id -> {state, error})
	const mapTotal = new Map(); // map step id -> item count (step_expanded)
	const expansions = new Map(); // expand step id -> ids it spliced in (step_expanded)
	let regraph = false;        // the graph changed shape: draw it again
	let events = [];
	let loaded = false;
	const early = [];
	let dag = null;
	let selected = ctx.query.step || null;
	const dirty = new Set();
	let dirtyRun = false;
	let newLog = [];
	let frame = 0;
	let runEvents = 0;          // run-level events applied so far

	// ---- skeleton ----
	const title = h('h1', { class: 'mono run-id' }, runId);
	const statusEl = h('span', { id: 'run-status' });
	const meta = h('div', { class: 'run-meta' }, skeleton(2));
	const actionsEl = h('div', { class: 'actions' });
	const actionMsg = h('div', { class: 'alert error', id: 'action-error', hidden: true });
	const runErr = h('div', { class: 'alert error', id: 'run-error', hidden: true });
	const dagBox = h('div', { class: 'dag-box', id: 'dag' }, h('div', { class: 'loading' }, 'Loading the step graph…'));
	const zoomBar = h('div', { class: 'zoom' },
		['fit', 'out', 'in', 'reset'].map((z) => h('button', {
			class: 'btn small', type: 'button', 'data-zoom': z,
			title: { fit: 'fit to width', out: 'zoom out', in: 'zoom in', reset: '100%' }[z],
			onclick: () => dag && dag.zoom(z),
		}, { fit: 'Fit', out: '−', in: '+', reset: '1:1' }[z])));
	const legend = h('div', { class: 'legend' },
		stepStates()
			.map((s) => h('span', { class: `legend-item st-${s}` }, h('i'), s.replace('_', ' '))));
	const side = h('aside', { class: 'side', id: 'step-panel' });
	const logType = h('select', { id: 'log-type', 'aria-label': 'event type' },
		h('option', { value: '' }, 'all types'), eventTypes('run', 'step')
			.map((t) => h('option', { value: t }, t)));
	const logStep = h('input', { id: 'log-step', type: 'search', placeholder: 'step', list: 'run-step-ids', 'aria-label': 'step' });
	const logText = h('input', { id: 'log-text', type: 'search', placeholder: 'filter: type, step or text', 'aria-label': 'text' });
	const stepList = h('datalist', { id: 'run-step-ids' });
	const logInfo = h('span', { class: 'muted small', id: 'log-info' });
	const logBody = h('tbody', null, h('tr', { class: 'empty placeholder' }, h('td', { colspan: 7 }, 'Loading the events…')));
	const loadErr = h('div', { class: 'alert error', hidden: true });
	// The timeline (timeline.js): lanes per worker or per step, the choice
	// remembered in this browser.
	let tlMode = localStorage.getItem('weft.timeline.mode') === 'step' ? 'step' : 'worker';
	const tlBox = h('div', { class: 'tl-box', id: 'timeline' }, h('div', { class: 'loading placeholder' }, 'Loading the timeline…'));
	const tlModeBtns = ['worker', 'step'].map((m) => h('button', {
		class: `btn small${m === tlMode ? ' active' : ''}`, type: 'button', 'data-tl-mode': m,
		'aria-pressed': String(m === tlMode),
		onclick: () => {
			tlMode = m;
			localStorage.setItem('weft.timeline.mode', m);
			for (const b of tlModeBtns) {
				b.classList.toggle('active', b.dataset.tlMode === m);
				b.setAttribute('aria-pressed', String(b.dataset.tlMode === m));
			}
			drawTimeline();
		},
	}, m === 'worker' ? 'Per worker' : 'Per step'));

	root.append(
		h('div', { class: 'page-head run-head' },
			h('div', { class: 'run-title' },
				h('a', { href: '#/runs', class: 'back' }, '← Runs'),
				title, statusEl),
			actionsEl),
		meta, actionMsg, runErr, loadErr,
		h('div', { class: 'run-body' },
			h('section', { class: 'card dag-card' },
				h('div', { class: 'card-head' }, h('h2', null, 'Steps'), legend, zoomBar),
				dagBox),
			side),
		h('section', { class: 'card tl-card' },
			h('div', { class: 'card-head' }, h('h2', null, 'Timeline'),
				// tl-key, not legend-item: the step states' legend is that.
				h('div', { class: 'legend tl-legend' },
					h('span', { class: 'tl-key tl-key-wait' }, h('i'), 'queued'),
					h('span', { class: 'tl-key st-running' }, h('i'), 'running'),
					h('span', { class: 'tl-key st-succeeded' }, h('i'), 'succeeded'),
					h('span', { class: 'tl-key st-failed' }, h('i'), 'failed')),
				h('div', { class: 'zoom', id: 'tl-mode' }, tlModeBtns)),
			tlBox),
		h('section', { class: 'card log-card' },
			h('div', { class: 'card-head' },
				h('h2', null, 'Events'),
				h('div', { class: 'filters' }, logType, logStep, logText, stepList),
				logInfo,
				h('a', { class: 'small', href: `#/events?run=${encodeURIComponent(runId)}` }, 'open in event log')),
			// No scroll box of its own: the page scrolls (at most
			// MAX_LOG_ROWS rows), so there is one scroll bar, not two.
			h('div', { class: 'table-wrap log-wrap' },
				h('table', { class: 'table events compact', id: 'run-events' },
					h('colgroup', null, ['id', 'time', 'type', 'step', 'att', 'node', 'details']
						.map((c) => h('col', { class: `c-${c}` }))),
					h('thead', null, h('tr', null,
						h('th', null, '#'), h('th', null, 'Time'), h('th', null, 'Type'),
						h('th', null, 'Step'), h('th', { class: 'num' }, 'Att.'), h('th', null, 'Node'),
						h('th', null, 'Details'))),
					logBody))),
	);

	// ---- lifecycle ----
	for (const action of Object.keys(ACTIONS)) {
		actionsEl.append(h('button', {
			class: `btn action-${action}${action === 'cancel' ? ' danger' : ''}`, type: 'button',
			'data-action': action, disabled: true,
			onclick: () => doAction(action),
		}, action[0].toUpperCase() + action.slice(1)));
	}

	async function doAction(action) {
		actionMsg.hidden = true;
		const btn = actionsEl.querySelector(`[data-action=${action}]`);
		btn.disabled = true;
		const seen = runEvents;
		try {
			const res = await api.lifecycle(runId, action);
			// The answer's status is news only if no run event (which may
			// be newer) arrived meanwhile.
			if (res && res.status && run && runEvents === seen) {
				run.status = res.status;
				dirtyRun = true;
				schedule();
			}
		} catch (e) {
			actionMsg.textContent = `Cannot ${action}: ${e.message}${e instanceof ApiError && e.status ? ` (HTTP ${e.status})` : ''}`;
			actionMsg.hidden = false;
		} finally {
			updateActions();
		}
	}

	function updateActions() {
		for (const btn of actionsEl.querySelectorAll('button[data-action]')) {
			btn.disabled = !run || !ACTIONS[btn.dataset.action].has(run.status);
		}
	}

	// ---- state ----
	function applyEvent(ev) {
		const rs = runStatusOf(ev.type);
		if (rs) {
			runEvents++;
			run.status = rs;
			if (ev.type === 'run_started' && !run.started_ms) {
				run.started_ms = ev.ts_ms;
			}
			if (runEnded(rs)) {
				run.ended_ms = ev.ts_ms;
				if (ev.data && ev.data.output !== undefined) {
					run.output = ev.data.output;
				}
				if (ev.data && ev.data.error) {
					run.error = ev.data.error;
				} else if (rs !== 'succeeded') {
					run.error = (ev.data && ev.data.reason) || run.error || rs;
				}
				run.why = (ev.data && (ev.data.error || ev.data.reason)) || null;
				run.failedSteps = (ev.data && ev.data.failed_steps) || null;
			}
			if (ev.type === 'run_retried') {
				// A step that starts over discards its expansion.
				for (const x of [...expansions.keys()]) {
					if ((steps.get(x) || {}).status !== 'succeeded') {
						dropExpansion(x);
					}
				}
				run.ended_ms = null;
				run.error = null;
				run.why = null;
				// The event names the steps it reset (a retry from a step
				// resets succeeded ones too); an older log's whole retry
				// ({}) reset what did not succeed.
				const reset = ev.data && Array.isArray(ev.data.steps) ? new Set(ev.data.steps) : null;
				for (const s of steps.values()) {
					if (reset ? reset.has(s.id) : s.status !== 'succeeded') {
						s.status = 'pending';
						dirty.add(s.id);
					}
				}
			}
			dirtyRun = true;
			return;
		}
		if (!ev.step) {
			return;
		}
		let s = steps.get(ev.step);
		if (!s) {
			// An item of a map step: "step[k]".
			const m = ev.step.match(/^(.*)\[(\d+)\]$/);
			if (m && steps.has(m[1])) {
				const st = stepStatusOf(ev.type);
				if (st) {
					if (!mapKids.has(m[1])) {
						mapKids.set(m[1], new Map());
					}
					const kids = mapKids.get(m[1]);
					const k = kids.get(ev.step) || { state: 'pending', error: null, node: null, index: Number(m[2]) };
					k.state = st;
					k.node = ev.node || k.node;
					if (ev.data && ev.data.error) {
						k.error = ev.data.error;
					} else if (st === 'succeeded') {
						k.error = null;
					}
					kids.set(ev.step, k);
					dirty.add(m[1]);
				}
			}
			return;
		}
		const st = stepStatusOf(ev.type);
		if (st) {
			s.status = st;
		}
		if (ev.type === 'step_expanded' && ev.data && Array.isArray(ev.data.steps)) {
			// An expand step: its sub-graph joins the graph, as a group.
			addExpansion(s.id, ev.data.steps);
		} else if (ev.type === 'step_expanded') {
			mapTotal.set(s.id, (ev.data && ev.data.count) || 0);
			mapKids.set(s.id, new Map());
			s.started_ms = ev.ts_ms;
			s.ended_ms = null;
		}
		if (ev.attempt) {
			s.attempt = ev.attempt;
		}
		const d = ev.data || {};
		switch (ev.type) {
		case 'step_ready':
			s.ended_ms = null;
			break;
		case 'step_dispatched':
			s.node = ev.node || s.node;
			s.started_ms = ev.ts_ms;
			s.ended_ms = null;
			break;
		case 'step_started':
			s.node = ev.node || s.node;
			s.started_ms = ev.ts_ms;
			break;
		case 'child_started':
			// A workflow step: its child run, linked live.
			s.child_run = d.child_run || s.child_run;
			break;
		case 'step_succeeded':
			s.output = d.output;
			s.error = null;
			s.ended_ms = ev.ts_ms;
			break;
		case 'step_failed':
		case 'step_retry_scheduled':
			s.error = d.error || s.error;
			s.ended_ms = ev.ts_ms;
			break;
		case 'step_timed_out':
		case 'step_lost':
			s.error = d.error || ev.type.replace('step_', '');
			break;
		case 'step_skipped':
			s.ended_ms = ev.ts_ms;
			break;
		case 'step_upstream_failed':
			s.error = d.error || s.error;
			s.ended_ms = ev.ts_ms;
			break;
		case 'step_progress':
			s.progress = { value: d.progress, attempt: ev.attempt, ts_ms: ev.ts_ms };
			break;
		default:
			break;
		}
		dirty.add(s.id);
		dirtyRun = true;
	}

	// addExpansion adds the steps expand step x spliced in (their
	// definitions from step_expanded: ids and depends_on in full).
	function addExpansion(x, list) {
		dropExpansion(x);
		const ids = [];
		for (const ds of list) {
			if (!ds || typeof ds.id !== 'string') {
				continue;
			}
			ids.push(ds.id);
			defSteps.set(ds.id, ds);
			if (!steps.has(ds.id)) {
				steps.set(ds.id, { id: ds.id, type: ds.type, status: 'pending', attempt: 0 });
				stepList.append(h('option', { value: ds.id }));
			}
		}
		expansions.set(x, ids);
		regraph = true;
	}

	// dropExpansion removes x's expansion, nested ones with it.
	function dropExpansion(x) {
		const ids = expansions.get(x);
		if (!ids) {
			return;
		}
		expansions.delete(x);
		for (const id of ids) {
			dropExpansion(id);
			steps.delete(id);
			defSteps.delete(id);
			mapKids.delete(id);
			mapTotal.delete(id);
		}
		regraph = true;
	}

	// graphOf lists the graph's nodes: each step, its expansion right after
	// it, with layout edges that keep an expansion between its step and the
	// step's dependents (they wait for all of it); and the groups to draw.
	function graphOf() {
		const order = [];
		const seen = new Set();
		const put = (id) => {
			if (seen.has(id) || !steps.has(id)) {
				return;
			}
			seen.add(id);
			order.push(id);
			for (const k of expansions.get(id) || []) {
				put(k);
			}
		};
		for (const id of steps.keys()) {
			put(id);
		}
		const deps = new Map(order.map((id) => [id,
			depsOf(defSteps.get(id) || {}).filter((d) => steps.has(d))]));
		const groups = [];
		for (const [x, ids] of expansions) {
			const inside = new Set(ids);
			const leaves = ids.filter((id) => !ids.some((o) => (deps.get(o) || []).includes(id)));
			for (const id of ids) {
				if (!(deps.get(id) || []).some((d) => inside.has(d))) {
					deps.get(id).push(x);
				}
			}
			for (const [id, ds] of deps) {
				if (!inside.has(id) && ds.includes(x)) {
					ds.push(...leaves.filter((l) => !ds.includes(l)));
				}
			}
			groups.push({ id: x, members: order.filter((id) => id.startsWith(`${x}.`)) });
		}
		const nodes = order.map((id) => ({
			id, type: steps.get(id).type || (defSteps.get(id) || {}).type, deps: deps.get(id),
		}));
		return { nodes, groups };
	}

	// drawDag (re)builds the graph view and puts back every node's state.
	function drawDag() {
		const { nodes, groups } = graphOf();
		const t0 = performance.now();
		dag = new DagView(dagBox, nodes, { groups, onSelect: (id) => select(id === selected ? null : id) });
		dagBox.dataset.layoutMs = String(Math.round(performance.now() - t0));
		dagBox.dataset.groups = String(groups.length);
		if (!def) {
			dagBox.prepend(h('div', { class: 'alert warn' }, 'The definition of this run could not be found; dependencies are not drawn.'));
		}
		// Fit the width, but never so small that labels cannot be read.
		dag.zoomTo(Math.max(0.45, Math.min(1, (dagBox.clientWidth - 4) / dag.lay.width)));
		for (const s of steps.values()) {
			dirty.add(s.id);
		}
		if (selected) {
			dag.select(selected);
		}
	}

	function onLive(evs) {
		const mine = evs.filter((ev) => ev.run === runId);
		if (mine.length === 0) {
			return;
		}
		if (!loaded) {
			early.push(...mine);
			return;
		}
		ingest(mine);
	}

	function ingest(evs) {
		const last = events.length ? events[events.length - 1].id : 0;
		for (const ev of evs) {
			if (ev.id <= last) {
				continue;
			}
			events.push(ev);
			newLog.push(ev);
			applyEvent(ev);
			if (runEnded(runStatusOf(ev.type))) {
				refreshRun(runId);
			}
		}
		schedule();
	}

	function schedule() {
		if (!frame) {
			frame = requestAnimationFrame(flush);
		}
	}

	// flush writes the accumulated changes to the DOM, once per frame.
	function flush() {
		frame = 0;
		if (!alive || !run) {
			return;
		}
		if (dag && regraph) {
			regraph = false;
			drawDag();
		}
		if (dag) {
			for (const id of dirty) {
				const s = steps.get(id);
				if (s) {
					dag.setState(id, s.status);
				}
				const kids = mapKids.get(id);
				if (kids) {
					const c = itemCounts(id);
					dag.setCount(id, `${c.done}/${c.total}`);
				}
			}
		}
		if (selected && dirty.has(selected)) {
			renderSide();
		}
		dirty.clear();
		if (dirtyRun) {
			renderHead();
			dirtyRun = false;
		}
		if (newLog.length) {
			appendLog(newLog);
			newLog = [];
			scheduleTimeline();
		}
	}

	// scheduleTimeline redraws the timeline soon: at most every 500 ms,
	// or ten times as long as the last draw took (a huge run's chart
	// costs tens of ms; the page stays responsive while it streams).
	let tlTimer = 0;
	let tlCost = 0;
	let tlLast = 0;
	function scheduleTimeline() {
		if (tlTimer) {
			return;
		}
		const wait = Math.max(0, tlLast + Math.max(500, 10 * tlCost) - Date.now());
		tlTimer = setTimeout(() => {
			tlTimer = 0;
			if (alive) {
				drawTimeline();
			}
		}, wait);
	}

	// drawTimeline draws the attempts anew from the events (one pass,
	// one SVG string; timeline.js caps the bars and lanes).
	function drawTimeline() {
		if (!loaded) {
			return;
		}
		const start = performance.now();
		tlLast = Date.now();
		const atts = timelineAttempts(events);
		tlBox.dataset.attempts = String(atts.length);
		tlBox.dataset.mode = tlMode;
		if (atts.length === 0) {
			tlBox.innerHTML = '<p class="muted small tl-empty">No attempts yet.</p>';
			return;
		}
		const typeOf = (id) => (steps.get(id) || {}).type || (defSteps.get(id) || {}).type || '';
		const now = run && runEnded(run.status) && run.ended_ms ? run.ended_ms : Date.now();
		tlBox.innerHTML = renderTimeline(atts, Math.max(320, tlBox.clientWidth - 2), { mode: tlMode, typeOf, now });
		tlBox.dataset.drawnAt = String(Date.now());
		tlCost = performance.now() - start;
		tlBox.dataset.drawMs = String(Math.round(tlCost));
	}

	// itemCounts counts the items of map step id by state.
	function itemCounts(id) {
		const kids = mapKids.get(id) || new Map();
		const c = { total: Math.max(mapTotal.get(id) || 0, kids.size), done: 0, failed: 0, running: 0 };
		for (const k of kids.values()) {
			c.done += stepEnded(k.state) ? 1 : 0;
			c.failed += k.state === 'failed' ? 1 : 0;
			c.running += k.state === 'running' || k.state === 'dispatched' ? 1 : 0;
		}
		return c;
	}

	// ---- header ----
	function renderHead() {
		fill(statusEl, badge(run.status));
		let done = 0;
		for (const s of steps.values()) {
			done += stepEnded(s.status) ? 1 : 0;
		}
		const total = steps.size || run.steps_total || 0;
		const pct = total ? Math.round((100 * done) / total) : 0;
		const start = run.started_ms || run.created_ms;
		const dur = start ? (run.ended_ms || (runEnded(run.status) ? null : Date.now())) : null;
		fill(meta,
			h('div', { class: 'kv' }, h('span', null, 'Definition'),
				h('span', null, run.definition, h('span', { class: 'muted' }, ` v${run.version}`))),
			run.parent ? h('div', { class: 'kv' }, h('span', null, 'Parent'),
				h('span', null, h('a', { id: 'run-parent', class: 'mono', href: `#/runs/${encodeURIComponent(run.parent.run_id)}` }, run.parent.run_id),
					h('span', { class: 'muted' }, ` step ${run.parent.step}`))) : null,
			h('div', { class: 'kv' }, h('span', null, 'Created'), timeCell(run.created_ms)),
			run.start_at_ms ? h('div', { class: 'kv', id: 'run-start-at' }, h('span', null, 'Starts at'), timeCell(run.start_at_ms)) : null,
			h('div', { class: 'kv' }, h('span', null, 'Started'), timeCell(run.started_ms)),
			h('div', { class: 'kv' }, h('span', null, 'Ended'), timeCell(run.ended_ms)),
			h('div', { class: 'kv' }, h('span', null, 'Duration'),
				h('span', { id: 'run-duration' }, dur ? fmtDuration(dur - start) : '—')),
			// Scheduling: its priority; a running run's ETA from the
			// durations learned (null without history); why a queued
			// run waits (a concurrency limit).
			h('div', { class: 'kv' }, h('span', null, 'Priority'),
				h('span', { id: 'run-priority' }, String(run.priority || 0))),
			run.status === 'running' ? h('div', { class: 'kv' }, h('span', null, 'ETA'),
				h('span', { id: 'run-eta' }, run.eta_ms ? timeCell(run.eta_ms) : 'no history yet')) : null,
			run.status === 'queued' && run.run_waiting ? h('div', { class: 'kv' }, h('span', null, 'Waiting'),
				h('span', { id: 'run-waiting' }, run.run_waiting.message)) : null,
			h('div', { class: 'kv kv-progress' }, h('span', null, 'Progress'),
				h('div', { class: 'progress', id: 'run-progress' },
					h('div', { class: `bar st-${run.status}` }, h('span', { style: `width:${pct}%` })),
					h('span', { class: 'progress-text' }, `${done}/${total} steps`))),
			runParams(),
			run.tags && Object.keys(run.tags).length ? h('div', { class: 'kv' }, h('span', null, 'Tags'),
				tagChips(run.tags, 'run-tags')) : null,
		);
		if (runEnded(run.status) && run.status !== 'succeeded') {
			// The events' reason is better than the store's placeholder.
			const why = run.why || (run.error !== run.status ? run.error : null);
			const failed = run.failedSteps && run.failedSteps.length ? ` (${run.failedSteps.join(', ')})` : '';
			runErr.textContent = `Run ${run.status.replace('_', ' ')}${why ? `: ${why}` : ''}${failed}`;
			runErr.className = `alert ${run.status === 'cancelled' ? 'warn' : 'error'}`;
			runErr.hidden = false;
		} else {
			runErr.hidden = true;
		}
		updateActions();
		document.title = `${run.status} · ${run.definition} · weft`;
	}

	// valueView shows a JSON value; one over 64 KiB is a reference (its
	// size and start) with a link to the whole of it at url, when the
	// API serves it (outputs), never loaded into the page unasked.
	function valueView(v, url, attrs = {}) {
		if (!isBlob(v)) {
			return h('pre', { class: 'json', ...attrs }, pretty(v));
		}
		return h('div', { class: 'blob', ...attrs },
			h('pre', { class: 'json blob-preview' }, blobText(v)),
			url ? h('a', { class: 'blob-link small', href: url, target: '_blank', rel: 'noopener' },
				`Open the whole value (${v.size} bytes)`)
				: h('p', { class: 'muted small' }, `${v.size} bytes, stored once; the events show this reference.`));
	}

	function runParams() {
		const parts = [];
		const filled = (v) => v && (isBlob(v) || Object.keys(v).length);
		if (filled(run.params)) {
			parts.push(h('details', { class: 'json-details' }, h('summary', null, 'Params'), valueView(run.params, null)));
		}
		if (filled(run.input)) {
			parts.push(h('details', { class: 'json-details' }, h('summary', null, 'Input'), valueView(run.input, null)));
		}
		if (run.output !== undefined && run.output !== null) {
			parts.push(h('details', { class: 'json-details' }, h('summary', null, 'Output'),
				valueView(run.output, api.outputUrl(runId))));
		}
		return parts.length ? h('div', { class: 'kv kv-wide' }, parts) : null;
	}

	// ---- side panel ----
	function attemptsOf(id) {
		const by = new Map();
		for (const ev of events) {
			if (ev.step !== id || !ev.attempt) {
				continue;
			}
			let a = by.get(ev.attempt);
			if (!a) {
				a = { n: ev.attempt, node: null, ready: null, dispatched: null, started: null, ended: null, result: null, error: null, duration: null, stderr: null, exit: null };
				by.set(ev.attempt, a);
			}
			if (ev.node) {
				a.node = ev.node;
			}
			const d = ev.data || {};
			switch (ev.type) {
			case 'step_ready': a.ready = a.ready || ev.ts_ms; break;
			case 'step_dispatched': a.dispatched = ev.ts_ms; break;
			case 'step_started': a.started = ev.ts_ms; break;
			case 'step_succeeded':
			case 'step_failed':
			case 'step_retry_scheduled':
			case 'step_timed_out':
			case 'step_lost':
			case 'step_cancelled':
				if (!a.result) {
					a.result = RESULT_LABEL[ev.type];
					a.resultState = eventState(ev.type);
				}
				a.ended = a.ended || ev.ts_ms;
				if (d.error) {
					a.error = d.error;
				}
				if (d.duration_ms !== undefined) {
					a.duration = d.duration_ms;
				}
				if (d.stderr_tail) {
					a.stderr = d.stderr_tail;
				}
				if (d.exit_code !== undefined) {
					a.exit = d.exit_code;
				}
				break;
			default:
				break;
			}
		}
		return [...by.values()].sort((x, y) => x.n - y.n);
	}

	function section(name, ...body) {
		return h('div', { class: 'side-sec' }, h('h3', null, name), ...body);
	}

	function stepLink(id) {
		return h('a', { href: '#', class: 'mono', onclick: (e) => { e.preventDefault(); select(id, true); } }, id);
	}

	function renderSide() {
		clear(side);
		if (!selected || !steps.has(selected)) {
			side.append(h('div', { class: 'side-empty muted' },
				h('p', null, 'Select a step in the graph to see its attempts, input, output and errors.')));
			side.classList.remove('has-step');
			return;
		}
		side.classList.add('has-step');
		const s = steps.get(selected);
		const ds = defSteps.get(selected) || {};
		const atts = attemptsOf(selected);
		const lastFail = [...atts].reverse().find((a) => a.error || a.stderr);
		const skip = s.status === 'skipped'
			? [...events].reverse().find((ev) => ev.step === s.id && ev.type === 'step_skipped') : null;
		const error = s.status === 'succeeded' ? null : (s.error || (lastFail && lastFail.error));
		const stderr = lastFail && lastFail.stderr;
		const deps = depsOf(ds);
		const outs = dependents.get(selected) || [];
		add(side,
			h('div', { class: 'side-head' },
				h('h2', { class: 'mono', id: 'side-step-id' }, s.id),
				badge(s.status),
				h('button', { class: 'btn small ghost close', type: 'button', title: 'close', onclick: () => select(null) }, '×')),
			h('dl', { class: 'facts' },
				h('dt', null, 'Type'), h('dd', null, s.type || ds.type || '—'),
				h('dt', null, 'Attempt'), h('dd', null, String(s.attempt || 0)),
				h('dt', null, 'Worker'), h('dd', { class: 'mono' }, s.node || '—'),
				s.child_run ? [h('dt', null, 'Child run'), h('dd', null,
					h('a', { id: 'side-child-run', class: 'mono', href: `#/runs/${encodeURIComponent(s.child_run)}` }, s.child_run))] : null,
				h('dt', null, 'Started'), h('dd', null, s.started_ms ? fmtTime(s.started_ms) : '—'),
				h('dt', null, 'Ended'), h('dd', null, s.ended_ms ? fmtTime(s.ended_ms) : '—'),
				h('dt', null, 'Duration'), h('dd', null, s.started_ms && s.ended_ms ? fmtDuration(s.ended_ms - s.started_ms) : '—'),
				deps.length ? [h('dt', null, 'Needs'), h('dd', null, deps.map((d, i) => [i ? ', ' : '', stepLink(d)]))] : null,
				outs.length ? [h('dt', null, 'Feeds'), h('dd', null, outs.slice(0, 20).map((d, i) => [i ? ', ' : '', stepLink(d)]), outs.length > 20 ? ` and ${outs.length - 20} more` : '')] : null,
				ds.trigger ? [h('dt', null, 'Trigger'), h('dd', { class: 'mono' }, ds.trigger)] : null,
				ds.when ? [h('dt', null, 'When'), h('dd', { class: 'mono' }, ds.when)] : null,
			),
			waitingSection(s),
			error ? section('Error', h('pre', { class: 'error-text', id: 'side-error' }, error)) : null,
			skip ? section('Skipped', h('p', { id: 'side-skipped' }, (skip.data && skip.data.reason) || 'skipped')) : null,
			stderr ? section('Stderr (tail)', h('pre', { class: 'stderr', id: 'side-stderr' }, stderr)) : null,
			s.progress ? section(`Progress (attempt ${s.progress.attempt || '?'}, ${fmtTime(s.progress.ts_ms)})`,
				h('pre', { class: 'progress-text', id: 'side-progress' },
					typeof s.progress.value === 'string' ? s.progress.value : JSON.stringify(s.progress.value))) : null,
			mapKids.has(s.id) || ds.map ? itemsSection(s.id, ds) : null,
			ds.map && atts.length === 0 ? null : section(`Attempts (${atts.length})`, atts.length === 0
				? h('p', { class: 'muted small' }, 'Not attempted yet.')
				: h('table', { class: 'table compact attempts', id: 'side-attempts' },
					h('thead', null, h('tr', null, h('th', null, '#'), h('th', null, 'Worker'),
						h('th', null, 'Started'), h('th', { class: 'num' }, 'Took'), h('th', null, 'Result'))),
					h('tbody', null, atts.map((a) => h('tr', null,
						h('td', null, String(a.n)),
						h('td', { class: 'mono' }, a.node || '—'),
						h('td', { class: 'nowrap', title: `ready ${fmtClock(a.ready)} · dispatched ${fmtClock(a.dispatched)} · started ${fmtClock(a.started)} · ended ${fmtClock(a.ended)}` },
							fmtClockShort(a.started || a.dispatched || a.ready)),
						h('td', { class: 'num nowrap' }, a.duration !== null ? fmtDuration(a.duration)
							: a.started && a.ended ? fmtDuration(a.ended - a.started) : '—'),
						h('td', { class: 'wrap' }, a.result
							? h('span', { class: `result st-${a.resultState}`, title: a.error || '' },
								a.result, a.exit !== null && a.exit !== undefined ? ` (exit ${a.exit})` : '')
							: h('span', { class: 'muted' }, a.started ? 'running' : a.dispatched ? 'dispatched' : 'ready'))))))),
			section('Input', h('p', { class: 'muted small' }, 'The rendered input is not stored; this is the step’s ', h('code', null, 'with'), ' template from the definition.'),
				h('pre', { class: 'json', id: 'side-input' }, ds.with !== undefined ? pretty(ds.with) : '(none)')),
			section('Output', s.output !== undefined && s.output !== null
				? valueView(s.output, api.outputUrl(runId, s.id), { id: 'side-output' })
				: h('p', { class: 'muted small', id: 'side-output' }, s.status === 'succeeded' ? 'null'
					: ['failed', 'skipped', 'cancelled', 'upstream_failed'].includes(s.status) ? `No output: the step ${s.status.replace('_', ' ')}.` : 'No output yet.')),
			retryFromSection(s),
			h('div', { class: 'side-foot' },
				h('a', { class: 'small', href: `#/events?run=${encodeURIComponent(runId)}&step=${encodeURIComponent(s.id)}` }, 'this step in the event log')),
		);
	}

	// retryFromSection offers, once the run has ended (succeeded too),
	// to run this step and everything downstream of it again (POST
	// .../retry {"from"}); the other steps keep their outputs.
	let retryFromMsg = null; // a refusal survives the panel's re-renders
	function retryFromSection(s) {
		// A map item ("m[3]") is not a step a retry can start from.
		if (!run || !runEnded(run.status) || s.id.includes('[')) {
			return null;
		}
		const msg = h('div', { class: 'alert error small', id: 'side-retry-from-msg', hidden: !retryFromMsg }, retryFromMsg || '');
		const btn = h('button', {
			class: 'btn small', type: 'button', id: 'side-retry-from',
			title: 'Run this step and every step downstream of it again; the others keep their outputs',
			onclick: async () => {
				btn.disabled = true;
				retryFromMsg = null;
				msg.hidden = true;
				try {
					await api.retryFrom(runId, s.id);
				} catch (e) {
					retryFromMsg = `Cannot retry from ${s.id}: ${e.message}`;
					msg.textContent = retryFromMsg;
					msg.hidden = false;
					btn.disabled = false;
				}
			},
		}, 'Retry from here');
		return section('Retry', btn, msg);
	}

	// waitingSection says why a step that has not ended is not done yet
	// (the status's waiting_for), when that answer is about the step's
	// current status.
	function waitingSection(s) {
		const w = s.waiting_for;
		if (!w || stepEnded(s.status) || s.waiting_status !== s.status) {
			return null;
		}
		const at = w.schedule_timeout_at_ms ? ` Schedule timeout at ${fmtTime(w.schedule_timeout_at_ms)}.` : '';
		return section('Waiting for',
			h('p', { id: 'side-waiting', class: `waiting wait-${w.reason}`, 'data-reason': w.reason },
				h('span', { class: 'badge' }, w.reason.replace('_', ' ')), ' ', w.message,
				w.schedule_timeout_at_ms ? h('span', { class: 'muted small' }, at) : null),
			w.reason === 'signal' && w.signal ? signalForm(s, w.signal) : null);
	}

	// signalForm: a wait step waiting for a signal gets Approve (the data,
	// JSON, becomes its output) and Reject (the reason becomes its error).
	// What is typed, and a refusal, survive the panel's re-renders.
	const signalDraft = { data: '', reason: '', error: '' };
	function signalForm(s, name) {
		const msg = h('p', { class: 'alert error small', id: 'side-signal-error', hidden: !signalDraft.error },
			signalDraft.error);
		const data = h('textarea', {
			class: 'mono', id: 'side-signal-data', rows: 3, placeholder: '{"comment": "…"} (optional JSON: the step\'s output)',
			oninput: (e) => { signalDraft.data = e.target.value; },
		}, signalDraft.data);
		const reason = h('input', {
			type: 'text', id: 'side-signal-reason', placeholder: 'reason (for a reject)', value: signalDraft.reason,
			oninput: (e) => { signalDraft.reason = e.target.value; },
		});
		async function send(reject, btn) {
			msg.hidden = true;
			signalDraft.error = '';
			btn.disabled = true;
			try {
				const body = reject ? { reason: signalDraft.reason || 'rejected from the dashboard' }
					: (signalDraft.data.trim() || '{}');
				await api.signal(runId, name, body, reject);
				signalDraft.data = '';
				signalDraft.reason = '';
			} catch (e) {
				signalDraft.error = `Cannot ${reject ? 'reject' : 'approve'}: ${e.message}${e instanceof ApiError && e.status ? ` (HTTP ${e.status})` : ''}`;
				// The panel may have been drawn again meanwhile.
				for (const el of [msg, side.querySelector('#side-signal-error')]) {
					if (el) {
						el.textContent = signalDraft.error;
						el.hidden = false;
					}
				}
			} finally {
				btn.disabled = false;
			}
		}
		const approve = h('button', { class: 'btn small', type: 'button', id: 'side-signal-approve' }, 'Approve');
		const reject = h('button', { class: 'btn small danger', type: 'button', id: 'side-signal-reject' }, 'Reject');
		approve.onclick = () => send(false, approve);
		reject.onclick = () => send(true, reject);
		return h('div', { class: 'signal-form', 'data-signal': name },
			h('p', { class: 'muted small' }, `Send signal `, h('code', null, name), ` to ${s.id}:`),
			data, reason, h('div', { class: 'signal-buttons' }, approve, ' ', reject), msg);
	}

	// itemsSection lists a map step's items: counts, then each item's
	// state and error (the first 200).
	function itemsSection(id, ds) {
		const c = itemCounts(id);
		const kids = [...(mapKids.get(id) || new Map()).entries()]
			.sort((a, b) => a[1].index - b[1].index).slice(0, 200);
		return section(`Items (${c.done}/${c.total} done)`,
			h('p', { class: 'small', id: 'side-items-summary' },
				`map over `, h('code', null, ds.map || '?'),
				ds.max_parallel ? `, at most ${ds.max_parallel} at once` : '',
				`: ${c.total} items, ${c.done} done, ${c.failed} failed, ${c.running} running.`),
			kids.length ? h('table', { class: 'table compact attempts', id: 'side-items' },
				h('tbody', null, kids.map(([kid, k]) => h('tr', { 'data-item': kid },
					h('td', { class: 'mono nowrap' }, kid),
					h('td', null, badge(k.state)),
					h('td', { class: 'mono' }, k.node || ''),
					h('td', { class: 'err' }, k.error || ''))))) : null);
	}

	function select(id, scroll) {
		const item = id && !steps.has(id) ? id.match(/^(.*)\[\d+\]$/) : null;
		if (item && steps.has(item[1])) {
			id = item[1]; // an item of a map step: show the map step
		}
		selected = id;
		if (dag) {
			dag.select(id);
			if (scroll && id) {
				dag.scrollTo(id);
			}
		}
		ctx.setQuery(id ? { step: id } : {});
		renderSide();
		if (id && window.matchMedia('(max-width: 900px)').matches) {
			side.scrollIntoView({ block: 'start', behavior: 'smooth' });
		}
	}

	// ---- event log ----
	function logMatch(ev) {
		if (logType.value && ev.type !== logType.value) {
			return false;
		}
		const st = logStep.value.trim();
		if (st && ev.step !== st) {
			return false;
		}
		const t = logText.value.trim().toLowerCase();
		if (t) {
			const hay = `${ev.type} ${ev.step || ''} ${ev.node || ''} ${JSON.stringify(ev.data || {})}`.toLowerCase();
			return t.split(/\s+/).every((w) => hay.includes(w));
		}
		return true;
	}

	function logRow(ev) {
		return h('tr', { 'data-id': ev.id, 'data-type': ev.type },
			h('td', { class: 'muted' }, String(ev.id)),
			h('td', { class: 'nowrap', title: fmtTime(ev.ts_ms) }, fmtClock(ev.ts_ms)),
			h('td', null, h('span', { class: `etype st-${eventState(ev.type)}` }, ev.type)),
			h('td', { class: 'mono' }, ev.step ? stepLink(ev.step) : ''),
			h('td', { class: 'num' }, ev.attempt ? String(ev.attempt) : ''),
			h('td', { class: 'mono small' }, ev.node || ''),
			h('td', { class: 'details', title: short(ev.data, 2000) }, summary(ev, 160)));
	}

	let shown = 0;
	let matched = 0;
	function renderLog() {
		const list = events.filter(logMatch);
		matched = list.length;
		const tail = list.slice(-MAX_LOG_ROWS);
		shown = tail.length;
		fill(logBody, ...tail.map(logRow));
		if (list.length === 0) {
			logBody.append(h('tr', { class: 'empty' }, h('td', { colspan: 7 }, events.length ? 'No events match the filter.' : 'No events yet.')));
		}
		logInfo.textContent = logInfoText();
	}

	function logInfoText() {
		return matched > shown ? `latest ${shown} of ${matched} matching (${events.length} total)`
			: `${matched} of ${events.length}`;
	}

	function appendLog(evs) {
		const add = evs.filter(logMatch);
		if (add.length === 0) {
			logInfo.textContent = logInfoText();
			return;
		}
		const emptyRow = logBody.querySelector('tr.empty');
		if (emptyRow) {
			emptyRow.remove();
		}
		const frag = document.createDocumentFragment();
		for (const ev of add) {
			frag.append(logRow(ev));
		}
		logBody.append(frag);
		matched += add.length;
		shown += add.length;
		while (shown > MAX_LOG_ROWS && logBody.firstChild) {
			logBody.firstChild.remove();
			shown--;
		}
		logInfo.textContent = logInfoText();
	}

	let logTimer = 0;
	for (const el of [logType, logStep, logText]) {
		el.addEventListener('input', () => {
			clearTimeout(logTimer);
			logTimer = setTimeout(renderLog, 120);
		});
	}

	// ---- loading ----
	const refreshRun = debounceMap(async () => {
		const seen = runEvents;
		try {
			const r = await wholeRun(runId, { maxPages: 20 });
			if (!alive || runEvents !== seen) {
				return; // the run moved on meanwhile (a retry)
			}
			for (const k of ['output', 'error', 'ended_ms', 'started_ms', 'created_ms']) {
				if (r[k] !== undefined && r[k] !== null) {
					run[k] = r[k];
				}
			}
			run.priority = r.priority || 0;
			run.eta_ms = r.eta_ms || null;
			run.run_waiting = r.waiting_for || null;
			// Why each step that has not ended waits (waiting_for): the
			// coordinator's view, valid for the status it was given with.
			for (const rs of r.steps || []) {
				const s = steps.get(rs.id);
				if (s) {
					s.waiting_for = rs.waiting_for || null;
					s.waiting_status = rs.status;
					dirty.add(s.id);
				}
			}
			dirtyRun = true;
			schedule();
		} catch {
			// keep what the events said
		}
	}, 300);
	let waitPolled = 0; // when the selected step's waiting_for was asked for
	let etaPolled = 0;  // when the run's ETA (or queued reason) was asked for

	async function load() {
		try {
			run = await wholeRun(runId);
		} catch (e) {
			clear(dagBox);
			loadErr.textContent = e.status === 404 ? `No run with id ${runId}.` : `Cannot load the run: ${e.message}`;
			loadErr.hidden = false;
			dropPlaceholders(root);
			clear(tlBox);
			return;
		}
		if (!alive) {
			return;
		}
		run.run_waiting = run.waiting_for || null; // a queued run's limit
		def = await findDefinition(run);
		if (!alive) {
			return;
		}
		for (const ds of (def && def.steps) || []) {
			defSteps.set(ds.id, ds);
			for (const d of depsOf(ds)) {
				if (!dependents.has(d)) {
					dependents.set(d, []);
				}
				dependents.get(d).push(ds.id);
			}
		}
		const list = (run.steps && run.steps.length) ? run.steps
			: [...defSteps.values()].map((ds) => ({ id: ds.id, type: ds.type, status: 'pending', attempt: 0 }));
		for (const s of list) {
			steps.set(s.id, { ...s, snapshot: s.status, waiting_status: s.status });
			if (s.items && Number.isFinite(s.items.total)) {
				mapTotal.set(s.id, s.items.total);
			}
			stepList.append(h('option', { value: s.id }));
		}
		drawDag();
		regraph = false;

		// The run's history, replayed from the start: the snapshot's
		// statuses are replaced by what the events say, which is at least
		// as new.
		const history = [];
		let complete = true;
		try {
			let pages = 0;
			await allEvents({ run: runId }, (page) => {
				pages++;
				history.push(...page);
			}, { maxPages: MAX_EVENT_PAGES });
			complete = pages < MAX_EVENT_PAGES;
		} catch (e) {
			complete = false;
			loadErr.textContent = `Cannot load the run's events: ${e.message}`;
			loadErr.hidden = false;
		}
		if (!alive) {
			return;
		}
		if (complete && history.length) {
			for (const s of steps.values()) {
				s.status = 'pending';
			}
		}
		events = [];
		for (const ev of history) {
			if (complete) {
				applyEvent(ev);
			}
			events.push(ev);
		}
		if (!complete) {
			for (const s of steps.values()) {
				s.status = s.snapshot || s.status;
			}
		}
		loaded = true;
		for (const s of steps.values()) {
			dirty.add(s.id);
		}
		dirtyRun = true;
		ingest(early.splice(0));
		flush();
		renderLog();
		scheduleTimeline(); // after the graph and the log are on screen
		if (selected) {
			select(selected, true);
		} else {
			renderSide();
		}
		root.dataset.loaded = '1';
	}

	renderSide();
	const unsub = ctx.stream.subscribe(onLive);
	load();

	return {
		unmount() {
			alive = false;
			unsub();
			refreshRun.cancel();
			cancelAnimationFrame(frame);
			clearTimeout(logTimer);
			clearTimeout(tlTimer);
		},
		tick() {
			// A selected step that waits: ask again why, every 2 s (what
			// workers advertise is not in the event stream).
			const sel = selected && steps.get(selected);
			if (run && sel && !runEnded(run.status) && !stepEnded(sel.status) &&
			    Date.now() - waitPolled >= 2000) {
				waitPolled = Date.now();
				refreshRun(runId);
			}
			if (run && (run.status === 'running' || run.status === 'queued') &&
			    Date.now() - etaPolled >= 5000) {
				etaPolled = Date.now();
				refreshRun(runId); // the ETA moves with each survey round
			}
			if (run && loaded && !runEnded(run.status)) {
				scheduleTimeline(); // bars still waiting or running grow to now
			}
			if (run && !runEnded(run.status)) {
				const el = document.getElementById('run-duration');
				const start = run.started_ms || run.created_ms;
				if (el && start) {
					el.textContent = fmtDuration(Date.now() - start);
				}
			}
		},
	};
}

