// harness: starts a real weft cluster from a build tree for the browser
// tests (coordinator on loopback ports it binds itself, port 0, with a temp
// SQLite db; workers joined to it), talks to its HTTP API, launches
// headless Chromium, and stops everything it started, by pid. Every wait
// is bounded.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SRC_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu',
	'--disable-background-networking', '--disable-quic', '--no-first-run',
	'--disable-component-update', '--disable-sync'];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// fatal marks an error that ends a waitFor at once instead of being
// retried (the process it waits on has died, say).
export function fatal(message) {
	const e = new Error(message);
	e.fatal = true;
	return e;
}

// waitFor polls fn until it returns a truthy value or timeoutMs passes.
// An error fn throws is retried, unless it was made by fatal().
export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 100, what = 'condition' } = {}) {
	const end = Date.now() + timeoutMs;
	let last;
	for (;;) {
		try {
			const v = await fn();
			if (v) {
				return v;
			}
		} catch (err) {
			if (err && err.fatal) {
				throw err;
			}
			last = err;
		}
		if (Date.now() > end) {
			throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
		}
		await sleep(intervalMs);
	}
}

const started = new Set(); // every child process, so exit can stop them

function stopAll() {
	for (const p of started) {
		try {
			process.kill(p.pid, 'SIGKILL');
		} catch {
			// already gone
		}
	}
}
process.on('exit', stopAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
	process.on(sig, () => {
		stopAll();
		process.exit(1);
	});
}

export class Cluster {
	// opts.tokens: the text of an --api-tokens file (written mode 0600);
	// opts.token: the token api() sends as Authorization: Bearer.
	constructor(buildDir, outDir, opts = {}) {
		this.opts = opts;
		this.buildDir = buildDir;
		this.outDir = outDir;
		this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-browser-'));
		this.logDir = path.join(outDir, 'logs');
		fs.mkdirSync(this.logDir, { recursive: true });
		this.workers = new Map();
		this.coord = null;
		this.coordStarts = 0;
	}

	bin(rel) {
		const p = path.join(this.buildDir, rel);
		if (!fs.existsSync(p)) {
			throw new Error(`${p} is missing: build weft first`);
		}
		return p;
	}

	spawnLogged(name, file, args, env = process.env) {
		const log = fs.openSync(path.join(this.logDir, `${name}.log`), 'a');
		const child = spawn(file, args, { stdio: ['ignore', log, log], env });
		fs.closeSync(log);
		started.add(child);
		child.exitPromise = new Promise((resolve) => {
			child.on('exit', (code, signal) => {
				started.delete(child);
				resolve({ code, signal });
			});
		});
		return child;
	}

	// startCoordinator starts the coordinator and waits for GET /health.
	// The first start asks for port 0 everywhere and reads what the
	// coordinator bound from its --ports-file; a restart (same db) asks
	// for those same addresses again, since the workers and the page know
	// them.
	async startCoordinator() {
		const first = !this.urls;
		const want = first
			? {
				control: 'tcp://127.0.0.1:0', cluster: 'tcp://127.0.0.1:0',
				results: 'tcp://127.0.0.1:0', events: 'tcp://127.0.0.1:0',
				http: '127.0.0.1:0',
			}
			: { ...this.urls, http: this.httpAddr };
		const portsFile = path.join(this.tmp, 'ports.json');
		fs.rmSync(portsFile, { force: true });
		this.coordStarts++;
		const args = [
			'--db', `sqlite:${path.join(this.tmp, 'weft.db')}`,
			'--control', want.control, '--cluster', want.cluster,
			'--results', want.results, '--events', want.events,
			'--http', want.http, '--dashboard', path.join(SRC_DIR, 'dashboard'),
			'--name', 'coordinator', '--survey-ms', '200', '--lost-after', '3',
			'--ports-file', portsFile,
		];
		if (this.opts.tokens) {
			const file = path.join(this.tmp, 'tokens');
			fs.writeFileSync(file, this.opts.tokens, { mode: 0o600 });
			args.push('--api-tokens', file);
		}
		// Its cluster cookie (the key of run secrets) and its home (the
		// database registry) stay in the test's directory, never the
		// user's ~/.weft.
		this.coord = this.spawnLogged('coordinator', this.bin('coordinator/weft-coordinator'), args,
			{ ...process.env, WEFT_COOKIE_FILE: path.join(this.tmp, 'cookie'), WEFT_HOME: this.tmp });
		const child = this.coord;
		let exited = null;
		child.exitPromise.then((x) => { exited = x; });
		const died = () => {
			if (exited) {
				throw fatal(`coordinator exited (${JSON.stringify(exited)}); see ${this.logDir}/coordinator.log`);
			}
		};
		// The file appears (by rename, whole) once every socket is bound.
		const bound = await waitFor(() => {
			died();
			if (!fs.existsSync(portsFile)) {
				return null;
			}
			return JSON.parse(fs.readFileSync(portsFile, 'utf8'));
		}, { timeoutMs: 20000, intervalMs: 20, what: `the coordinator to write ${portsFile}` });
		for (const k of ['control', 'cluster', 'results', 'events', 'http']) {
			if (typeof bound[k] !== 'string' || /:0$/.test(bound[k])) {
				throw new Error(`${portsFile}: bad ${k} address ${JSON.stringify(bound[k])}`);
			}
		}
		if (!first && (bound.http !== this.httpAddr || bound.cluster !== this.urls.cluster)) {
			throw new Error(`the restarted coordinator bound ${JSON.stringify(bound)}, not ${JSON.stringify(want)}`);
		}
		this.urls = {
			control: bound.control, cluster: bound.cluster,
			results: bound.results, events: bound.events,
		};
		this.httpAddr = bound.http;
		this.base = `http://${this.httpAddr}`;
		await waitFor(async () => {
			died();
			const r = await fetch(`${this.base}/health`);
			return r.ok;
		}, { timeoutMs: 20000, what: 'the coordinator to answer /health' });
	}

	async killCoordinator(signal = 'SIGKILL') {
		const c = this.coord;
		if (!c) {
			return;
		}
		this.coord = null;
		process.kill(c.pid, signal);
		await Promise.race([c.exitPromise, sleep(10000)]);
	}

	// Every worker may run exec programs from execDir (the tests write
	// their scripts there).
	get execDir() {
		const dir = path.join(this.tmp, 'bin');
		fs.mkdirSync(dir, { recursive: true });
		return dir;
	}

	async startWorker(name, { slots = 4 } = {}) {
		const w = this.spawnLogged(`worker-${name}`, this.bin('worker/weft-worker'), [
			'--join', this.urls.cluster, '--listen', 'tcp://127.0.0.1:0',
			'--name', name, '--slots', String(slots),
			'--cookie-file', path.join(this.tmp, 'cookie'),
			'--exec-allow', this.execDir,
			// The test's own spool: never the user's ~/.weft, nor one a
			// concurrent test's worker of the same name holds.
			'--spool', path.join(this.tmp, `spool-${name}`),
		]);
		this.workers.set(name, w);
		return w;
	}

	async killWorker(name, signal = 'SIGKILL') {
		const w = this.workers.get(name);
		if (!w) {
			return;
		}
		this.workers.delete(name);
		process.kill(w.pid, signal);
		await Promise.race([w.exitPromise, sleep(10000)]);
	}

	async waitWorkers(names, timeoutMs = 15000) {
		await waitFor(async () => {
			const ws = await this.api('GET', '/api/v1/workers');
			return names.every((n) => ws.some((w) => w.name === n && w.state === 'alive'));
		}, { timeoutMs, what: `workers ${names.join(', ')} to be alive` });
	}

	// api calls the HTTP API and returns the parsed body; throws on an
	// error status with the coordinator's message.
	async api(method, p, body) {
		const headers = body !== undefined ? { 'Content-Type': 'application/json' } : {};
		if (this.opts.token) {
			headers.Authorization = `Bearer ${this.opts.token}`;
		}
		const r = await fetch(`${this.base}${p}`, {
			method,
			headers,
			body: body !== undefined ? JSON.stringify(body) : undefined,
			signal: AbortSignal.timeout(10000),
		});
		const text = await r.text();
		const data = text ? JSON.parse(text) : null;
		if (!r.ok) {
			const e = new Error(`${method} ${p}: HTTP ${r.status}: ${data && data.error}`);
			e.status = r.status;
			throw e;
		}
		return data;
	}

	async stop() {
		for (const name of [...this.workers.keys()]) {
			await this.killWorker(name, 'SIGTERM');
		}
		if (this.coord) {
			await this.killCoordinator('SIGTERM');
		}
		stopAll();
		fs.rmSync(this.tmp, { recursive: true, force: true });
	}
}

// launchBrowser starts Debian's Chromium through playwright-core with a
// fresh profile directory.
export async function launchBrowser(outDir) {
	const { chromium } = await import('playwright-core');
	const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-chromium-'));
	const context = await chromium.launchPersistentContext(profile, {
		executablePath: '/usr/bin/chromium',
		args: CHROMIUM_ARGS,
		headless: true,
		viewport: { width: 1280, height: 800 },
		timeout: 60000,
	});
	context.setDefaultTimeout(15000);
	return {
		context,
		async close() {
			await context.close();
			fs.rmSync(profile, { recursive: true, force: true });
		},
	};
}

// watchConsole records console errors and uncaught page errors. Network
// failures that a test provokes on purpose (the coordinator killed, a
// definition the coordinator must reject) are tolerated only while
// allow() says so. allow(re) returns a release function; its seen() says
// how many console errors it has tolerated so far, so that a test can wait
// for the browser's own line about a failure it provoked.
export function watchConsole(page) {
	const errors = [];
	const allowed = []; // { re, seen }
	page.on('console', (msg) => {
		if (msg.type() !== 'error') {
			return;
		}
		const text = msg.text();
		const a = allowed.find((x) => x.re.test(text));
		if (a) {
			a.seen++;
			return;
		}
		errors.push(`console.error: ${text} (${page.url()})`);
	});
	page.on('pageerror', (err) => errors.push(`page error: ${err.message} (${page.url()})`));
	return {
		errors,
		allow(re) {
			const a = { re, seen: 0 };
			allowed.push(a);
			const release = () => {
				const i = allowed.indexOf(a);
				if (i >= 0) {
					allowed.splice(i, 1);
				}
			};
			release.seen = () => a.seen;
			return release;
		},
	};
}

// ---- helpers the test files share (web.test.mjs uses them; the older
// files keep their own copies for now) ----

// go navigates inside the single-page app (a hash change, not a reload)
// and waits for the address to say so.
export async function go(page, hash) {
	await page.evaluate((h) => { location.hash = h; }, hash);
	await page.waitForFunction((h) => location.hash === h || location.hash.startsWith(`${h}?`), hash);
}

// screenshotter returns shoot(name): a full-page screenshot to
// outDir/PREFIX-NN-name.png, numbered in order.
export function screenshotter(page, outDir, prefix) {
	let n = 0;
	return async (name) => {
		n++;
		const file = path.join(outDir, `${prefix}-${String(n).padStart(2, '0')}-${name}.png`);
		await page.screenshot({ path: file, fullPage: true });
		return file;
	};
}

// runEnd waits (bounded) for run id to end and returns it.
export function runEnd(cluster, id, timeoutMs = 20000) {
	return waitFor(async () => {
		const r = await cluster.api('GET', `/api/v1/runs/${id}`);
		return ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(r.status) ? r : null;
	}, { timeoutMs, what: `run ${id} to end` });
}

// startPage opens the dashboard of cluster in a new browser and waits
// until it is ready and live: {browser, page, con}.
export async function startPage(cluster, outDir, hash = '#/runs') {
	const browser = await launchBrowser(outDir);
	const page = await browser.context.newPage();
	const con = watchConsole(page);
	await page.goto(`${cluster.base}/${hash}`);
	await page.waitForSelector('body[data-ready="1"]');
	await page.waitForSelector('#live-state[data-state="live"]', { timeout: 20000 });
	return { browser, page, con };
}

// closeAll closes the browser and stops the cluster, whichever started.
export async function closeAll(browser, cluster) {
	if (browser) {
		await browser.close();
	}
	if (cluster) {
		await cluster.stop();
	}
}
