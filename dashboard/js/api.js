// api: the HTTP API client. Every call returns parsed JSON or throws an
// ApiError carrying the HTTP status and the coordinator's message.
import { buildQuery, setMeta, setMetaError } from './util.js';

export const BASE = '/api/v1';

export class ApiError extends Error {
	constructor(status, message, code) {
		super(message);
		this.status = status;
		this.code = code || '';
	}
}

// onUnauthorized is called with the error when a call is answered 401
// (API tokens are on and this browser has no session, or it expired); the
// shell shows the login page then (app.js).
let onUnauthorized = null;
export function setUnauthorizedHandler(fn) {
	onUnauthorized = fn;
}

// request sends one call; body (an object) is sent as JSON. Every call that
// changes state says Content-Type: application/json, body or not: the
// server refuses any other (a cross-site form cannot send it).
export async function request(method, path, body) {
	const opts = { method, headers: { Accept: 'application/json' } };
	if (method !== 'GET' && method !== 'HEAD') {
		opts.headers['Content-Type'] = 'application/json';
	}
	if (body !== undefined) {
		opts.body = typeof body === 'string' ? body : JSON.stringify(body);
	}
	let resp;
	try {
		resp = await fetch(path.startsWith('/') ? path : `${BASE}/${path}`, opts);
	} catch (err) {
		throw new ApiError(0, `cannot reach the coordinator (${err.message})`, 'ENET');
	}
	const text = await resp.text();
	let data = null;
	if (text !== '') {
		try {
			data = JSON.parse(text);
		} catch {
			data = null;
		}
	}
	if (!resp.ok) {
		const msg = (data && data.error) || text || resp.statusText;
		const err = new ApiError(resp.status, msg, data && data.code);
		if (resp.status === 401 && onUnauthorized && !path.endsWith('/login')) {
			onUnauthorized(err);
		}
		throw err;
	}
	return data;
}

export const get = (path, query) =>
	request('GET', query ? `${path}?${buildQuery(query)}` : path);
export const post = (path, body) => request('POST', path, body ?? {});

// normalizeEvent gives a stored event the shape of a streamed one: ts_ms
// from ts when the coordinator leaves it out, and data always an object.
export function normalizeEvent(ev) {
	if (!ev.ts_ms && ev.ts) {
		ev.ts_ms = Date.parse(ev.ts) || 0;
	}
	if (ev.data === null || typeof ev.data !== 'object') {
		ev.data = ev.data === undefined || ev.data === null ? {} : { value: ev.data };
	}
	return ev;
}

export const api = {
	info: () => get(`${BASE}/info`),
	definitions: () => get(`${BASE}/definitions`),
	define: (def) => post(`${BASE}/definitions`, def),
	// runs: {runs, next_before}: a page of run summaries, newest first;
	// next_before is the before= of the next page, null on the last.
	runs: (q) => get(`${BASE}/runs`, q),
	// run: the run with one page of its steps (q: steps_after,
	// steps_limit); next_after names the next page's cursor.
	run: (id, q) => get(`${BASE}/runs/${encodeURIComponent(id)}`, q),
	// outputUrl: where a step's (or, with no step, the run's) whole
	// output is, however large.
	outputUrl: (id, step) => (step
		? `${BASE}/runs/${encodeURIComponent(id)}/steps/${encodeURIComponent(step)}/output`
		: `${BASE}/runs/${encodeURIComponent(id)}/output`),
	// eventsPage: {events, next}: next is the cursor of the next page when
	// the coordinator cut this one (by count or size: its next_after),
	// else null.
	eventsPage: (q) => get(`${BASE}/events`, q).then((page) => ({
		events: page.events.map(normalizeEvent), next: page.next_after,
	})),
	createRun: (body) => post(`${BASE}/runs`, body),
	lifecycle: (id, action) =>
		post(`${BASE}/runs/${encodeURIComponent(id)}/${action}`),
	// retryFrom re-runs step and everything downstream of it in ended
	// run id (a succeeded one too).
	retryFrom: (id, step) =>
		post(`${BASE}/runs/${encodeURIComponent(id)}/retry`, { from: step }),
	// signal delivers signal `name` to run id: data (JSON text, sent as
	// is: the coordinator checks it) becomes the waiting steps' output;
	// reject fails them instead.
	signal: (id, name, data, reject) =>
		post(`${BASE}/runs/${encodeURIComponent(id)}/signals/${encodeURIComponent(name)}${reject ? '?reject=true' : ''}`, data),
	events: (q) => api.eventsPage(q).then((page) => page.events),
	workers: () => get(`${BASE}/workers`),
	schedules: () => get(`${BASE}/schedules`),
	createSchedule: (body) => post(`${BASE}/schedules`, body),
	scheduleAction: (name, action) => (action === 'delete'
		? request('DELETE', `${BASE}/schedules/${encodeURIComponent(name)}`)
		: post(`${BASE}/schedules/${encodeURIComponent(name)}/${action}`)),
	meta: () => get(`${BASE}/meta`),
	// whoami: {auth, name, role, via}; name is null when nobody is logged in.
	whoami: () => get(`${BASE}/whoami`),
	// login exchanges a token for an HttpOnly session cookie.
	login: (token) => post(`${BASE}/login`, { token }),
	logout: () => post(`${BASE}/logout`),
};

// loadMeta fetches GET /meta (the event types and states, util.js) once.
// It never throws: a failure is recorded (util.js metaError) and the pages
// run without the lists; a later call tries again.
let metaLoading = null;
export function loadMeta() {
	if (!metaLoading) {
		metaLoading = api.meta().then((m) => {
			setMeta(m);
			return true;
		}, (err) => {
			setMetaError(err.message);
			metaLoading = null;
			return false;
		});
	}
	return metaLoading;
}

// allEvents pages through GET /events with the filter q (after= cursor)
// until the last page (next_after null: pages are bounded in bytes too,
// so a short page is not always the last, nor a full one), calling
// onPage(events) for each page. Stops after maxPages pages and returns the
// last id seen.
export async function allEvents(q, onPage, { pageSize = 1000, maxPages = 1000 } = {}) {
	let after = q.after || 0;
	for (let i = 0; i < maxPages; i++) {
		const { events: page, next } = await api.eventsPage({ ...q, after, limit: pageSize });
		if (page.length > 0) {
			onPage(page);
			after = page[page.length - 1].id;
		}
		if (!next) {
			break;
		}
	}
	return after;
}

// wholeRun loads run id with all its steps, page after page (at most
// maxPages of them).
export async function wholeRun(id, { maxPages = 200 } = {}) {
	const run = await api.run(id);
	for (let i = 0; run.next_after && i < maxPages; i++) {
		const more = await api.run(id, { steps_after: run.next_after });
		run.steps.push(...(more.steps || []));
		run.next_after = more.next_after;
	}
	return run;
}
