// util: small DOM and formatting helpers shared by every page: element
// building, times in the browser's zone with relative age, durations,
// state badges and JSON display.

// h builds an element: h('div', {class: 'x', onclick: fn}, child, ...).
// Children may be strings, nodes, arrays, null or false (skipped).
export function h(tag, attrs, ...children) {
	const el = document.createElement(tag);
	if (attrs) {
		for (const [k, v] of Object.entries(attrs)) {
			if (v === null || v === undefined || v === false) {
				continue;
			}
			if (k.startsWith('on') && typeof v === 'function') {
				el.addEventListener(k.slice(2), v);
			} else if (k === 'class') {
				el.className = v;
			} else if (k === 'dataset') {
				Object.assign(el.dataset, v);
			} else if (k === 'value' || k === 'checked' || k === 'selected') {
				el[k] = v;
			} else if (v === true) {
				el.setAttribute(k, '');
			} else {
				el.setAttribute(k, String(v));
			}
		}
	}
	append(el, children);
	return el;
}

function append(el, children) {
	for (const c of children) {
		if (c === null || c === undefined || c === false) {
			continue;
		}
		if (Array.isArray(c)) {
			append(el, c);
		} else if (c instanceof Node) {
			el.appendChild(c);
		} else {
			el.appendChild(document.createTextNode(String(c)));
		}
	}
}

// clear removes every child of el and returns it.
export function clear(el) {
	while (el.firstChild) {
		el.removeChild(el.firstChild);
	}
	return el;
}

// add appends children (as h() takes them: nulls skipped, arrays spread).
export function add(el, ...children) {
	append(el, children);
	return el;
}

// fill replaces the children of el with children (as h() takes them).
export function fill(el, ...children) {
	clear(el);
	append(el, children);
	return el;
}

// esc escapes text for use inside HTML or SVG markup built as a string.
export function esc(s) {
	return String(s ?? '').replace(/[&<>"']/g, (c) => ({
		'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
	}[c]));
}

const dateFmt = new Intl.DateTimeFormat(undefined, {
	year: 'numeric', month: 'short', day: '2-digit',
	hour: '2-digit', minute: '2-digit', second: '2-digit',
});
const timeFmt = new Intl.DateTimeFormat(undefined, {
	hour: '2-digit', minute: '2-digit', second: '2-digit',
	fractionalSecondDigits: 3,
});

// fmtTime formats epoch ms as a date and time in the browser's zone.
export function fmtTime(ms) {
	if (!ms) {
		return '—';
	}
	return dateFmt.format(new Date(ms));
}

// fmtClock formats epoch ms as a time of day with milliseconds.
export function fmtClock(ms) {
	if (!ms) {
		return '—';
	}
	return timeFmt.format(new Date(ms));
}

const clockFmt = new Intl.DateTimeFormat(undefined, {
	hour: '2-digit', minute: '2-digit', second: '2-digit',
});

// fmtClockShort formats epoch ms as a time of day to the second.
export function fmtClockShort(ms) {
	return ms ? clockFmt.format(new Date(ms)) : '—';
}

// fmtAge says how long ago ms was: "just now", "12s ago", "3m ago".
export function fmtAge(ms, now = Date.now()) {
	if (!ms) {
		return '';
	}
	let s = Math.round((now - ms) / 1000);
	const future = s < 0;
	s = Math.abs(s);
	let t;
	if (s < 2) {
		return 'just now';
	} else if (s < 60) {
		t = `${s}s`;
	} else if (s < 3600) {
		t = `${Math.floor(s / 60)}m`;
	} else if (s < 86400) {
		t = `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
	} else {
		t = `${Math.floor(s / 86400)}d`;
	}
	return future ? `in ${t}` : `${t} ago`;
}

// fmtDuration formats a length of time in ms: "850 ms", "4.2 s", "3m 05s".
export function fmtDuration(ms) {
	if (ms === null || ms === undefined || Number.isNaN(ms) || ms < 0) {
		return '—';
	}
	if (ms < 1000) {
		return `${Math.round(ms)} ms`;
	}
	if (ms < 60000) {
		return `${(ms / 1000).toFixed(1)} s`;
	}
	const s = Math.floor(ms / 1000);
	if (s < 3600) {
		return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
	}
	return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

// timeCell renders a time with its relative age below; the age is kept
// fresh by the app's clock tick (elements with data-age).
export function timeCell(ms) {
	if (!ms) {
		return h('span', { class: 'muted' }, '—');
	}
	return h('span', { class: 'time', title: new Date(ms).toISOString() },
		h('span', { class: 'abs' }, fmtTime(ms)),
		h('span', { class: 'age', dataset: { age: String(ms) } }, fmtAge(ms)));
}

// refreshAges rewrites every relative age under root.
export function refreshAges(root = document) {
	const now = Date.now();
	for (const el of root.querySelectorAll('[data-age]')) {
		const t = fmtAge(Number(el.dataset.age), now);
		if (el.textContent !== t) {
			el.textContent = t;
		}
	}
}

// What the event log's words mean, from GET /api/v1/meta (api.js loadMeta
// fills it once at start): the event types with their scope, whether they
// end their step or run and the status they give it, and the run and step
// states. Nothing here copies those lists: until the answer arrives, or if
// it never does (metaError() says why), they are empty.
const meta = {
	types: [], byType: new Map(), runStates: [], stepStates: [],
	runEnded: new Set(), stepEnded: new Set(), error: '',
};

// setMeta takes the body of GET /api/v1/meta.
export function setMeta(m) {
	const list = (k) => (m && Array.isArray(m[k]) ? m[k] : []);
	meta.types = list('event_types');
	meta.byType = new Map(meta.types.map((t) => [t.name, t]));
	meta.runStates = list('run_states');
	meta.stepStates = list('step_states');
	// A status is final when an event that ends a run (a step) sets it.
	const ending = (scope, key) => new Set(meta.types
		.filter((t) => t.scope === scope && t.terminal && t[key]).map((t) => t[key]));
	meta.runEnded = ending('run', 'run_status');
	meta.stepEnded = ending('step', 'step_status');
	meta.error = '';
}

// setMetaError records why the list could not be loaded ('' once it was).
export function setMetaError(msg) {
	meta.error = msg || 'unknown error';
}

export const metaError = () => meta.error;
export const metaLoaded = () => meta.types.length > 0;
export const runStates = () => meta.runStates;
export const stepStates = () => meta.stepStates;

// eventTypes lists the event type names, in the coordinator's order; with
// scopes ('run', 'step', 'node'), only the types of those scopes.
export function eventTypes(...scopes) {
	return meta.types.filter((t) => scopes.length === 0 || scopes.includes(t.scope))
		.map((t) => t.name);
}

// eventInfo returns {name, scope, terminal, step_status, run_status} of a
// type, or null when unknown.
export const eventInfo = (type) => meta.byType.get(type) || null;

// runStatusOf / stepStatusOf: the status an event type gives its run / its
// step (as the store's projection does), or null.
export const runStatusOf = (type) => (eventInfo(type) || {}).run_status || null;
export const stepStatusOf = (type) => (eventInfo(type) || {}).step_status || null;

// runEnded / stepEnded: whether a run / step status is final.
export const runEnded = (status) => meta.runEnded.has(status);
export const stepEnded = (status) => meta.stepEnded.has(status);

// Colours of the events that set no status: how they read on the page,
// not what they do to the store.
const EVENT_COLOUR = {
	step_timed_out: 'failed', step_lost: 'failed', result_ignored: 'skipped',
	worker_joined: 'alive', worker_lost: 'lost', definition_registered: 'queued',
	worker_draining: 'draining', worker_left: 'left',
};

// badge renders a state as a coloured pill (colours from CSS variables).
export function badge(state) {
	const s = state || 'unknown';
	return h('span', { class: `badge st-${s}`, 'data-state': s },
		s.replace('_', ' '));
}

// eventState maps an event type to the state colour it stands for: the
// status it gives its step or run.
export function eventState(type) {
	if (!type) {
		return 'unknown';
	}
	const t = eventInfo(type);
	return (t && (t.step_status || t.run_status)) || EVENT_COLOUR[type] || 'unknown';
}

// pretty renders a JSON value for display.
export function pretty(v) {
	if (v === undefined) {
		return '';
	}
	try {
		return JSON.stringify(v, null, 2);
	} catch {
		return String(v);
	}
}

// isBlob says whether v is a reference to a large value stored once
// ({"$blob": "sha256:…", "size": bytes, "preview": "…"}, docs/events.md).
export function isBlob(v) {
	return v !== null && typeof v === 'object' && typeof v.$blob === 'string';
}

// blobText says in one line what a reference stands for: its size and the
// start of the value.
export function blobText(v) {
	return `[${v.size} bytes] ${v.preview || ''}…`;
}

// short returns a one-line summary of a JSON value, cut at n characters;
// a large value shows as its size and preview.
export function short(v, n = 120) {
	if (v === undefined || v === null) {
		return '';
	}
	let s = typeof v === 'string' ? v
		: isBlob(v) ? blobText(v)
			: JSON.stringify(v, (k, x) => (isBlob(x) ? blobText(x) : x));
	if (s === '{}') {
		return '';
	}
	if (s.length > n) {
		s = s.slice(0, n - 1) + '…';
	}
	return s;
}

// summary says in one line what an event's data holds, by type.
export function summary(ev, n = 160) {
	const d = ev.data || {};
	const dur = d.duration_ms !== undefined ? ` in ${fmtDuration(d.duration_ms)}` : '';
	switch (ev.type) {
	case 'step_failed':
	case 'step_retry_scheduled': {
		let t = d.error || '';
		if (d.exit_code !== undefined) {
			t += ` (exit ${d.exit_code})`;
		}
		if (d.delay_ms !== undefined) {
			t += `; retry in ${fmtDuration(d.delay_ms)}`;
		}
		return short(t + dur, n);
	}
	case 'step_succeeded':
		return short(`output ${short(d.output, n)}${dur}`, n);
	case 'step_upstream_failed':
		return short(d.error || d.reason || d, n);
	case 'step_skipped':
	case 'run_cancelled':
	case 'result_ignored':
		return short(d.reason || d, n);
	case 'run_queued':
		return short(`${d.definition} v${d.version}, ${d.steps} steps${d.params && Object.keys(d.params).length ? `, params ${short(d.params, n)}` : ''}`, n);
	case 'run_failed':
		return short(`${d.error || 'failed'}${d.failed_steps && d.failed_steps.length ? ` (${d.failed_steps.join(', ')})` : ''}`, n);
	case 'run_succeeded':
		return short(`output ${short(d.output, n)}`, n);
	case 'worker_joined':
		return short(`${d.address || ''}, ${d.slots ?? '?'} slots, ${(d.step_types || []).join(' ')}`, n);
	case 'worker_lost':
		return `missed ${d.missed_surveys ?? '?'} surveys`;
	case 'definition_registered':
		return short(`${d.name} v${d.version}`, n);
	case 'step_expanded':
		// A map's items, or an expand step's spliced steps.
		return Array.isArray(d.steps)
			? short(`${d.steps.length} steps: ${d.steps.map((x) => x && x.id).join(', ')}`, n)
			: `${d.count ?? '?'} items`;
	default:
		return short(d, n);
	}
}

// parseQuery turns "a=1&b=2" into a plain object.
export function parseQuery(qs) {
	const out = {};
	for (const [k, v] of new URLSearchParams(qs || '')) {
		out[k] = v;
	}
	return out;
}

// buildQuery turns an object into "a=1&b=2", leaving out empty values.
export function buildQuery(obj) {
	const p = new URLSearchParams();
	for (const [k, v] of Object.entries(obj)) {
		if (v !== undefined && v !== null && v !== '') {
			p.set(k, String(v));
		}
	}
	return p.toString();
}

// debounceMap calls fn(key) once per key, delay ms after its last poke.
export function debounceMap(fn, delay) {
	const timers = new Map();
	const poke = (key) => {
		clearTimeout(timers.get(key));
		timers.set(key, setTimeout(() => {
			timers.delete(key);
			fn(key);
		}, delay));
	};
	poke.cancel = () => {
		for (const t of timers.values()) {
			clearTimeout(t);
		}
		timers.clear();
	};
	return poke;
}

// tagChips shows a run's tags ({key: value}) as small chips "key=value".
export function tagChips(tags, id) {
	const keys = Object.keys(tags || {}).sort();
	return h('span', { class: 'tags', ...(id ? { id } : {}) },
		keys.map((k) => h('span', { class: 'tag mono', title: `${k}=${tags[k]}` }, `${k}=${tags[k]}`)));
}

// skeleton is the grey placeholder (n shimmering lines) a page shows
// where its data is on its way, instead of a blank.
export const skeleton = (n = 4) => h('div', { class: 'skeleton placeholder', 'aria-busy': 'true' },
	Array.from({ length: n }, () => h('i')));

// loadingRow is a table's placeholder row until its first page arrives
// (the page's load replaces the tbody's rows).
export const loadingRow = (cols) => h('tr', { class: 'loading-row placeholder' },
	h('td', { colspan: cols }, skeleton(3)));

// dropPlaceholders removes the placeholders left under el: a load that
// failed shows its error, not a placeholder that never resolves.
export function dropPlaceholders(el) {
	for (const p of el.querySelectorAll('.placeholder')) {
		p.remove();
	}
}

// loadFailed shows message in a page's error line err and drops the
// placeholders of the table body it was loading.
export function loadFailed(err, tbody, message) {
	err.textContent = message;
	err.hidden = false;
	dropPlaceholders(tbody);
}
