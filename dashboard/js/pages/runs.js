// runs page: the list of runs, newest first, filtered by status and
// definition and paged with ?before=RUNID. Live: a new run appears at the
// top of the first page, and run_* / step_* events update the visible rows
// in place; a row is re-read from GET /runs/{id} only when an event says
// its stored summary changed in a way events do not carry (an ending, a
// retry).
import { api } from '../api.js';
import {
	h, clear, fill, badge, timeCell, fmtDuration, fmtTime, runStates, eventInfo, runStatusOf,
	runEnded, debounceMap, tagChips, loadingRow, loadFailed,
} from '../util.js';

const PAGE_DEFAULT = 50;

// stepEndedBy reports whether an event type ends its step.
function stepEndedBy(type) {
	const t = eventInfo(type);
	return Boolean(t && t.scope === 'step' && t.terminal);
}

export function mount(root, ctx) {
	const q = { status: ctx.query.status || '', definition: ctx.query.definition || '', tag: ctx.query.tag || '', before: ctx.query.before || '' };
	const n = Number(ctx.query.limit);
	const PAGE = Number.isInteger(n) && n > 0 && n <= 500 ? n : PAGE_DEFAULT;
	if (PAGE !== PAGE_DEFAULT) {
		q.limit = PAGE;
	}
	const rows = new Map(); // run id -> {run, tr}
	let order = [];         // run ids shown, newest first
	let alive = true;
	const cursors = [];     // cursors of the pages before this one
	let hasOlder = false; // the coordinator cut this page (next_before)

	const statusSel = h('select', { id: 'f-status', 'aria-label': 'status' },
		h('option', { value: '' }, 'any status'),
		runStates().map((s) => h('option', { value: s, selected: s === q.status }, s.replace('_', ' '))));
	const defSel = h('select', { id: 'f-definition', 'aria-label': 'definition' },
		h('option', { value: '' }, 'any definition'));
	if (q.definition) {
		defSel.append(h('option', { value: q.definition, selected: true }, q.definition));
	}
	// One tag filter, key=value (the API takes up to 8: ?tag=&tag=).
	const tagIn = h('input', {
		id: 'f-tag', type: 'search', 'aria-label': 'tag', placeholder: 'tag key=value',
		value: q.tag, size: 18,
	});
	const tbody = h('tbody', null, loadingRow(6));
	const info = h('div', { class: 'muted small', id: 'runs-info' });
	const err = h('div', { class: 'alert error', hidden: true });
	const newer = h('button', { class: 'btn', type: 'button', id: 'page-newer' }, '← Newer');
	const older = h('button', { class: 'btn', type: 'button', id: 'page-older' }, 'Older →');

	root.append(
		h('div', { class: 'page-head' },
			h('h1', null, 'Runs'),
			h('div', { class: 'filters' }, statusSel, defSel, tagIn,
				h('a', { class: 'btn primary', href: '#/new' }, '+ New run'))),
		err,
		h('div', { class: 'table-wrap' },
			h('table', { class: 'table runs', id: 'runs-table' },
				h('thead', null, h('tr', null,
					h('th', null, 'Run'), h('th', null, 'Status'), h('th', null, 'Definition'),
					h('th', null, 'Started'), h('th', { class: 'num' }, 'Duration'),
					h('th', null, 'Progress'))),
				tbody)),
		h('div', { class: 'pager' }, newer, info, older),
	);

	function durationOf(r) {
		const start = r.started_ms || r.created_ms;
		if (!start) {
			return '—';
		}
		if (r.ended_ms) {
			return fmtDuration(r.ended_ms - start);
		}
		return runEnded(r.status) ? '—' : fmtDuration(Date.now() - start);
	}

	function progress(r) {
		const total = r.steps_total || 0;
		const done = Math.min(r.steps_done || 0, total);
		const pct = total ? Math.round((100 * done) / total) : 0;
		return h('div', { class: 'progress', title: `${done} of ${total} steps done` },
			h('div', { class: `bar st-${r.status}` }, h('span', { style: `width:${pct}%` })),
			h('span', { class: 'progress-text' }, `${done}/${total}`));
	}

	function renderRow(r) {
		const tr = h('tr', { 'data-run': r.id, 'data-status': r.status },
			h('td', { class: 'mono c-id' }, h('a', { href: `#/runs/${encodeURIComponent(r.id)}` }, r.id)),
			h('td', { class: 'status c-status', title: r.status === 'scheduled' && r.start_at_ms ? `starts ${fmtTime(r.start_at_ms)}` : null }, badge(r.status)),
			h('td', { class: 'c-def' }, h('span', null, r.definition), h('span', { class: 'muted' }, ` v${r.version}`),
				r.tags && Object.keys(r.tags).length ? [' ', tagChips(r.tags)] : null),
			h('td', { class: 'c-start' }, timeCell(r.started_ms || r.created_ms)),
			h('td', { class: 'num dur c-dur' }, durationOf(r)),
			h('td', { class: 'c-prog' }, progress(r)));
		if (r.error && r.status !== 'succeeded') {
			tr.title = r.error;
		}
		return tr;
	}

	function put(r) {
		const old = rows.get(r.id);
		const tr = renderRow(r);
		if (old) {
			old.tr.replaceWith(tr);
		}
		rows.set(r.id, { run: r, tr });
		return tr;
	}

	function empty() {
		if (order.length === 0) {
			fill(tbody, h('tr', { class: 'empty' }, h('td', { colspan: 6 },
				q.status || q.definition || q.tag ? 'No runs match these filters.' : 'No runs yet. Create one from “New run”.')));
		} else {
			const e = tbody.querySelector('tr.empty');
			if (e) {
				e.remove();
			}
		}
	}

	async function load() {
		err.hidden = true;
		ctx.setQuery(q);
		try {
			const got = await api.runs({ status: q.status, definition: q.definition, tag: q.tag, before: q.before, limit: PAGE });
			if (!alive) {
				return;
			}
			const list = got.runs;
			hasOlder = got.next_before !== null;
			clear(tbody);
			rows.clear();
			order = list.map((r) => r.id);
			for (const r of list) {
				tbody.append(put(r));
			}
			empty();
			newer.disabled = !q.before;
			older.disabled = !hasOlder;
			setInfo();
		} catch (e) {
			loadFailed(err, tbody, `Cannot load runs: ${e.message}`);
		}
	}

	async function loadDefinitions() {
		try {
			const defs = await api.definitions();
			if (!alive) {
				return;
			}
			for (const d of defs) {
				if (d.name !== q.definition) {
					defSel.append(h('option', { value: d.name }, d.name));
				}
			}
		} catch {
			// the filter still works by typed-in URL
		}
	}

	statusSel.addEventListener('change', () => {
		q.status = statusSel.value;
		q.before = '';
		cursors.length = 0;
		load();
	});
	defSel.addEventListener('change', () => {
		q.definition = defSel.value;
		q.before = '';
		cursors.length = 0;
		load();
	});
	tagIn.addEventListener('change', () => {
		q.tag = tagIn.value.trim();
		q.before = '';
		cursors.length = 0;
		load();
	});
	// Older goes on before the last row shown: next_before when the page is
	// as loaded, and no row is skipped after a live insert pushed some off.
	older.addEventListener('click', () => {
		if (order.length) {
			cursors.push(q.before);
			q.before = order[order.length - 1];
			load();
		}
	});
	newer.addEventListener('click', () => {
		q.before = cursors.length ? cursors.pop() : '';
		load();
	});

	// refresh re-reads one visible run from the API.
	const runEvents = new Map(); // run id -> run-level events seen
	const refresh = debounceMap(async (id) => {
		const seen = runEvents.get(id) || 0;
		try {
			// One step is enough: the row shows the run's own fields.
			const r = await api.run(id, { steps_limit: 1 });
			if (!alive || (runEvents.get(id) || 0) !== seen) {
				return; // a newer event came meanwhile; it refreshes again
			}
			// A listing row is a summary (what GET /runs gives).
			for (const k of ['steps', 'definition_body', 'input', 'params', 'output', 'next_after']) {
				delete r[k];
			}
			if (rows.has(id)) {
				put(r);
			} else {
				insert(r);
			}
		} catch {
			// it will be refreshed by its next event
		}
	}, 250);

	function matches(r) {
		const eq = q.tag.indexOf('=');
		const tagOk = !q.tag || (eq > 0 && r.tags && r.tags[q.tag.slice(0, eq)] === q.tag.slice(eq + 1));
		return (!q.status || r.status === q.status) && (!q.definition || r.definition === q.definition) && tagOk;
	}

	// insert puts a new run at its place on the first page.
	function insert(r) {
		if (q.before || rows.has(r.id) || !matches(r)) {
			return;
		}
		let i = 0;
		while (i < order.length && order[i] > r.id) {
			i++;
		}
		if (i >= PAGE) {
			return;
		}
		const tr = put(r);
		const next = order[i] ? rows.get(order[i]).tr : null;
		tbody.insertBefore(tr, next);
		order.splice(i, 0, r.id);
		while (order.length > PAGE) {
			const gone = order.pop();
			rows.get(gone).tr.remove();
			rows.delete(gone);
			hasOlder = true;
		}
		empty();
		setInfo();
		older.disabled = !hasOlder;
	}

	function setInfo() {
		const n = order.length;
		info.textContent = n ? `${n} run${n === 1 ? '' : 's'}${q.before ? ' (older page)' : ''}` : '';
	}

	function onEvents(events) {
		const touched = new Set();
		for (const ev of events) {
			if (!ev.run) {
				continue;
			}
			const row = rows.get(ev.run);
			if (!row) {
				if (ev.type === 'run_queued') {
					const d = ev.data || {};
					insert({
						id: ev.run, definition: d.definition || '?', version: d.version || 1,
						status: 'queued', created_ms: ev.ts_ms, started_ms: null, ended_ms: null,
						steps_total: d.steps || 0, steps_done: 0,
					});
				} else if (runStatusOf(ev.type) && !q.before && order.length > 0 && ev.run > order[0]) {
					refresh(ev.run); // newer than the page but its queue event was missed
				}
				continue;
			}
			const r = row.run;
			const st = runStatusOf(ev.type);
			if (st) {
				runEvents.set(ev.run, (runEvents.get(ev.run) || 0) + 1);
				r.status = st;
				if (ev.type === 'run_started' && !r.started_ms) {
					r.started_ms = ev.ts_ms;
				}
				if (runEnded(st)) {
					r.ended_ms = ev.ts_ms;
					refresh(ev.run); // output, error, exact counts
				}
				if (ev.type === 'run_retried') {
					r.ended_ms = null;
					refresh(ev.run);
				}
				touched.add(ev.run);
			} else if (stepEndedBy(ev.type) && ev.step && !ev.step.endsWith(']')) {
				// (a map step's items, "step[k]", are not steps of the total)
				r.steps_done = Math.min((r.steps_done || 0) + 1, r.steps_total || Infinity);
				touched.add(ev.run);
			}
		}
		for (const id of touched) {
			const row = rows.get(id);
			if (row) {
				put(row.run);
			}
		}
	}

	const unsub = ctx.stream.subscribe(onEvents);
	load();
	loadDefinitions();

	return {
		unmount() {
			alive = false;
			unsub();
			refresh.cancel();
		},
		tick() {
			for (const { run, tr } of rows.values()) {
				if (!runEnded(run.status)) {
					const cell = tr.querySelector('td.dur');
					if (cell) {
						cell.textContent = durationOf(run);
					}
				}
			}
		},
	};
}
