// stream: the live event stream. A WebSocket to the coordinator's nng pub
// socket (the SP-over-WebSocket mapping); every message is topic + 0x00 +
// Envelope{events}. The stream is a fast path, not the
// record: event ids are global and consecutive, so a gap, a reconnect or a
// late start is filled from GET /api/v1/events?after=LASTID. Subscribers
// get every event exactly once, in id order.
import { api, allEvents } from './api.js';
import { decodeStreamMessage } from './proto.js';

// The SP subprotocol to ask for. nng's ws listener (1.5.x) accepts the
// name of its own socket's protocol, "pub.sp.nanomsg.org", which is what
// nng's own sub dialer sends; "sub.sp.nanomsg.org" is tried only when that
// is refused and nothing has worked yet.
const SUBPROTOCOLS = ['pub.sp.nanomsg.org', 'sub.sp.nanomsg.org'];
const WILDCARD_HOSTS = new Set(['', '0.0.0.0', '[::]', '::', '*']);
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 8000;

// latestEventId finds the newest event id with the contract's own query:
// GET /events?after=X&limit=1 answers the first event after X, so an
// exponential probe and a binary search find the last one in about
// 2*log2(id) small requests. /api/v1/info's last_event_id, when the
// coordinator offers it, answers at once.
async function latestEventId(info) {
	if (info && Number.isFinite(info.last_event_id)) {
		return info.last_event_id;
	}
	const firstAfter = async (x) => {
		const page = await api.events({ after: x, limit: 1 });
		return page.length > 0 ? page[0].id : null;
	};
	let lo = await firstAfter(0); // an id known to exist
	if (lo === null) {
		return 0;
	}
	let step = 1;
	let hi = null; // smallest value known to have no event after it
	for (;;) {
		const id = await firstAfter(lo + step - 1);
		if (id === null) {
			hi = lo + step - 1;
			break;
		}
		lo = id;
		step *= 2;
	}
	// Invariant: an event with id lo exists; none after hi.
	while (lo < hi) {
		const mid = Math.floor((lo + hi) / 2);
		const id = await firstAfter(mid);
		if (id === null) {
			hi = mid;
		} else {
			lo = id;
		}
	}
	return lo;
}

export class LiveStream {
	constructor(path = '/api/v1/stream') {
		this.path = path;
		this.scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
		this.url = `${this.scheme}//${location.host}${path}`;
		// Where to try, in order: this page's host, then the coordinator's
		// own --http address (nng binds the ws endpoint to that host name,
		// so a page opened as "localhost" reaches it only there).
		this.targets = SUBPROTOCOLS.map((proto) => ({ url: this.url, proto }));
		this.target = 0;       // index into targets
		this.state = 'connecting';
		this.lastId = null;    // last event id delivered
		this.queue = [];       // received, not yet delivered
		this.pumping = false;
		this.needFill = false; // fill from the API before the queue
		this.needBaseline = false; // find lastId before delivering
		this.rebased = 0;      // times the baseline was found late
		this.subs = new Set();
		this.statusSubs = new Set();
		this.ws = null;
		this.attempt = 0;
		this.retryTimer = null;
		this.retryAt = 0;
		this.worked = false;   // some target has opened
		this.opened = false;   // the current socket reached onopen
		this.stats = { messages: 0, events: 0, filled: 0, gaps: 0, reconnects: 0, bad: 0 };
	}

	// start finds the baseline event id, then connects. The promise
	// resolves once the baseline is known (or could not be), so pages
	// that load after it miss nothing.
	async start() {
		let info = null;
		try {
			info = await api.info();
		} catch {
			// the coordinator is not there yet
		}
		this.addTargets(info);
		try {
			this.lastId = await latestEventId(info);
		} catch {
			this.lastId = null; // found once the stream opens
		}
		this.connect();
	}

	addTargets(info) {
		const addr = info && typeof info.http === 'string' ? info.http : '';
		const i = addr.lastIndexOf(':');
		const host = i > 0 ? addr.slice(0, i) : '';
		if (!addr || addr === location.host || WILDCARD_HOSTS.has(host)) {
			return;
		}
		const url = `${this.scheme}//${addr}${this.path}`;
		for (const proto of SUBPROTOCOLS) {
			this.targets.push({ url, proto });
		}
	}

	subscribe(fn) {
		this.subs.add(fn);
		return () => this.subs.delete(fn);
	}

	onStatus(fn) {
		this.statusSubs.add(fn);
		fn(this.state, this);
		return () => this.statusSubs.delete(fn);
	}

	setState(s) {
		if (this.state !== s) {
			this.state = s;
			for (const fn of this.statusSubs) {
				fn(s, this);
			}
		}
	}

	connect() {
		clearTimeout(this.retryTimer);
		this.retryTimer = null;
		let ws;
		try {
			const t = this.targets[this.target];
			ws = new WebSocket(t.url, [t.proto]);
		} catch {
			this.scheduleReconnect();
			return;
		}
		ws.binaryType = 'arraybuffer';
		this.ws = ws;
		this.opened = false;
		ws.onopen = () => {
			this.opened = true;
			this.worked = true;
			this.attempt = 0;
			this.needFill = this.lastId !== null;
			this.needBaseline = this.lastId === null;
			this.setState('syncing');
			this.pump();
		};
		ws.onmessage = (m) => this.onMessage(m.data);
		ws.onclose = () => {
			if (this.ws === ws) {
				this.ws = null;
				if (!this.opened && !this.worked) {
					this.target = (this.target + 1) % this.targets.length;
				}
				this.scheduleReconnect();
			}
		};
		ws.onerror = () => {
			// onclose follows and reconnects.
		};
	}

	scheduleReconnect() {
		if (!this.worked && this.targets.length === SUBPROTOCOLS.length) {
			// No address has worked and the coordinator's own is unknown:
			// ask for it (the coordinator may have been down at start).
			api.info().then((info) => {
				if (this.targets.length === SUBPROTOCOLS.length) {
					this.addTargets(info);
				}
			}).catch(() => {});
		}
		const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
		const delay = Math.round(base * (0.8 + Math.random() * 0.4));
		this.attempt++;
		this.stats.reconnects++;
		this.retryAt = Date.now() + delay;
		this.setState('down');
		for (const fn of this.statusSubs) {
			fn('down', this); // listeners re-read retryAt
		}
		this.retryTimer = setTimeout(() => this.connect(), delay);
	}

	// reconnectNow skips the rest of the backoff wait.
	reconnectNow() {
		if (this.state === 'down') {
			this.connect();
		}
	}

	onMessage(data) {
		if (!(data instanceof ArrayBuffer)) {
			this.stats.bad++;
			return;
		}
		let msg;
		try {
			msg = decodeStreamMessage(data);
		} catch {
			this.stats.bad++; // a message we cannot read: the gap fill covers it
			return;
		}
		this.stats.messages++;
		if (msg.events.length > 0) {
			for (const ev of msg.events) {
				this.queue.push(ev);
			}
			this.pump();
		}
	}

	emit(events) {
		this.stats.events += events.length;
		for (const fn of this.subs) {
			try {
				fn(events);
			} catch (err) {
				console.error('live event subscriber failed', err);
			}
		}
	}

	// fill delivers every stored event after lastId, page by page.
	async fill() {
		this.stats.filled++;
		const start = this.lastId ?? 0;
		await allEvents({ after: start }, (page) => {
			const fresh = page.filter((ev) => this.lastId === null || ev.id > this.lastId);
			if (fresh.length > 0) {
				this.lastId = fresh[fresh.length - 1].id;
				this.emit(fresh);
			}
		});
	}

	// pump delivers the queue in id order: duplicates are dropped, a gap
	// (or a reconnect) is filled from the API first.
	async pump() {
		if (this.pumping) {
			return;
		}
		this.pumping = true;
		try {
			for (;;) {
				if (this.needBaseline) {
					// The coordinator was unreachable at start: take its
					// newest id now; pages reload their state after this
					// (the 'rebased' status below).
					const info = await api.info();
					if (this.targets.length === SUBPROTOCOLS.length) {
						this.addTargets(info);
					}
					this.lastId = await latestEventId(info);
					this.needBaseline = false;
					this.rebased++;
					for (const fn of this.statusSubs) {
						fn('rebased', this);
					}
				}
				if (this.needFill) {
					await this.fill();
					this.needFill = false;
				}
				if (this.queue.length === 0) {
					break;
				}
				this.queue.sort((a, b) => a.id - b.id);
				const out = [];
				let i = 0;
				let gap = false;
				for (; i < this.queue.length; i++) {
					const ev = this.queue[i];
					if (this.lastId === null) {
						this.lastId = ev.id - 1;
					}
					if (ev.id <= this.lastId) {
						continue;
					}
					if (ev.id !== this.lastId + 1) {
						gap = true;
						break;
					}
					out.push(ev);
					this.lastId = ev.id;
				}
				this.queue.splice(0, i);
				if (out.length > 0) {
					this.emit(out);
				}
				if (gap) {
					this.stats.gaps++;
					await this.fill();
					// Ids the store does not have (never committed) are
					// not waited for.
					if (this.queue.length > 0 && this.queue[0].id > this.lastId + 1) {
						this.lastId = this.queue[0].id - 1;
					}
				}
			}
			if (this.ws && this.ws.readyState === WebSocket.OPEN) {
				this.setState('live');
			}
		} catch {
			// The API is unreachable: keep the queue, and fill again once the
			// stream is back.
			this.needFill = this.lastId !== null;
			this.needBaseline = this.lastId === null;
			if (this.ws) {
				this.ws.close();
			}
		} finally {
			this.pumping = false;
		}
	}
}
