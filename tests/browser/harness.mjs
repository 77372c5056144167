// harness: starts a real weft cluster from a build tree for the browser
// tests (coordinator on free loopback ports with a temp SQLite db, workers
// joined to it), talks to its HTTP API, launches headless Chromium, and
// stops everything it started, by pid. Every wait is bounded.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SRC_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu',
	'--disable-background-networking', '--disable-quic', '--no-first-run',
	'--disable-component-update', '--disable-sync'];

// freePort asks the kernel for an unused loopback port.
export function freePort() {
	return new Promise((resolve, reject) => {
		const srv = net.createServer();
		srv.unref();
		srv.on('error', reject);
		srv.listen(0, '127.0.0.1', () => {
			const { port } = srv.address();
			srv.close(() => resolve(port));
		});
	});
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// waitFor polls fn until it returns a truthy value or timeoutMs passes.
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
	constructor(buildDir, outDir) {
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

	spawnLogged(name, file, args) {
		const log = fs.openSync(path.join(this.logDir, `${name}.log`), 'a');
		const child = spawn(file, args, { stdio: ['ignore', log, log] });
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

	async allocatePorts() {
		const ports = [];
		while (ports.length < 5) {
			const p = await freePort();
			if (!ports.includes(p)) {
				ports.push(p);
			}
		}
		const [control, clusterP, results, events, http] = ports;
		this.urls = {
			control: `tcp://127.0.0.1:${control}`,
			cluster: `tcp://127.0.0.1:${clusterP}`,
			results: `tcp://127.0.0.1:${results}`,
			events: `tcp://127.0.0.1:${events}`,
		};
		this.httpAddr = `127.0.0.1:${http}`;
		this.base = `http://${this.httpAddr}`;
	}

	// startCoordinator starts (or restarts, on the same ports and db) the
	// coordinator and waits for GET /health.
	async startCoordinator() {
		if (!this.urls) {
			await this.allocatePorts();
		}
		this.coordStarts++;
		const args = [
			'--db', `sqlite:${path.join(this.tmp, 'weft.db')}`,
			'--control', this.urls.control, '--cluster', this.urls.cluster,
			'--results', this.urls.results, '--events', this.urls.events,
			'--http', this.httpAddr, '--dashboard', path.join(SRC_DIR, 'dashboard'),
			'--name', 'coordinator', '--survey-ms', '200', '--lost-after', '3',
		];
		this.coord = this.spawnLogged('coordinator', this.bin('coordinator/weft-coordinator'), args);
		const child = this.coord;
		let exited = null;
		child.exitPromise.then((x) => { exited = x; });
		await waitFor(async () => {
			if (exited) {
				throw new Error(`coordinator exited (${JSON.stringify(exited)}); see ${this.logDir}/coordinator.log`);
			}
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

	async startWorker(name, { slots = 4 } = {}) {
		const w = this.spawnLogged(`worker-${name}`, this.bin('worker/weft-worker'), [
			'--join', this.urls.cluster, '--listen', 'tcp://127.0.0.1:0',
			'--name', name, '--slots', String(slots),
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
		const r = await fetch(`${this.base}${p}`, {
			method,
			headers: body !== undefined ? { 'Content-Type': 'application/json' } : {},
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
// expect() says so.
export function watchConsole(page) {
	const errors = [];
	const allowed = [];
	page.on('console', (msg) => {
		if (msg.type() !== 'error') {
			return;
		}
		const text = msg.text();
		if (allowed.some((re) => re.test(text))) {
			return;
		}
		errors.push(`console.error: ${text} (${page.url()})`);
	});
	page.on('pageerror', (err) => errors.push(`page error: ${err.message} (${page.url()})`));
	return {
		errors,
		allow(re) {
			allowed.push(re);
			return () => {
				const i = allowed.indexOf(re);
				if (i >= 0) {
					allowed.splice(i, 1);
				}
			};
		},
	};
}
