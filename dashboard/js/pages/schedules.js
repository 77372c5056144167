// schedules page: the coordinator's cron schedules (GET /api/v1/schedules)
// with cron, zone, next and last fire, last run and paused; buttons to
// pause, resume, trigger and delete; a form to create one (POST
// /api/v1/schedules, the coordinator's refusal shown as it says it). Live:
// schedule_* events re-read the list.
import { api } from '../api.js';
import { h, clear, badge, timeCell, debounceMap, loadingRow, loadFailed } from '../util.js';

export function mount(root, ctx) {
	let alive = true;
	const tbody = h('tbody', null, loadingRow(9));
	const err = h('div', { class: 'alert error', hidden: true, id: 'schedules-error' });
	const formErr = h('div', { class: 'alert error', hidden: true, id: 'schedule-form-error' });
	const summary = h('span', { class: 'muted', id: 'schedules-summary' });
	const input = (name, placeholder, value = '') =>
		h('input', { name, placeholder, value, class: 'input', id: `schedule-${name}` });
	const fields = {
		name: input('name', 'nightly'),
		definition: input('definition', 'definition name'),
		cron: input('cron', '*/15 9-17 * * MON-FRI'),
		timezone: input('timezone', 'UTC', 'UTC'),
		input: input('input', '{} (JSON)'),
		params: input('params', '{} (JSON)'),
	};
	const select = (name, opts) => h('select', { name, class: 'input', id: `schedule-${name}` },
		opts.map((o) => h('option', { value: o }, o)));
	fields.overlap = select('overlap', ['skip', 'allow', 'cancel_previous']);
	fields.catchup = select('catchup', ['one', 'none', 'all']);
	fields.catchup.value = 'one';
	const form = h('form', { class: 'form schedule-form', id: 'schedule-form', onsubmit: (e) => { e.preventDefault(); create(); } },
		h('h2', null, 'New schedule'),
		Object.entries(fields).map(([k, el]) => h('label', { class: 'field' }, h('span', null, k), el)),
		h('button', { class: 'btn primary', type: 'submit' }, 'Create'),
		formErr);

	root.append(
		h('div', { class: 'page-head' }, h('h1', null, 'Schedules'),
			h('div', { class: 'filters' }, summary,
				h('button', { class: 'btn small', type: 'button', onclick: () => load() }, 'Refresh'))),
		err,
		h('div', { class: 'table-wrap' },
			h('table', { class: 'table schedules', id: 'schedules-table' },
				h('thead', null, h('tr', null,
					h('th', null, 'Name'), h('th', null, 'Definition'), h('th', null, 'Cron'),
					h('th', null, 'Time zone'), h('th', null, 'Next fire'), h('th', null, 'Last fire'),
					h('th', null, 'Last run'), h('th', null, 'State'), h('th', null, ''))),
				tbody)),
		form,
		h('p', { class: 'muted small note' },
			'Cron fields are read in the schedule’s time zone. Overlap: what a fire does while the previous run is active. Catchup: fires missed while the coordinator was down.'));

	async function act(name, action) {
		err.hidden = true;
		try {
			await api.scheduleAction(name, action);
		} catch (e) {
			err.textContent = `Cannot ${action} ${name}: ${e.message}`;
			err.hidden = false;
		}
		load();
	}

	function row(s) {
		const btn = (text, action) => h('button', { class: 'btn small', type: 'button', 'data-action': action, onclick: () => act(s.name, action) }, text);
		return h('tr', { 'data-schedule': s.name },
			h('td', { class: 'mono name' }, s.name),
			h('td', null, s.definition),
			h('td', { class: 'mono' }, s.cron),
			h('td', null, s.timezone),
			h('td', { class: 'next' }, s.next_fire_ms ? timeCell(s.next_fire_ms) : '—'),
			h('td', null, s.last_fire_ms ? timeCell(s.last_fire_ms) : '—'),
			h('td', { class: 'mono small' }, s.last_run_id
				? h('a', { href: `#/runs/${encodeURIComponent(s.last_run_id)}` }, s.last_run_id) : '—'),
			h('td', { class: 'state' }, badge(s.paused ? 'paused' : 'running')),
			h('td', { class: 'actions' },
				s.paused ? btn('Resume', 'resume') : btn('Pause', 'pause'),
				btn('Trigger', 'trigger'), btn('Delete', 'delete')));
	}

	// Loads overlap (an action's own, and the stream's refetch of the
	// schedule_* events): only the latest started may draw, or an older
	// answer arriving last would put back what an action just changed.
	let loadSeq = 0;
	async function load() {
		const seq = ++loadSeq;
		let body;
		try {
			body = await api.schedules();
			if (seq !== loadSeq) {
				return;
			}
		} catch (e) {
			if (seq !== loadSeq) {
				return;
			}
			loadFailed(err, tbody, `Cannot list schedules: ${e.message}`);
			return;
		}
		if (!alive) {
			return;
		}
		const list = (body && body.schedules) || [];
		clear(tbody);
		for (const s of list) {
			tbody.append(row(s));
		}
		if (list.length === 0) {
			tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: 9 }, 'No schedules. Create one below or with weft schedule create.')));
		}
		const paused = list.filter((s) => s.paused).length;
		summary.textContent = `${list.length} schedule${list.length === 1 ? '' : 's'}${paused ? `, ${paused} paused` : ''}`;
	}

	async function create() {
		formErr.hidden = true;
		const body = {};
		for (const [k, el] of Object.entries(fields)) {
			const v = el.value.trim();
			if (v === '') {
				continue;
			}
			if (k === 'input' || k === 'params') {
				try {
					body[k] = JSON.parse(v);
				} catch (e) {
					formErr.textContent = `${k} is not JSON: ${e.message}`;
					formErr.hidden = false;
					return;
				}
			} else {
				body[k] = v;
			}
		}
		try {
			await api.createSchedule(body);
		} catch (e) {
			formErr.textContent = e.message;
			formErr.hidden = false;
			return;
		}
		fields.name.value = '';
		load();
	}

	const refetch = debounceMap(() => load(), 200);
	const unsub = ctx.stream.subscribe((events) => {
		if (events.some((ev) => ev.type && ev.type.startsWith('schedule_'))) {
			refetch('all');
		}
	});
	load();

	return {
		unmount() {
			alive = false;
			unsub();
			refetch.cancel();
		},
	};
}
