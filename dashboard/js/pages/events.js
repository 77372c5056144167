// event log page: the global audit log with the filters of GET
// /api/v1/events (run, step, type, node, since, until, text), cursor
// pagination with after=ID, and a live tail that appends new matching
// events from the stream.
import { api, allEvents } from '../api.js';
import {
	h, clear, fmtTime, fmtClock, fmtAge, pretty, short, summary, eventTypes, eventState, loadFailed,
} from '../util.js';

const PAGE_SIZES = [50, 100, 250, 500];
const MAX_TAIL_ROWS = 2000;
const FILTERS = ['run', 'step', 'type', 'node', 'since', 'until', 'text'];

// relMs turns the API's time forms into epoch ms for the live-tail filter:
// RFC3339, epoch ms, or "15m" / "2h" / "7d" meaning now minus that.
function relMs(s) {
	if (!s) {
		return null;
	}
	const m = /^(\d+)\s*([smhd])$/.exec(s.trim());
	if (m) {
		const unit = { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[m[2]];
		return Date.now() - Number(m[1]) * unit;
	}
	if (/^\d+$/.test(s.trim())) {
		return Number(s.trim());
	}
	const t = Date.parse(s);
	return Number.isNaN(t) ? null : t;
}

export function mount(root, ctx) {
	let alive = true;
	const q = {};
	for (const k of FILTERS) {
		q[k] = ctx.query[k] || '';
	}
	q.after = Number(ctx.query.after || 0);
	q.limit = PAGE_SIZES.includes(Number(ctx.query.limit)) ? Number(ctx.query.limit) : 100;
	let tail = ctx.query.tail === '1';
	const cursors = []; // afters of earlier pages
	let lastId = 0;     // newest id on screen
	let rowsShown = 0;
	let unsub = null;

	const inputs = {};
	const field = (k, label, attrs) => {
		inputs[k] = h('input', { id: `ev-${k}`, name: k, type: 'search', value: q[k], ...attrs });
		return h('label', { class: 'ffield' }, h('span', null, label), inputs[k]);
	};
	const typeList = h('datalist', { id: 'event-types' }, eventTypes().map((t) => h('option', { value: t })));
	const sizeSel = h('select', { id: 'ev-limit', 'aria-label': 'page size' },
		PAGE_SIZES.map((n) => h('option', { value: String(n), selected: n === q.limit }, `${n} per page`)));
	const tailBox = h('input', { type: 'checkbox', id: 'ev-tail', checked: tail });
	const form = h('form', { class: 'card filter-form', id: 'events-filter' },
		field('run', 'Run', { placeholder: 'run id', class: 'mono' }),
		field('step', 'Step', { placeholder: 'step id' }),
		field('type', 'Type', { placeholder: 'e.g. step_failed,step_lost', list: 'event-types' }),
		field('node', 'Node', { placeholder: 'worker or coordinator' }),
		field('since', 'Since', { placeholder: '15m, 2h, 7d or a time' }),
		field('until', 'Until', { placeholder: 'a time' }),
		field('text', 'Text', { placeholder: 'search in the data' }),
		typeList,
		h('div', { class: 'filter-actions' },
			h('button', { class: 'btn primary', type: 'submit', id: 'ev-search' }, 'Search'),
			h('button', { class: 'btn ghost', type: 'button', id: 'ev-reset', onclick: reset }, 'Reset')));
	const err = h('div', { class: 'alert error', id: 'events-error', hidden: true });
	const tbody = h('tbody', null, h('tr', { class: 'empty placeholder', id: 'events-loading' }, h('td', { colspan: 8 }, 'Loading events…')));
	// Newest first: each page (and the live tail) shown newest at the top;
	// pages still follow the API's id order. Remembered in this browser.
	let newest = localStorage.getItem('weft.events.newestFirst') === '1';
	const newestBox = h('input', { type: 'checkbox', id: 'ev-newest', checked: newest });
	const info = h('span', { class: 'muted small', id: 'events-info' });
	const firstBtn = h('button', { class: 'btn', type: 'button', id: 'ev-first' }, '⇤ First');
	const prevBtn = h('button', { class: 'btn', type: 'button', id: 'ev-prev' }, '← Previous');
	const nextBtn = h('button', { class: 'btn', type: 'button', id: 'ev-next' }, 'Next →');
	const wrap = h('div', { class: 'table-wrap events-wrap' },
		h('table', { class: 'table events', id: 'events-table' },
			h('colgroup', null, ['id', 'time', 'type', 'run', 'step', 'att', 'node', 'details']
				.map((c) => h('col', { class: `c-${c}` }))),
			h('thead', null, h('tr', null,
				h('th', null, '#'), h('th', null, 'Time'), h('th', null, 'Type'), h('th', null, 'Run'),
				h('th', null, 'Step'), h('th', { class: 'num' }, 'Att.'), h('th', null, 'Node'),
				h('th', null, 'Details'))),
			tbody));

	root.append(
		h('div', { class: 'page-head' },
			h('h1', null, 'Event log'),
			h('div', { class: 'filters' },
				h('label', { class: 'toggle', title: 'append new matching events as they happen' },
					tailBox, h('span', null, 'Live tail')),
				h('label', { class: 'toggle', title: 'show the newest events at the top' },
					newestBox, h('span', null, 'Newest first')),
				sizeSel)),
		form, err,
		wrap,
		h('div', { class: 'pager' }, h('div', null, firstBtn, ' ', prevBtn), info, nextBtn));

	function params() {
		const p = { after: q.after, limit: q.limit };
		for (const k of FILTERS) {
			if (q[k]) {
				p[k] = q[k];
			}
		}
		return p;
	}

	function row(ev) {
		const d = ev.data || {};
		const detail = summary(ev, 200);
		const tr = h('tr', { 'data-id': ev.id, 'data-type': ev.type, class: 'ev-row' },
			h('td', { class: 'muted' }, String(ev.id)),
			h('td', { class: 'nowrap', title: fmtTime(ev.ts_ms) }, fmtClock(ev.ts_ms),
				h('span', { class: 'age', dataset: { age: String(ev.ts_ms) } }, fmtAge(ev.ts_ms))),
			h('td', null, h('span', { class: `etype st-${eventState(ev.type)}` }, ev.type)),
			h('td', { class: 'mono small' }, ev.run ? h('a', { href: `#/runs/${encodeURIComponent(ev.run)}` }, ev.run) : ''),
			h('td', { class: 'mono' }, ev.step
				? h('a', { href: `#/runs/${encodeURIComponent(ev.run)}?step=${encodeURIComponent(ev.step)}` }, ev.step) : ''),
			h('td', { class: 'num' }, ev.attempt ? String(ev.attempt) : ''),
			h('td', { class: 'mono small' }, ev.node || ''),
			h('td', { class: 'details', title: short(d, 2000) }, detail));
		tr.addEventListener('click', (e) => {
			if (e.target.closest('a')) {
				return;
			}
			const next = tr.nextElementSibling;
			if (next && next.classList.contains('ev-json')) {
				next.remove();
			} else {
				tr.after(h('tr', { class: 'ev-json' }, h('td', { colspan: 8 }, h('pre', { class: 'json' }, pretty(ev)))));
			}
		});
		return tr;
	}

	function setInfo(n) {
		const f = FILTERS.filter((k) => q[k]).map((k) => `${k}=${q[k]}`).join(', ');
		info.textContent = `${n} event${n === 1 ? '' : 's'}${q.after ? ` after #${q.after}` : ''}${f ? ` · ${f}` : ''}${tail ? ' · live' : ''}`;
	}

	async function load() {
		err.hidden = true;
		ctx.setQuery({ ...params(), limit: q.limit === 100 ? '' : q.limit, after: q.after || '', tail: tail ? '1' : '' });
		let page;
		let more = false; // the coordinator cut the page (by count or size)
		try {
			({ events: page, next: more } = await api.eventsPage(params()));
		} catch (e) {
			loadFailed(err, tbody, `The coordinator refused the query: ${e.message}`);
			return;
		}
		if (!alive) {
			return;
		}
		clear(tbody);
		rowsShown = page.length;
		const frag = document.createDocumentFragment();
		for (const ev of newest ? [...page].reverse() : page) {
			frag.append(row(ev));
		}
		tbody.append(frag);
		root.dataset.order = newest ? 'newest' : 'oldest';
		lastId = page.length ? page[page.length - 1].id : q.after;
		if (page.length === 0) {
			tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: 8 }, 'No events match.')));
		}
		prevBtn.disabled = cursors.length === 0;
		firstBtn.disabled = !q.after;
		// The coordinator's next_after says whether there is more: a
		// page cut by size is short and still not the last.
		nextBtn.disabled = !more;
		setInfo(page.length);
		if (tail && more) {
			await catchUp();
		}
	}

	// catchUp appends what is stored after the last row (live tail on a
	// full page), at most a few pages.
	async function catchUp() {
		try {
			await allEvents({ ...params(), after: lastId }, (page) => append(page), { pageSize: 500, maxPages: 4 });
		} catch {
			// the stream keeps going
		}
	}

	function append(evs) {
		const fresh = evs.filter((ev) => ev.id > lastId);
		if (fresh.length === 0) {
			return;
		}
		const e = tbody.querySelector('tr.empty');
		if (e) {
			e.remove();
		}
		const atBottom = wrap.scrollHeight - wrap.scrollTop - wrap.clientHeight < 60;
		const frag = document.createDocumentFragment();
		for (const ev of newest ? [...fresh].reverse() : fresh) {
			frag.append(row(ev));
		}
		if (newest) {
			tbody.prepend(frag);
		} else {
			tbody.append(frag);
		}
		lastId = fresh[fresh.length - 1].id;
		rowsShown += fresh.length;
		while (rowsShown > MAX_TAIL_ROWS) {
			// The oldest row goes: the first, or with newest first the last.
			const rows = tbody.querySelectorAll('tr.ev-row');
			const first = newest ? rows[rows.length - 1] : rows[0];
			if (!first) {
				break;
			}
			if (first.nextElementSibling && first.nextElementSibling.classList.contains('ev-json')) {
				first.nextElementSibling.remove();
			}
			first.remove();
			rowsShown--;
		}
		setInfo(rowsShown);
		nextBtn.disabled = true;
		if (atBottom && !newest) {
			wrap.scrollTop = wrap.scrollHeight;
		}
	}

	// matches applies the page's filters to a live event, as the API does.
	function matches(ev) {
		if (q.run && ev.run !== q.run) {
			return false;
		}
		if (q.step && ev.step !== q.step) {
			return false;
		}
		if (q.node && ev.node !== q.node) {
			return false;
		}
		if (q.type) {
			const types = q.type.split(',').map((t) => t.trim()).filter(Boolean);
			if (types.length && !types.includes(ev.type)) {
				return false;
			}
		}
		const since = relMs(q.since);
		if (since && ev.ts_ms < since) {
			return false;
		}
		const until = relMs(q.until);
		if (until && ev.ts_ms >= until) {
			return false;
		}
		if (q.text && !JSON.stringify(ev.data || {}).toLowerCase().includes(q.text.toLowerCase())) {
			return false;
		}
		return true;
	}

	function onLive(evs) {
		if (tail) {
			append(evs.filter(matches));
		}
	}

	function setTail(on) {
		tail = on;
		tailBox.checked = on;
		root.classList.toggle('tailing', on);
		if (on && !unsub) {
			unsub = ctx.stream.subscribe(onLive);
			if (nextBtn.disabled === false) {
				catchUp();
			}
		} else if (!on && unsub) {
			unsub();
			unsub = null;
		}
		ctx.setQuery({ ...params(), limit: q.limit === 100 ? '' : q.limit, after: q.after || '', tail: tail ? '1' : '' });
		setInfo(rowsShown);
	}

	function readForm() {
		for (const k of FILTERS) {
			q[k] = inputs[k].value.trim();
		}
	}

	function reset() {
		for (const k of FILTERS) {
			inputs[k].value = '';
			q[k] = '';
		}
		q.after = 0;
		cursors.length = 0;
		load();
	}

	form.addEventListener('submit', (e) => {
		e.preventDefault();
		readForm();
		q.after = 0;
		cursors.length = 0;
		load();
	});
	sizeSel.addEventListener('change', () => {
		q.limit = Number(sizeSel.value);
		load();
	});
	tailBox.addEventListener('change', () => setTail(tailBox.checked));
	newestBox.addEventListener('change', () => {
		newest = newestBox.checked;
		localStorage.setItem('weft.events.newestFirst', newest ? '1' : '0');
		load();
	});
	nextBtn.addEventListener('click', () => {
		cursors.push(q.after);
		q.after = lastId;
		load().then(() => wrap.scrollTo(0, 0));
	});
	prevBtn.addEventListener('click', () => {
		q.after = cursors.length ? cursors.pop() : 0;
		load();
	});
	firstBtn.addEventListener('click', () => {
		q.after = 0;
		cursors.length = 0;
		load();
	});

	setTail(tail);
	load();
	return {
		unmount() {
			alive = false;
			if (unsub) {
				unsub();
			}
		},
	};
}
