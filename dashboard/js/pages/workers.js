// workers page: every node the coordinator knows, with address, step
// types, slots used/total, last heartbeat and state. Live: worker_joined and
// worker_lost events change the row at once and trigger one re-read of
// GET /api/v1/workers (no polling on a timer).
import { api } from '../api.js';
import { h, clear, badge, timeCell, debounceMap, loadingRow, loadFailed } from '../util.js';

export function mount(root, ctx) {
	let alive = true;
	const rows = new Map(); // name -> {w, tr}
	const tbody = h('tbody', null, loadingRow(7));
	const err = h('div', { class: 'alert error', hidden: true });
	const summary = h('span', { class: 'muted', id: 'workers-summary' });
	const refreshBtn = h('button', { class: 'btn small', type: 'button', onclick: () => load() }, 'Refresh');

	root.append(
		h('div', { class: 'page-head' }, h('h1', null, 'Workers'), h('div', { class: 'filters' }, summary, refreshBtn)),
		err,
		h('div', { class: 'table-wrap' },
			h('table', { class: 'table workers', id: 'workers-table' },
				h('thead', null, h('tr', null,
					h('th', null, 'Name'), h('th', null, 'State'), h('th', null, 'Address'),
					h('th', null, 'Step types'), h('th', null, 'Slots used'),
					h('th', null, 'Last heartbeat'), h('th', null, 'Joined'))),
				tbody)),
		h('p', { class: 'muted small note' },
			'A worker is declared lost when it misses the coordinator’s surveys. Heartbeat times are as of the last update of this page (it changes live when a worker joins or is lost).'));

	function slots(w) {
		const total = w.slots || 0;
		const used = Math.min(w.running || 0, total || Infinity);
		const pct = total ? Math.round((100 * used) / total) : 0;
		return h('div', { class: 'progress', title: `${w.running || 0} running, ${w.queue || 0} queue capacity` },
			h('div', { class: 'bar st-running' }, h('span', { style: `width:${pct}%` })),
			h('span', { class: 'progress-text' }, `${w.running || 0}/${total}`));
	}

	function renderRow(w) {
		const state = w.state || 'unknown';
		return h('tr', { 'data-worker': w.name, 'data-state': state, class: state === 'lost' ? 'lost' : '' },
			h('td', { class: 'mono name' }, w.name),
			h('td', { class: 'state' }, badge(state)),
			h('td', { class: 'mono small' }, w.address || '—'),
			h('td', null, h('div', { class: 'chips' }, (w.step_types || []).map((t) => h('span', { class: 'chip' }, t)))),
			h('td', null, slots(w)),
			h('td', null, timeCell(w.last_seen_ms)),
			h('td', null, timeCell(w.joined_ms)));
	}

	function put(w) {
		const old = rows.get(w.name);
		const tr = renderRow(w);
		if (old) {
			old.tr.replaceWith(tr);
		} else {
			const e = tbody.querySelector('tr.empty');
			if (e) {
				e.remove();
			}
			tbody.append(tr);
		}
		rows.set(w.name, { w, tr });
	}

	function setSummary() {
		let up = 0;
		let lost = 0;
		for (const { w } of rows.values()) {
			up += w.state === 'alive' ? 1 : 0;
			lost += w.state === 'lost' ? 1 : 0;
		}
		summary.textContent = `${up} alive${lost ? `, ${lost} lost` : ''}`;
	}

	async function load() {
		let list;
		try {
			list = await api.workers();
		} catch (e) {
			loadFailed(err, tbody, `Cannot list workers: ${e.message}`);
			return;
		}
		if (!alive) {
			return;
		}
		err.hidden = true;
		list.sort((a, b) => (a.state === b.state ? 0 : a.state === 'alive' ? -1 : 1) || a.name.localeCompare(b.name));
		clear(tbody);
		rows.clear();
		for (const w of list) {
			put(w);
		}
		if (list.length === 0) {
			tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: 7 }, 'No workers have joined. Start one with weft-worker --join <cluster url>.')));
		}
		setSummary();
	}

	const refetch = debounceMap(() => load(), 200);

	// The state each cluster event puts a worker in: a worker that stops
	// on purpose drains (finishing what runs, taking nothing new), then
	// leaves; one that dies is lost.
	const WORKER_EVENT_STATE = {
		worker_joined: 'alive', worker_lost: 'lost',
		worker_draining: 'draining', worker_left: 'left',
	};

	const unsub = ctx.stream.subscribe((events) => {
		let touched = false;
		for (const ev of events) {
			if (!WORKER_EVENT_STATE[ev.type]) {
				continue;
			}
			const name = ev.node;
			if (!name) {
				continue;
			}
			const old = rows.get(name);
			const d = ev.data || {};
			const w = old ? { ...old.w } : { name, running: 0 };
			if (ev.type === 'worker_joined') {
				w.state = 'alive';
				w.address = d.address || w.address;
				w.step_types = d.step_types || w.step_types;
				w.slots = d.slots ?? w.slots;
				w.joined_ms = ev.ts_ms;
				w.last_seen_ms = ev.ts_ms;
			} else {
				w.state = WORKER_EVENT_STATE[ev.type];
				if (ev.type !== 'worker_draining') {
					w.running = 0;
				}
			}
			put(w);
			touched = true;
		}
		if (touched) {
			setSummary();
			refetch('all');
		}
	});

	// A tab that comes back to the front shows fresh heartbeats.
	const onVisible = () => {
		if (document.visibilityState === 'visible') {
			load();
		}
	};
	document.addEventListener('visibilitychange', onVisible);
	load();

	return {
		unmount() {
			alive = false;
			unsub();
			refetch.cancel();
			document.removeEventListener('visibilitychange', onVisible);
		},
	};
}
