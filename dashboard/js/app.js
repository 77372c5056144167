// app: the dashboard shell. Header with navigation and the live-stream
// state, the banner shown while the stream is down, hash routing
// (#/runs, #/runs/ID, #/new, #/events, #/workers, #/schedules,
// #/definitions[/NAME], #/metrics) and the one-second clock
// that keeps relative ages fresh (display only; nothing polls the API).
import { api, loadMeta, setUnauthorizedHandler } from './api.js';
import { LiveStream } from './stream.js';
import { h, clear, fill, refreshAges, parseQuery, metaError } from './util.js';
import * as runsPage from './pages/runs.js';
import * as runPage from './pages/run.js';
import * as newPage from './pages/new.js';
import * as eventsPage from './pages/events.js';
import * as workersPage from './pages/workers.js';
import * as schedulesPage from './pages/schedules.js';
import * as definitionsPage from './pages/definitions.js';
import * as metricsPage from './pages/metrics.js';

const routes = [
	{ re: /^\/runs\/([^/]+)$/, page: runPage, nav: 'runs', key: 'run' },
	{ re: /^\/runs\/?$/, page: runsPage, nav: 'runs', key: 'runs' },
	{ re: /^\/new\/?$/, page: newPage, nav: 'new', key: 'new' },
	{ re: /^\/events\/?$/, page: eventsPage, nav: 'events', key: 'events' },
	{ re: /^\/workers\/?$/, page: workersPage, nav: 'workers', key: 'workers' },
	{ re: /^\/schedules\/?$/, page: schedulesPage, nav: 'schedules', key: 'schedules' },
	{ re: /^\/definitions\/([^/]+)$/, page: definitionsPage, nav: 'definitions', key: 'definitions' },
	{ re: /^\/definitions\/?$/, page: definitionsPage, nav: 'definitions', key: 'definitions' },
	{ re: /^\/metrics\/?$/, page: metricsPage, nav: 'metrics', key: 'metrics' },
];

const stream = new LiveStream();
let current = null; // {unmount}
const main = document.getElementById('main');

// navigate sets the hash; the router does the rest.
export function navigate(hash) {
	if (location.hash === hash) {
		route();
	} else {
		location.hash = hash;
	}
}

// setQuery rewrites the current route's query without re-routing.
export function setQuery(query) {
	const [path] = location.hash.slice(1).split('?');
	const qs = new URLSearchParams();
	for (const [k, v] of Object.entries(query)) {
		if (v !== undefined && v !== null && v !== '') {
			qs.set(k, String(v));
		}
	}
	const s = qs.toString();
	history.replaceState(null, '', `#${path}${s ? `?${s}` : ''}`);
}

// showMetaError shows, or hides once loaded, why the event types and
// states (GET /api/v1/meta) are missing.
function showMetaError() {
	const el = document.getElementById('meta-alert');
	const err = metaError();
	el.hidden = !err;
	el.textContent = err
		? `Could not load the event types and states from the coordinator (${err}): type filters, legends and colours stay incomplete until it answers.`
		: '';
}

// retryMeta loads the event types again after a failure and, once they
// arrive, redraws the page that went without them.
async function retryMeta() {
	if (!metaError()) {
		return;
	}
	if (await loadMeta()) {
		showMetaError();
		if (current) {
			route();
		}
	}
}

function buildShell() {
	const header = document.getElementById('header');
	const navItems = [
		['runs', '#/runs', 'Runs'],
		['new', '#/new', 'New run'],
		['events', '#/events', 'Event log'],
		['workers', '#/workers', 'Workers'],
		['schedules', '#/schedules', 'Schedules'],
		['definitions', '#/definitions', 'Definitions'],
		['metrics', '#/metrics', 'Metrics'],
	];
	fill(header,
		h('a', { class: 'brand', href: '#/runs' },
			h('span', { class: 'logo', 'aria-hidden': 'true' }), 'weft'),
		h('nav', { class: 'nav' }, navItems.map(([key, href, text]) =>
			h('a', { href, 'data-nav': key }, text))),
		h('div', { class: 'live', id: 'live-state', title: 'live event stream' },
			h('span', { class: 'live-dot' }), h('span', { class: 'live-text' }, 'connecting')),
		h('span', { class: 'node-name muted', id: 'node-name' }),
		h('span', { class: 'who muted', id: 'who', hidden: true }),
		h('button', { class: 'btn small ghost', id: 'logout', type: 'button', hidden: true, onclick: logout }, 'Log out'),
	);
	const banner = document.getElementById('stream-banner');
	banner.after(h('div', { id: 'meta-alert', class: 'banner meta-alert', role: 'alert', hidden: true }));
	const text = h('span', { class: 'banner-text' });
	const retry = h('button', { class: 'btn small', type: 'button', onclick: () => stream.reconnectNow() }, 'Reconnect now');
	fill(banner, h('strong', null, 'Live updates are down.'), ' ', text, ' ', retry);
	const live = document.getElementById('live-state');
	const setBanner = () => {
		const s = stream.state;
		live.dataset.state = s;
		live.querySelector('.live-text').textContent =
			s === 'live' ? 'live' : s === 'down' ? 'offline' : s === 'syncing' ? 'syncing' : 'connecting';
		live.title = `live event stream: ${s}; last event #${stream.lastId ?? '—'}`;
		live.dataset.lastEventId = String(stream.lastId ?? '');
		if (s === 'down') {
			const secs = Math.max(0, Math.ceil((stream.retryAt - Date.now()) / 1000));
			text.textContent = secs > 0
				? `Reconnecting in ${secs}s; what happens meanwhile is caught up from the event log.`
				: 'Reconnecting…';
			banner.hidden = false;
		} else {
			banner.hidden = true;
		}
	};
	stream.onStatus((s) => {
		if (s === 'live') {
			retryMeta();
		}
		if (s === 'rebased') {
			// The page loaded while the coordinator was unreachable: load
			// it again now that the stream has a baseline.
			if (current) {
				route();
			}
			return;
		}
		setBanner();
	});
	setInterval(() => {
		if (stream.state === 'down') {
			setBanner();
		}
		refreshAges(document);
		if (current && current.tick) {
			current.tick();
		}
	}, 1000);
	api.info().then((info) => {
		if (info && info.name) {
			document.getElementById('node-name').textContent = info.name;
		}
	}).catch(() => {});
}

function route() {
	const raw = location.hash.replace(/^#/, '') || '/runs';
	const [path, qs] = raw.split('?');
	let match = null;
	let args = null;
	for (const r of routes) {
		const m = path.match(r.re);
		if (m) {
			match = r;
			args = m.slice(1).map(decodeURIComponent);
			break;
		}
	}
	if (!match) {
		history.replaceState(null, '', '#/runs');
		return route();
	}
	if (current && current.unmount) {
		try {
			current.unmount();
		} catch (err) {
			console.error(err);
		}
	}
	current = null;
	for (const a of document.querySelectorAll('nav.nav a')) {
		a.classList.toggle('active', a.dataset.nav === match.nav);
	}
	clear(main);
	main.dataset.page = match.key;
	const container = h('div', { class: `page page-${match.key}` });
	main.appendChild(container);
	current = match.page.mount(container, {
		args, query: parseQuery(qs), stream, navigate, setQuery,
	}) || {};
	window.scrollTo(0, 0);
}

// ---- login (API tokens on, no session) ----

let started = false; // the shell and the stream are up

async function logout() {
	try {
		await api.logout();
	} catch (err) {
		console.error(err);
	}
	location.reload();
}

// showWho puts who is logged in into the header.
function showWho(me) {
	const who = document.getElementById('who');
	const out = document.getElementById('logout');
	if (!who || !me || !me.auth || !me.name) {
		return;
	}
	who.textContent = `${me.name} (${me.role})`;
	who.hidden = false;
	out.hidden = me.via !== 'session';
}

// showLogin replaces the page with a form taking an API token. A right
// token gets a session cookie (HttpOnly: this script never sees it) and
// the dashboard starts; a wrong one says so.
function showLogin(message) {
	if (current && current.unmount) {
		try {
			current.unmount();
		} catch (err) {
			console.error(err);
		}
	}
	current = null;
	document.getElementById('stream-banner').hidden = true;
	const input = h('input', {
		id: 'login-token', type: 'password', autocomplete: 'current-password',
		required: true, spellcheck: 'false', placeholder: 'API token',
	});
	const error = h('div', { id: 'login-error', class: 'error-text', role: 'alert', hidden: !message }, message || '');
	const button = h('button', { class: 'btn primary', type: 'submit', id: 'login-submit' }, 'Log in');
	const form = h('form', { class: 'form card login', id: 'login-form' },
		h('h2', null, 'Log in to weft'),
		h('p', { class: 'muted' }, 'This coordinator needs an API token (a line of its --api-tokens file).'),
		h('div', { class: 'field' }, h('label', { for: 'login-token' }, 'Token'), input),
		error,
		h('div', { class: 'form-actions' }, button));
	form.addEventListener('submit', async (ev) => {
		ev.preventDefault();
		button.disabled = true;
		error.hidden = true;
		try {
			await api.login(input.value);
			input.value = '';
			if (started) {
				location.reload(); // pages and stream start afresh
				return;
			}
			await startApp();
		} catch (err) {
			error.textContent = err.status === 401
				? 'That token is not known to this coordinator.'
				: `Login failed: ${err.message}`;
			error.hidden = false;
			button.disabled = false;
			input.focus();
		}
	});
	clear(main);
	main.dataset.page = 'login';
	main.appendChild(h('div', { class: 'page page-login' }, form));
	document.body.dataset.ready = '1';
	input.focus();
}

async function boot() {
	setUnauthorizedHandler(() => {
		if (main.dataset.page !== 'login') {
			showLogin('Your session has ended: log in again.');
		}
	});
	let me = null;
	try {
		me = await api.whoami();
	} catch (err) {
		// An older coordinator, or none: start, and let the pages say.
		if (err.status === 401) {
			return;
		}
	}
	if (me && me.auth && !me.name) {
		buildShellOnce();
		showLogin();
		return;
	}
	await startApp(me);
}

let shellBuilt = false;
function buildShellOnce() {
	if (!shellBuilt) {
		shellBuilt = true;
		buildShell();
	}
}

async function startApp(me) {
	buildShellOnce();
	started = true;
	if (!me) {
		me = await api.whoami().catch(() => null);
	}
	showWho(me);
	// Pages load once the stream knows the newest event id, so an event
	// between a page's first fetch and the live stream is never lost.
	// The event types and states too: pages build their filters from them.
	await Promise.all([
		Promise.race([stream.start(), new Promise((r) => setTimeout(r, 3000))]),
		loadMeta().then(showMetaError),
	]);
	window.addEventListener('hashchange', route);
	route();
	document.body.dataset.ready = '1';
}

window.weft = { stream }; // for the console and the browser tests
boot();
