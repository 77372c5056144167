// dashboard.test: the dashboard in headless Chromium against a real
// coordinator and two workers from the build tree. Creates runs from the
// form, watches steps change live, reads a failed step's error in the side
// panel, filters the event log, watches a worker join and get lost, and
// reconnects after the coordinator restarts. Saves a screenshot of each
// page; fails on any console error.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import {
	Cluster, SRC_DIR, launchBrowser, sleep, waitFor, watchConsole,
} from './harness.mjs';

const BUILD = path.resolve(process.env.WEFT_BUILD_DIR || path.join(SRC_DIR, 'build'));
const OUT = path.resolve(process.env.WEFT_BROWSER_OUT || path.join(BUILD, 'browser-screenshots'));
const LIVE_WAIT = 20000;

// Network noise Chromium logs as console errors while the coordinator is
// down on purpose, or when it answers 4xx to a request the test makes it
// refuse.
const NET_DOWN = /WebSocket connection to .* failed|Failed to load resource: net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|EMPTY_RESPONSE|CONNECTION_CLOSED)/;
const HTTP_400 = /Failed to load resource: the server responded with a status of 400/;

const DEFS = {
	slow: {
		name: 'slow',
		description: 'A quick step, a two-second sleep, a quick step.',
		steps: [
			{ id: 'first', type: 'echo', with: { n: 1 } },
			{ id: 'nap', type: 'sleep', depends_on: ['first'], with: { ms: 2500 } },
			{ id: 'last', type: 'echo', depends_on: ['nap'], with: { done: true } },
		],
	},
	flaky: {
		name: 'flaky',
		description: 'One step that always fails.',
		steps: [
			{ id: 'prep', type: 'echo', with: { x: 1 } },
			{ id: 'boom', type: 'fail', depends_on: ['prep'], with: { times: 5 } },
			{ id: 'after', type: 'echo', depends_on: ['boom'] },
			{ id: 'side', type: 'sleep', depends_on: ['prep'], with: { ms: 50 } },
		],
	},
};

describe('dashboard', { concurrency: 1 }, () => {
	let cluster;
	let browser;
	let page;
	let con;
	let shot = 0;

	async function screenshot(name, opts = {}) {
		shot++;
		const file = path.join(OUT, `${String(shot).padStart(2, '0')}-${name}.png`);
		await page.screenshot({ path: file, fullPage: opts.fullPage ?? true });
		return file;
	}

	// go navigates inside the single-page app (a hash change, not a reload).
	async function go(hash) {
		await page.evaluate((h) => { location.hash = h; }, hash);
		await page.waitForFunction((h) => location.hash === h || location.hash.startsWith(`${h}?`), hash);
	}

	function noConsoleErrors() {
		const errs = con.errors.splice(0);
		assert.deepEqual(errs, [], 'console errors');
	}

	async function runWhenDone(id) {
		return waitFor(async () => {
			const r = await cluster.api('GET', `/api/v1/runs/${id}`);
			return ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(r.status) ? r : null;
		}, { timeoutMs: LIVE_WAIT, what: `run ${id} to end` });
	}

	before(async () => {
		fs.mkdirSync(OUT, { recursive: true });
		for (const f of fs.readdirSync(OUT)) {
			if (f.endsWith('.png')) {
				fs.rmSync(path.join(OUT, f));
			}
		}
		cluster = new Cluster(BUILD, OUT);
		await cluster.startCoordinator();
		await cluster.startWorker('w1');
		await cluster.startWorker('w2');
		await cluster.waitWorkers(['w1', 'w2']);
		const diamond = JSON.parse(fs.readFileSync(path.join(SRC_DIR, 'examples', 'diamond.json'), 'utf8'));
		await cluster.api('POST', '/api/v1/definitions', diamond);
		await cluster.api('POST', '/api/v1/definitions', DEFS.slow);
		browser = await launchBrowser(OUT);
		page = await browser.context.newPage();
		con = watchConsole(page);
		await page.goto(`${cluster.base}/#/runs`);
		await page.waitForSelector('body[data-ready="1"]');
		await page.waitForSelector('#live-state[data-state="live"]', { timeout: LIVE_WAIT });
	}, { timeout: 120000 });

	after(async () => {
		if (browser) {
			await browser.close();
		}
		if (cluster) {
			await cluster.stop();
		}
	}, { timeout: 60000 });

	it('creates a run from the form and sees it succeed live', { timeout: 90000 }, async () => {
		await go('#/new');
		await page.waitForSelector('#def-select option[value="diamond"]', { state: 'attached' });
		await page.selectOption('#def-select', 'diamond');
		await page.waitForSelector('#param-who');
		assert.equal(await page.inputValue('#param-who'), 'world', 'the default fills the form');
		await page.fill('#param-who', 'browser');
		await page.fill('#run-input', '{"ticket": 42}');
		await screenshot('new-run-form');
		await page.evaluate(() => { window.__noReload = true; });
		await page.click('#start-run');
		await page.waitForFunction(() => /^#\/runs\/[^/?]+/.test(location.hash));
		const runId = await page.evaluate(() => decodeURIComponent(location.hash.split('/')[2].split('?')[0]));
		await page.waitForSelector('#run-status .badge[data-state="succeeded"]', { timeout: LIVE_WAIT });
		for (const step of ['greet', 'relay', 'rest', 'join']) {
			await page.waitForSelector(`g.node[data-id="${step}"][data-state="succeeded"]`, { timeout: LIVE_WAIT });
		}
		assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');
		const run = await cluster.api('GET', `/api/v1/runs/${runId}`);
		assert.equal(run.status, 'succeeded');
		assert.equal(run.params.who, 'browser');
		assert.deepEqual(run.input, { ticket: 42 });
		await page.waitForSelector('#run-progress .progress-text:text("4/4 steps")');
		await page.click('g.node[data-id="relay"]');
		await page.waitForSelector('#side-step-id:text("relay")');
		const out = await page.textContent('#side-output');
		assert.match(out, /hello browser/, 'the step output is shown');
		await screenshot('run-succeeded');
		noConsoleErrors();
	});

	it('shows new runs and step states change live', { timeout: 90000 }, async () => {
		await go('#/runs');
		await page.waitForSelector('#runs-table tbody tr[data-run]');
		// A run created elsewhere appears on the list and ends there, live.
		const { run_id: listed } = await cluster.api('POST', '/api/v1/runs', { definition: 'slow' });
		await page.waitForSelector(`tr[data-run="${listed}"]`, { timeout: LIVE_WAIT });
		await page.waitForSelector(`tr[data-run="${listed}"][data-status="running"]`, { timeout: LIVE_WAIT });
		await screenshot('runs-live');
		await page.waitForSelector(`tr[data-run="${listed}"][data-status="succeeded"]`, { timeout: LIVE_WAIT });
		assert.match(await page.textContent(`tr[data-run="${listed}"] .progress-text`), /^3\/3$/);

		// On the run page, the sleep step goes running -> succeeded.
		const { run_id: id } = await cluster.api('POST', '/api/v1/runs', { definition: 'slow' });
		await go(`#/runs/${id}`);
		await page.waitForSelector('[data-loaded="1"]');
		await page.evaluate(() => {
			window.__napStates = [];
			const g = document.querySelector('g.node[data-id="nap"]');
			window.__napStates.push(g.dataset.state);
			new MutationObserver(() => {
				const s = g.dataset.state;
				if (window.__napStates[window.__napStates.length - 1] !== s) {
					window.__napStates.push(s);
				}
			}).observe(g, { attributes: true, attributeFilter: ['data-state'] });
		});
		await page.waitForSelector('g.node[data-id="nap"][data-state="running"]', { timeout: LIVE_WAIT });
		await page.click('g.node[data-id="nap"]');
		await page.waitForSelector('#side-step-id:text("nap")');
		await screenshot('run-step-running');
		await page.waitForSelector('g.node[data-id="nap"][data-state="succeeded"]', { timeout: LIVE_WAIT });
		await page.waitForSelector('#run-status .badge[data-state="succeeded"]', { timeout: LIVE_WAIT });
		const seen = await page.evaluate(() => window.__napStates);
		const r = seen.indexOf('running');
		assert.ok(r >= 0 && seen.indexOf('succeeded') > r, `nap went running -> succeeded (saw ${seen.join(' -> ')})`);
		await page.waitForSelector('#side-attempts tbody tr');
		assert.match(await page.textContent('#side-attempts'), /succeeded/);
		// Events are shown once each.
		const ids = await page.$$eval('#run-events tbody tr[data-id]', (rows) => rows.map((r) => Number(r.dataset.id)));
		assert.equal(new Set(ids).size, ids.length, 'no event shown twice');
		const stored = (await cluster.api('GET', `/api/v1/events?run=${id}&limit=1000`)).events;
		assert.deepEqual(ids, stored.map((e) => e.id), 'the run log matches the store');
		noConsoleErrors();
	});

	it('shows the coordinator\'s validation error, then a failed step\'s error in the side panel', { timeout: 90000 }, async () => {
		await go('#/new');
		await page.waitForSelector('#def-json');
		const bad = structuredClone(DEFS.flaky);
		bad.steps[2].depends_on = ['nope'];
		await page.fill('#def-json', JSON.stringify(bad, null, 2));
		const allow = con.allow(HTTP_400);
		await page.click('#register-def');
		await page.waitForSelector('#def-error:not([hidden])');
		await waitFor(() => allow.seen() >= 1, { timeoutMs: LIVE_WAIT, intervalMs: 20, what: 'Chromium\'s console line about the 400' });
		allow();
		const msg = await page.textContent('#def-error');
		assert.match(msg, /unknown dependency/);
		assert.equal(await page.textContent('#def-error-step'), 'after', 'the error names the step');
		await screenshot('new-definition-error');

		await page.fill('#def-json', JSON.stringify(DEFS.flaky, null, 2));
		await page.click('#register-run');
		await page.waitForFunction(() => /^#\/runs\/[^/?]+/.test(location.hash));
		await page.waitForSelector('#run-status .badge[data-state="failed"]', { timeout: LIVE_WAIT });
		await page.waitForSelector('g.node[data-id="boom"][data-state="failed"]');
		// A dependent of a failed step is upstream_failed (not run), not skipped.
		await page.waitForSelector('g.node[data-id="after"][data-state="upstream_failed"]');
		await page.click('g.node[data-id="boom"]');
		await page.waitForSelector('#side-error');
		assert.match(await page.textContent('#side-error'), /fail: attempt 1 of 5 set to fail/);
		assert.match(await page.textContent('#side-attempts'), /failed/);
		assert.match(await page.textContent('#side-input'), /"times": 5/);
		assert.match(await page.textContent('#run-error'), /failed/);
		// The run's own log filters by type.
		await page.selectOption('#log-type', 'step_failed');
		await page.waitForFunction(() => {
			const rows = [...document.querySelectorAll('#run-events tbody tr[data-id]')];
			return rows.length === 1 && rows[0].dataset.type === 'step_failed';
		});
		await screenshot('run-failed-step');
		// The lifecycle buttons fit the state: only retry for a failed run.
		assert.equal(await page.isEnabled('button[data-action="retry"]'), true);
		assert.equal(await page.isEnabled('button[data-action="cancel"]'), false);
		// Retry: boom runs again (and fails again: it fails 5 times).
		await page.selectOption('#log-type', '');
		await page.click('button[data-action="retry"]');
		await page.waitForSelector('#run-events tr[data-type="run_retried"]', { timeout: LIVE_WAIT });
		await page.waitForSelector('#run-status .badge[data-state="failed"]', { timeout: LIVE_WAIT });
		await page.waitForFunction(() => document.querySelectorAll('#side-attempts tbody tr').length === 2, null, { timeout: LIVE_WAIT });
		assert.match(await page.textContent('#side-error'), /attempt 2 of 5/);
		noConsoleErrors();
	});

	it('shows a running step\'s latest progress in its panel, live', { timeout: 90000 }, async () => {
		// An exec program reporting progress on WEFT_PROGRESS_FD until told
		// to end (bounded: 60 s).
		const flag = path.join(cluster.tmp, 'progress.go');
		fs.writeFileSync(path.join(cluster.execDir, 'progress.sh'),
			'#!/bin/sh\ni=0\nwhile [ ! -e "$1" ] && [ $i -lt 600 ]; do\n' +
			'  echo "copied $i files" >&"$WEFT_PROGRESS_FD"\n  sleep 0.1; i=$((i + 1))\ndone\necho \'{}\'\n',
			{ mode: 0o755 });
		await cluster.api('POST', '/api/v1/definitions', {
			name: 'progress',
			steps: [{ id: 'copy', type: 'exec', heartbeat_timeout_ms: 2000, with: { cmd: ['progress.sh', flag] } }],
		});
		const { run_id: id } = await cluster.api('POST', '/api/v1/runs', { definition: 'progress' });
		await go(`#/runs/${id}`);
		await page.waitForSelector('[data-loaded="1"]');
		await page.click('g.node[data-id="copy"]');
		await page.waitForSelector('#side-progress', { timeout: LIVE_WAIT });
		const first = await page.textContent('#side-progress');
		assert.match(first, /^copied \d+ files$/, 'a plain line shows as its text');
		// Updated live: a new step_progress every 2 s at most.
		await page.waitForFunction((f) => {
			const t = document.querySelector('#side-progress')?.textContent;
			return t && t !== f;
		}, first, { timeout: LIVE_WAIT });
		await screenshot('run-step-progress');
		fs.writeFileSync(flag, '');
		await page.waitForSelector('#run-status .badge[data-state="succeeded"]', { timeout: LIVE_WAIT });
		// Reloaded from the API (steps[].progress), the panel still shows it.
		await page.reload();
		await page.waitForSelector('[data-loaded="1"]');
		// The selection lives in the URL: the step is selected again.
		await page.waitForSelector('#side-step-id');
		assert.equal(await page.textContent('#side-step-id'), 'copy');
		await page.waitForSelector('#side-progress');
		assert.match(await page.textContent('#side-progress'), /^copied \d+ files$/);
		noConsoleErrors();
	});

	it('shows a map step as one node with its items done/total', { timeout: 90000 }, async () => {
		const fan = {
			name: 'fan',
			steps: [
				{ id: 'list', type: 'echo', with: { files: ['a', 'b', 'c', 'd', 'e', 'f'] } },
				{ id: 'each', type: 'sleep', depends_on: ['list'], map: 'steps.list.output.with.files', max_parallel: 2, with: { ms: 300 } },
				{ id: 'sum', type: 'echo', depends_on: ['each'] },
			],
		};
		await cluster.api('POST', '/api/v1/definitions', fan);
		const { run_id: id } = await cluster.api('POST', '/api/v1/runs', { definition: 'fan' });
		await go(`#/runs/${id}`);
		await page.waitForSelector('[data-loaded="1"]');
		assert.equal(await page.$$eval('g.node', (g) => g.length), 3, 'the items are not nodes of their own');
		await page.click('g.node[data-id="each"]');
		await page.waitForSelector('g.node[data-id="each"][data-state="running"]', { timeout: LIVE_WAIT });
		await page.waitForSelector('#side-items-summary');
		await page.waitForSelector('g.node[data-id="each"][data-state="succeeded"]', { timeout: LIVE_WAIT });
		await page.waitForFunction(() => document.querySelector('g.node[data-id="each"] text.count')?.textContent === '6/6');
		await page.waitForSelector('#run-status .badge[data-state="succeeded"]', { timeout: LIVE_WAIT });
		assert.match(await page.textContent('#side-items-summary'), /6 items, 6 done, 0 failed/);
		assert.equal(await page.$$eval('#side-items tr[data-item]', (r) => r.length), 6);
		assert.match(await page.textContent('#run-progress'), /3\/3 steps/);
		await screenshot('run-map-step');
		noConsoleErrors();
	});

	it('shows a fat run: summaries in the list, a large output as a reference with a link to the whole', { timeout: 120000 }, async () => {
		// A 70 KB parameter echoed back: the step's output is over 64 KiB,
		// stored once and referenced (docs/events.md).
		const big = 'xé'.repeat(35000);
		const def = {
			name: 'fatweb',
			params: { big: { type: 'string' } },
			steps: [{ id: 'e', type: 'echo', with: { v: '${params.big}' } }],
		};
		await cluster.api('POST', '/api/v1/definitions', def);
		const { run_id: id } = await cluster.api('POST', '/api/v1/runs', { definition: 'fatweb', params: { big } });
		await waitFor(async () => (await cluster.api('GET', `/api/v1/runs/${id}`)).status === 'succeeded',
			{ timeoutMs: LIVE_WAIT, what: 'the fat run to succeed' });
		const listed = (await cluster.api('GET', '/api/v1/runs?limit=5')).runs;
		assert.ok(listed.every((r) => r.input === undefined && r.params === undefined && r.output === undefined),
			'listings are summaries');
		await go('#/runs');
		await page.waitForSelector(`tr[data-run="${id}"][data-status="succeeded"]`, { timeout: LIVE_WAIT });
		await go(`#/runs/${id}`);
		await page.waitForSelector('[data-loaded="1"]');
		await page.click('g.node[data-id="e"]');
		await page.waitForSelector('#side-output .blob-link', { timeout: LIVE_WAIT });
		const href = await page.getAttribute('#side-output .blob-link', 'href');
		assert.equal(href, `/api/v1/runs/${id}/steps/e/output`);
		assert.match(await page.textContent('#side-output .blob-preview'), /^\[\d+ bytes\] /);
		// The link gives the whole value.
		const whole = await page.evaluate(async (u) => (await fetch(u)).json(), href);
		assert.equal(whole.with.v, big);
		// The event log shows the preview, not the value.
		await go(`#/events?run=${id}`);
		await page.waitForSelector('tr[data-type="step_succeeded"]', { timeout: LIVE_WAIT });
		assert.match(await page.textContent('tr[data-type="step_succeeded"] td.details'), /\[\d+ bytes\]/);
		await screenshot('run-fat-output');
		noConsoleErrors();
	});

	it('says in the step panel why a step waits', { timeout: 90000 }, async () => {
		// No worker advertises "gpu": the step stays ready, and says so;
		// its dependent names what it waits for.
		const def = {
			name: 'nobody',
			steps: [
				{ id: 'gpu', type: 'gpu' },
				{ id: 'then', type: 'echo', depends_on: ['gpu'] },
			],
		};
		await cluster.api('POST', '/api/v1/definitions', def);
		const { run_id: id } = await cluster.api('POST', '/api/v1/runs', { definition: 'nobody' });
		await go(`#/runs/${id}`);
		await page.waitForSelector('[data-loaded="1"]');
		await page.waitForSelector('g.node[data-id="gpu"][data-state="ready"]', { timeout: LIVE_WAIT });
		await page.click('g.node[data-id="gpu"]');
		await page.waitForSelector('#side-waiting[data-reason="no_worker"]', { timeout: LIVE_WAIT });
		assert.match(await page.textContent('#side-waiting'), /no live worker advertises step type "gpu"/);
		await screenshot('run-step-waiting');
		await page.click('g.node[data-id="then"]');
		await page.waitForSelector('#side-waiting[data-reason="dependencies"]', { timeout: LIVE_WAIT });
		assert.match(await page.textContent('#side-waiting'), /waiting for gpu/);
		// Cancelled: nothing waits any more.
		await page.click('button[data-action="cancel"]');
		await page.waitForSelector('#run-status .badge[data-state="cancelled"]', { timeout: LIVE_WAIT });
		await page.waitForSelector('#side-waiting', { state: 'detached', timeout: LIVE_WAIT });
		noConsoleErrors();
	});

	it('approves and rejects a wait step from its panel', { timeout: 90000 }, async () => {
		const def = {
			name: 'approval',
			steps: [
				{ id: 'build', type: 'echo', with: { v: 1 } },
				{ id: 'approve', type: 'wait', depends_on: ['build'], with: { signal: 'approve' } },
				{ id: 'deploy', type: 'echo', depends_on: ['approve'], with: { by: '${steps.approve.output.by}' } },
			],
		};
		await cluster.api('POST', '/api/v1/definitions', def);
		const { run_id: id } = await cluster.api('POST', '/api/v1/runs', { definition: 'approval' });
		await go(`#/runs/${id}`);
		await page.waitForSelector('[data-loaded="1"]');
		await page.waitForSelector('g.node[data-id="approve"][data-state="running"]', { timeout: LIVE_WAIT });
		await page.click('g.node[data-id="approve"]');
		await page.waitForSelector('#side-waiting[data-reason="signal"]', { timeout: LIVE_WAIT });
		assert.match(await page.textContent('#side-waiting'), /waiting for signal "approve"/);
		// Data that is not JSON: the coordinator's refusal shows, nothing moves.
		await page.fill('#side-signal-data', '{"by":');
		const allow = con.allow(HTTP_400);
		await page.click('#side-signal-approve');
		await page.waitForSelector('#side-signal-error:not([hidden])', { timeout: LIVE_WAIT });
		await waitFor(() => allow.seen() >= 1, { timeoutMs: LIVE_WAIT, intervalMs: 20, what: 'Chromium\'s console line about the 400' });
		allow();
		assert.match(await page.textContent('#side-signal-error'), /data is not JSON/);
		assert.equal((await cluster.api('GET', `/api/v1/runs/${id}`)).status, 'running');
		await page.fill('#side-signal-data', '{"by":"web"}');
		await screenshot('run-step-signal');
		await page.click('#side-signal-approve');
		await page.waitForSelector('g.node[data-id="approve"][data-state="succeeded"]', { timeout: LIVE_WAIT });
		const done = await runWhenDone(id);
		assert.equal(done.status, 'succeeded');
		assert.deepEqual(done.steps.find((x) => x.id === 'approve').output, { by: 'web' });
		assert.equal(done.steps.find((x) => x.id === 'deploy').output.with.by, 'web');

		// A second run, rejected with a reason: the step fails with it.
		const { run_id: id2 } = await cluster.api('POST', '/api/v1/runs', { definition: 'approval' });
		await go(`#/runs/${id2}`);
		await page.waitForSelector('[data-loaded="1"]');
		await page.waitForSelector('g.node[data-id="approve"][data-state="running"]', { timeout: LIVE_WAIT });
		await page.click('g.node[data-id="approve"]');
		await page.waitForSelector('#side-signal-reject', { timeout: LIVE_WAIT });
		await page.fill('#side-signal-reason', 'not today');
		await page.click('#side-signal-reject');
		await page.waitForSelector('g.node[data-id="approve"][data-state="failed"]', { timeout: LIVE_WAIT });
		await page.waitForSelector('#side-error', { timeout: LIVE_WAIT });
		assert.match(await page.textContent('#side-error'), /signal "approve" rejected: not today/);
		await page.waitForSelector('#side-signal-approve', { state: 'detached', timeout: LIVE_WAIT });
		assert.equal((await runWhenDone(id2)).status, 'failed');
		noConsoleErrors();
	});

	it('links a workflow step to its child run and the child back, live', { timeout: 90000 }, async () => {
		await cluster.api('POST', '/api/v1/definitions', {
			name: 'kid', steps: [{ id: 'nap', type: 'sleep', with: { ms: 3000 } }, { id: 'out', type: 'echo', depends_on: ['nap'], with: { v: 7 } }],
		});
		await cluster.api('POST', '/api/v1/definitions', {
			name: 'dad', steps: [{ id: 'sub', type: 'workflow', with: { name: 'kid' } }],
		});
		const { run_id: id } = await cluster.api('POST', '/api/v1/runs', { definition: 'dad' });
		await go(`#/runs/${id}`);
		await page.waitForSelector('[data-loaded="1"]');
		await page.waitForSelector('g.node[data-id="sub"][data-state="running"]', { timeout: LIVE_WAIT });
		await page.click('g.node[data-id="sub"]');
		// The link appears while the child runs (from child_started, or
		// the status read).
		await page.waitForSelector('#side-child-run', { timeout: LIVE_WAIT });
		const child = (await page.textContent('#side-child-run')).trim();
		const parentRun = await cluster.api('GET', `/api/v1/runs/${id}`);
		assert.equal(parentRun.steps.find((x) => x.id === 'sub').child_run, child);
		assert.equal(parentRun.parent, null);
		await screenshot('run-child-link');
		await page.click('#side-child-run');
		await page.waitForFunction((c) => location.hash === `#/runs/${c}`, child);
		await page.waitForSelector('#run-parent', { timeout: LIVE_WAIT });
		assert.equal((await page.textContent('#run-parent')).trim(), id);
		await page.click('#run-parent');
		await page.waitForFunction((c) => location.hash === `#/runs/${c}`, id);
		assert.equal((await runWhenDone(id)).status, 'succeeded');
		noConsoleErrors();
	});

	it('draws an expand step\'s expansion as a group under it, live', { timeout: 90000 }, async () => {
		// A decomposer that waits for the test's word, then prints three
		// steps (bounded: 60 s).
		const flag = path.join(cluster.tmp, 'expand.go');
		fs.writeFileSync(path.join(cluster.execDir, 'plan.sh'),
			'#!/bin/sh\ni=0\nwhile [ ! -e "$1" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done\n' +
			'echo \'{"steps":[{"id":"design","type":"echo","with":{"t":"design"}},' +
			'{"id":"build","type":"sleep","depends_on":["design"],"with":{"ms":2000}},' +
			'{"id":"ship","type":"echo","depends_on":["build"]}]}\'\n', { mode: 0o755 });
		await cluster.api('POST', '/api/v1/definitions', {
			name: 'goalx', steps: [
				{ id: 'plan', type: 'exec', expand: true, with: { cmd: ['plan.sh', flag] } },
				{ id: 'report', type: 'echo', depends_on: ['plan'] }],
		});
		const { run_id: id } = await cluster.api('POST', '/api/v1/runs', { definition: 'goalx' });
		await go(`#/runs/${id}`);
		await page.waitForSelector('[data-loaded="1"]');
		await page.waitForSelector('g.node[data-id="plan"][data-state="running"]', { timeout: LIVE_WAIT });
		assert.equal(await page.$$eval('g.group', (g) => g.length), 0, 'no expansion yet');
		assert.equal(await page.$$eval('g.node', (g) => g.length), 2);
		fs.writeFileSync(flag, '');
		// From the live step_expanded: a box labelled with its step, around
		// its three steps, and report after all of them.
		await page.waitForSelector('g.group[data-group="plan"]', { timeout: LIVE_WAIT });
		await page.waitForSelector('g.node[data-id="plan.build"][data-state="running"]', { timeout: LIVE_WAIT });
		assert.match(await page.textContent('g.group[data-group="plan"] text'), /^plan ▸ expansion \(3\)$/);
		const inside = await page.evaluate(() => {
			const box = document.querySelector('g.group[data-group="plan"] rect').getBBox();
			const at = (id) => document.querySelector(`g.node[data-id="${id}"]`).getBBox && document.querySelector(`g.node[data-id="${id}"]`).getBoundingClientRect();
			const r = document.querySelector('g.group[data-group="plan"] rect').getBoundingClientRect();
			const within = (b) => b.left >= r.left && b.right <= r.right && b.top >= r.top && b.bottom <= r.bottom;
			return { members: ['plan.design', 'plan.build', 'plan.ship'].every((id) => within(at(id))),
				plan: within(at('plan')), report: within(at('report')), w: box.width };
		});
		assert.deepEqual(inside, { ...inside, members: true, plan: false, report: false }, 'the box holds the expansion, not its step or dependents');
		await page.click('g.node[data-id="plan.build"]');
		await page.waitForSelector('#side-step-id:text("plan.build")');
		await screenshot('run-expansion');
		assert.match(await page.textContent('#run-events'), /3 steps: plan\.design, plan\.build, plan\.ship/, 'the log names the spliced steps');
		await page.waitForSelector('g.node[data-id="report"][data-state="succeeded"]', { timeout: LIVE_WAIT });
		await page.waitForSelector('g.node[data-id="plan"][data-state="succeeded"]');
		// Reloaded, it is drawn again from the run's history.
		await page.reload();
		await page.waitForSelector('[data-loaded="1"]');
		await page.waitForSelector('g.group[data-group="plan"]');
		assert.equal(await page.$$eval('g.node', (g) => g.length), 5);
		assert.equal(await page.$$eval('g.node[data-state="succeeded"]', (g) => g.length), 5);
		noConsoleErrors();
	});

	it('pauses, resumes and cancels a run from its page, and shows a refused action', { timeout: 90000 }, async () => {
		const { run_id: id } = await cluster.api('POST', '/api/v1/runs', { definition: 'slow' });
		await go(`#/runs/${id}`);
		await page.waitForSelector('[data-loaded="1"]');
		await page.waitForSelector('g.node[data-id="nap"][data-state="running"]', { timeout: LIVE_WAIT });
		await page.click('button[data-action="pause"]');
		await page.waitForSelector('#run-status .badge[data-state="paused"]', { timeout: LIVE_WAIT });
		assert.equal(await page.isEnabled('button[data-action="resume"]'), true);
		assert.equal(await page.isEnabled('button[data-action="pause"]'), false);
		await page.click('button[data-action="resume"]');
		await page.waitForSelector('#run-status .badge[data-state="running"]', { timeout: LIVE_WAIT });
		await page.click('button[data-action="cancel"]');
		await page.waitForSelector('#run-status .badge[data-state="cancelled"]', { timeout: LIVE_WAIT });
		await page.waitForSelector('g.node[data-id="last"][data-state="cancelled"], g.node[data-id="last"][data-state="skipped"]', { timeout: LIVE_WAIT });
		const stored = await cluster.api('GET', `/api/v1/runs/${id}`);
		assert.equal(stored.status, 'cancelled');
		// An action the coordinator refuses (forced past the disabled
		// button): its message is shown.
		const allow = con.allow(/Failed to load resource: the server responded with a status of 40[49]/);
		await page.evaluate(() => {
			const b = document.querySelector('button[data-action="pause"]');
			b.disabled = false;
			b.click();
		});
		await page.waitForSelector('#action-error:not([hidden])');
		await waitFor(() => allow.seen() >= 1, { timeoutMs: LIVE_WAIT, intervalMs: 20, what: 'Chromium\'s console line about the 4xx' });
		allow();
		// An ended run has left the coordinator's memory: 404 (409 while
		// it is still held).
		assert.match(await page.textContent('#action-error'), /Cannot pause: .+\(HTTP 40[49]\)/);
		assert.equal(await page.isEnabled('button[data-action="pause"]'), false, 'the button is disabled again');
		await screenshot('run-cancelled-action-error');
		noConsoleErrors();
	});

	it('filters the event log and tails it live', { timeout: 90000 }, async () => {
		await go('#/events');
		await page.waitForSelector('#events-table tbody tr');
		await page.fill('#ev-type', 'step_failed');
		await page.fill('#ev-text', 'set to fail');
		await page.click('#ev-search');
		await page.waitForFunction(() => /type=step_failed/.test(location.hash));
		// The rows of the search, not the page's earlier ones: the hash
		// changes before the answer is drawn.
		await page.waitForFunction(() => {
			const rows = [...document.querySelectorAll('#events-table tbody tr[data-type]')];
			return rows.length > 0 && rows.every((r) => r.dataset.type === 'step_failed');
		});
		const types = await page.$$eval('#events-table tbody tr[data-type]', (rows) => rows.map((r) => r.dataset.type));
		assert.ok(types.length >= 1);
		assert.ok(types.every((t) => t === 'step_failed'), `only step_failed rows (${types.join(',')})`);
		assert.match(await page.textContent('#events-table tbody'), /boom/);
		await screenshot('events-filtered');

		// Live tail with a filter: a new run's end appears without a search.
		await page.fill('#ev-type', 'run_succeeded');
		await page.fill('#ev-text', '');
		await page.click('#ev-search');
		await page.waitForFunction(() => /type=run_succeeded/.test(location.hash));
		await page.waitForFunction(() => {
			const rows = [...document.querySelectorAll('#events-table tbody tr[data-type]')];
			return rows.length > 0 && rows.every((r) => r.dataset.type === 'run_succeeded');
		});
		await page.check('#ev-tail');
		const before = await page.$$eval('#events-table tbody tr[data-type]', (rows) => rows.length);
		const { run_id: id } = await cluster.api('POST', '/api/v1/runs', { definition: 'diamond', params: { who: 'tail' } });
		await page.waitForSelector(`#events-table tbody tr[data-type="run_succeeded"] a[href="#/runs/${id}"]`, { timeout: LIVE_WAIT });
		const rows = await page.$$eval('#events-table tbody tr[data-type]', (r) => r.map((x) => x.dataset.type));
		assert.equal(rows.length, before + 1, 'exactly one new row');
		assert.ok(rows.every((t) => t === 'run_succeeded'), 'the tail keeps the filter');
		await screenshot('events-tail');
		await page.uncheck('#ev-tail');
		noConsoleErrors();
	});

	it('shows a worker join and, when killed, turn lost', { timeout: 90000 }, async () => {
		await go('#/workers');
		await page.waitForSelector('tr[data-worker="w1"][data-state="alive"]');
		await page.waitForSelector('tr[data-worker="w2"][data-state="alive"]');
		await cluster.startWorker('w3');
		await page.waitForSelector('tr[data-worker="w3"][data-state="alive"]', { timeout: LIVE_WAIT });
		assert.match(await page.textContent('tr[data-worker="w3"]'), /sleep/, 'step types shown');
		await screenshot('workers');
		await cluster.killWorker('w3', 'SIGKILL');
		await page.waitForSelector('tr[data-worker="w3"][data-state="lost"]', { timeout: LIVE_WAIT });
		await page.waitForSelector('tr[data-worker="w1"][data-state="alive"]');
		assert.match(await page.textContent('#workers-summary'), /2 alive, 1 lost/);
		await screenshot('workers-lost');
		noConsoleErrors();
	});

	it('creates, pauses, triggers and deletes a schedule', { timeout: 60000 }, async () => {
		await go('#/schedules');
		await page.waitForSelector('#schedules-table tbody tr');
		await page.fill('#schedule-name', 'browser-nightly');
		await page.fill('#schedule-definition', 'slow');
		await page.fill('#schedule-cron', '0 25 * * *');
		const allow = con.allow(HTTP_400); // the refusal, as Chromium logs it
		await page.click('#schedule-form button[type="submit"]');
		await page.waitForSelector('#schedule-form-error:not([hidden])');
		assert.match(await page.textContent('#schedule-form-error'), /field 2 \(hour\): 25 is out of range/);
		await waitFor(() => allow.seen() >= 1, { timeoutMs: LIVE_WAIT, intervalMs: 20, what: 'Chromium\'s console line about the 400' });
		allow();
		await page.fill('#schedule-cron', '30 2 * * *');
		await page.fill('#schedule-timezone', 'Europe/Berlin');
		await page.click('#schedule-form button[type="submit"]');
		const row = 'tr[data-schedule="browser-nightly"]';
		await page.waitForSelector(row);
		assert.match(await page.textContent(row), /Europe\/Berlin/);
		assert.doesNotMatch(await page.textContent(`${row} td.next`), /—/, 'next fire shown');
		await page.click(`${row} button[data-action="pause"]`);
		await page.waitForSelector(`${row} button[data-action="resume"]`, { timeout: LIVE_WAIT });
		await page.click(`${row} button[data-action="trigger"]`);
		await page.waitForSelector(`${row} a[href^="#/runs/"]`, { timeout: LIVE_WAIT });
		await screenshot('schedules');
		await page.click(`${row} button[data-action="delete"]`);
		await page.waitForSelector(row, { state: 'detached', timeout: LIVE_WAIT });
		noConsoleErrors();
	});

	it('fills a gap in the stream from the API and drops duplicates', { timeout: 60000 }, async () => {
		// The stream module itself, fed a gap by hand: events between its
		// last id and the one that arrives are fetched, in order, once.
		const all = (await cluster.api('GET', '/api/v1/events?limit=10000')).events;
		assert.ok(all.length > 20);
		const maxId = all[all.length - 1].id;
		const got = await page.evaluate(async (top) => {
			const { LiveStream } = await import('/js/stream.js');
			const s = new LiveStream();
			s.lastId = top - 10;
			const ids = [];
			s.subscribe((evs) => ids.push(...evs.map((e) => e.id)));
			s.queue.push({ id: top + 1, type: 'fake', data: {} }, { id: top - 12, type: 'dup', data: {} });
			await s.pump();
			s.queue.push({ id: top + 1, type: 'again', data: {} }, { id: top + 2, type: 'next', data: {} });
			await s.pump();
			return { ids, stats: s.stats };
		}, maxId);
		// Consecutive from the first missing id, each once, up to the fake
		// ones (a real event that slipped in meanwhile only extends it).
		assert.equal(got.ids[0], maxId - 9);
		got.ids.forEach((id, i) => assert.equal(id, maxId - 9 + i, `ids in order: ${got.ids.join(',')}`));
		assert.ok(got.ids[got.ids.length - 1] >= maxId + 2);
		assert.equal(got.stats.gaps, 1);
		noConsoleErrors();
	});

	it('reconnects after the coordinator restarts', { timeout: 120000 }, async () => {
		await go('#/runs');
		await page.waitForSelector('#live-state[data-state="live"]');
		const allow = con.allow(NET_DOWN);
		await cluster.killCoordinator('SIGKILL');
		await page.waitForSelector('#stream-banner:not([hidden])', { timeout: LIVE_WAIT });
		await page.waitForSelector('#live-state[data-state="down"]');
		await screenshot('stream-down-banner', { fullPage: false });
		await cluster.startCoordinator();
		// Created before the page has reconnected (most likely): it reaches
		// the page through the gap fill.
		const { run_id: during } = await cluster.api('POST', '/api/v1/runs', { definition: 'diamond', params: { who: 'restart' } });
		await page.waitForSelector('#stream-banner', { state: 'hidden', timeout: 30000 });
		await page.waitForSelector('#live-state[data-state="live"]', { timeout: LIVE_WAIT });
		allow();
		await page.waitForSelector(`tr[data-run="${during}"][data-status="succeeded"]`, { timeout: LIVE_WAIT });
		const { run_id: fresh } = await cluster.api('POST', '/api/v1/runs', { definition: 'diamond', params: { who: 'again' } });
		await page.waitForSelector(`tr[data-run="${fresh}"][data-status="succeeded"]`, { timeout: LIVE_WAIT });
		await runWhenDone(fresh);
		const top = (await cluster.api('GET', '/api/v1/runs?limit=1')).runs[0];
		assert.equal(top.id, fresh);
		// The stream is caught up with the store, with nothing twice.
		const all = (await cluster.api('GET', '/api/v1/events?limit=10000')).events;
		await page.waitForFunction((id) => window.weft.stream.lastId >= id, all[all.length - 1].id, { timeout: LIVE_WAIT });
		await screenshot('runs-after-restart');
		noConsoleErrors();
	});

	it('goes live when opened as localhost too', { timeout: 60000 }, async () => {
		// nng binds the WebSocket endpoint to the --http host name; a page
		// opened under another name falls back to that address.
		const other = await browser.context.newPage();
		const c2 = watchConsole(other);
		c2.allow(/WebSocket connection to 'ws:\/\/localhost:\d+\/api\/v1\/stream' failed: Error during WebSocket handshake: Unexpected response code: 404/);
		try {
			const port = new URL(cluster.base).port;
			await other.goto(`http://localhost:${port}/#/runs`);
			await other.waitForSelector('#live-state[data-state="live"]', { timeout: LIVE_WAIT });
			const { run_id: id } = await cluster.api('POST', '/api/v1/runs', { definition: 'diamond', params: { who: 'localhost' } });
			await other.waitForSelector(`tr[data-run="${id}"][data-status="succeeded"]`, { timeout: LIVE_WAIT });
			assert.deepEqual(c2.errors, [], 'console errors on the localhost page');
		} finally {
			await other.close();
		}
		noConsoleErrors();
	});

	it('pages through runs (before=) and the event log (after=)', { timeout: 60000 }, async () => {
		const listing = await cluster.api('GET', '/api/v1/runs?limit=100');
		const runs = listing.runs;
		assert.ok(runs.length >= 7);
		assert.equal(listing.next_before, null, 'the whole list is the last page');
		const shown = () => page.$$eval('#runs-table tbody tr[data-run]', (rows) => rows.map((r) => r.dataset.run));
		await go('#/runs?limit=3');
		await page.waitForFunction(() => document.querySelectorAll('#runs-table tbody tr[data-run]').length === 3);
		assert.deepEqual(await shown(), runs.slice(0, 3).map((r) => r.id));
		await page.click('#page-older');
		await page.waitForFunction((id) => location.hash.includes(`before=${id}`), runs[2].id);
		await page.waitForFunction((id) => document.querySelector('#runs-table tbody tr[data-run]')?.dataset.run === id, runs[3].id);
		assert.deepEqual(await shown(), runs.slice(3, 6).map((r) => r.id));
		await page.click('#page-newer');
		await page.waitForFunction((id) => document.querySelector('#runs-table tbody tr[data-run]')?.dataset.run === id, runs[0].id);
		// A full page that is the last: no Older (its next_before is null).
		await go(`#/runs?before=${runs[runs.length - 4].id}&limit=3`);
		await page.waitForFunction((id) => document.querySelector('#runs-table tbody tr[data-run]')?.dataset.run === id, runs[runs.length - 3].id);
		assert.deepEqual(await shown(), runs.slice(-3).map((r) => r.id));
		assert.equal(await page.$eval('#page-older', (b) => b.disabled), true, 'Older on the last page');
		assert.equal(await page.$eval('#page-newer', (b) => b.disabled), false);

		const events = (await cluster.api('GET', '/api/v1/events?limit=120')).events;
		assert.ok(events.length > 100);
		const firstId = () => page.$eval('#events-table tbody tr[data-id]', (r) => Number(r.dataset.id));
		await go('#/events?limit=50');
		await page.waitForFunction(() => document.querySelectorAll('#events-table tbody tr[data-id]').length === 50);
		assert.equal(await firstId(), events[0].id);
		await page.click('#ev-next');
		await page.waitForFunction((id) => location.hash.includes(`after=${id}`), events[49].id);
		await page.waitForFunction((id) => Number(document.querySelector('#events-table tbody tr[data-id]')?.dataset.id) === id, events[50].id);
		assert.equal(await page.$$eval('#events-table tbody tr[data-id]', (r) => r.length), 50);
		await page.click('#ev-prev');
		await page.waitForFunction((id) => Number(document.querySelector('#events-table tbody tr[data-id]')?.dataset.id) === id, events[0].id);
		noConsoleErrors();
	});

	it('stays responsive with a 2,000-step run', { timeout: 180000 }, async () => {
		const big = { name: 'big', description: 'A 2,000-step fan-out and fan-in.', steps: [{ id: 'root', type: 'noop' }] };
		for (let i = 0; i < 1996; i++) {
			big.steps.push({ id: `s${i}`, type: 'noop', depends_on: [i < 40 ? 'root' : `s${i % 40}`] });
		}
		big.steps.push({ id: 'join', type: 'noop', depends_on: ['s1990', 's1991', 's1992'] });
		big.steps.push({ id: 'report', type: 'echo', depends_on: ['join'], with: { ok: true } });
		big.steps.push({ id: 'tail', type: 'noop', depends_on: ['report'] });
		assert.equal(big.steps.length, 2000);
		await cluster.api('POST', '/api/v1/definitions', big);
		const { run_id: id } = await cluster.api('POST', '/api/v1/runs', { definition: 'big' });
		const t0 = Date.now();
		await go(`#/runs/${id}`);
		await page.waitForSelector('[data-loaded="1"]', { timeout: 60000 });
		const loadMs = Date.now() - t0;
		assert.equal(await page.$$eval('g.node', (g) => g.length), 2000);
		await page.waitForSelector('#run-status .badge[data-state="succeeded"]', { timeout: 90000 });
		await page.waitForFunction(() => document.querySelectorAll('g.node[data-state="succeeded"]').length === 2000, null, { timeout: 30000 });
		// A click answers quickly while the page holds 2,000 nodes and the
		// run's whole event history.
		const t1 = Date.now();
		await page.click('g.node[data-id="report"]');
		await page.waitForSelector('#side-step-id:text("report")');
		const clickMs = Date.now() - t1;
		const layoutMs = Number(await page.getAttribute('#dag', 'data-layout-ms'));
		await screenshot('run-2000-steps', { fullPage: false });
		console.log(`2,000-step run: page loaded in ${loadMs} ms (layout ${layoutMs} ms), click to panel ${clickMs} ms`);
		assert.ok(layoutMs < 5000, `layout took ${layoutMs} ms`);
		assert.ok(clickMs < 3000, `click took ${clickMs} ms`);
		noConsoleErrors();
	});

	it('works on a narrow window', { timeout: 60000 }, async () => {
		await page.setViewportSize({ width: 420, height: 860 });
		try {
			for (const [hash, name, sel] of [
				['#/runs', 'narrow-runs', '#runs-table tbody tr[data-run]'],
				['#/workers', 'narrow-workers', 'tr[data-worker]'],
				['#/events', 'narrow-events', '#events-table tbody tr'],
				['#/new', 'narrow-new', '#def-select'],
			]) {
				await go(hash);
				await page.waitForSelector(sel);
				await sleep(150);
				const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
				assert.ok(overflow <= 1, `${hash} scrolls sideways by ${overflow}px`);
				await screenshot(name);
			}
			const runs = (await cluster.api('GET', '/api/v1/runs?definition=flaky&limit=1')).runs;
			await go(`#/runs/${runs[0].id}`);
			await page.waitForSelector('[data-loaded="1"]');
			await page.click('g.node[data-id="boom"]');
			await page.waitForSelector('#side-error');
			await screenshot('narrow-run');
		} finally {
			await page.setViewportSize({ width: 1280, height: 800 });
		}
		noConsoleErrors();
	});

	it('reads the event types and states from /api/v1/meta, and does without them', { timeout: 60000 }, async () => {
		const meta = await cluster.api('GET', '/api/v1/meta');
		const names = meta.event_types.map((t) => t.name);
		assert.equal(new Set(names).size, names.length, 'names are unique');
		for (const t of meta.event_types) {
			assert.ok(['run', 'step', 'node'].includes(t.scope), `${t.name}: scope ${t.scope}`);
			assert.equal(typeof t.terminal, 'boolean', `${t.name}: terminal`);
			assert.ok(t.step_status === null || meta.step_states.includes(t.step_status), `${t.name}: step_status`);
			assert.ok(t.run_status === null || meta.run_states.includes(t.run_status), `${t.name}: run_status`);
		}
		// Every type this session's runs, workers and definitions produced.
		const all = (await cluster.api('GET', '/api/v1/events?limit=10000')).events;
		const produced = [...new Set(all.map((ev) => ev.type))];
		assert.ok(produced.length >= 15, `only ${produced.join(',')}`);
		for (const t of produced) {
			assert.ok(names.includes(t), `${t} is not in /api/v1/meta`);
		}
		// The pages build their lists from it.
		await go('#/events');
		await page.waitForSelector('#events-table tbody tr');
		assert.deepEqual(await page.$$eval('#event-types option', (o) => o.map((x) => x.value)), names);
		const runs = (await cluster.api('GET', '/api/v1/runs?definition=flaky&limit=1')).runs;
		await go(`#/runs/${runs[0].id}`);
		await page.waitForSelector('[data-loaded="1"]');
		assert.deepEqual(await page.$$eval('#log-type option', (o) => o.map((x) => x.value).filter(Boolean)),
			meta.event_types.filter((t) => t.scope !== 'node').map((t) => t.name));
		assert.equal(await page.$$eval('.legend-item', (l) => l.length), meta.step_states.length);
		assert.equal(await page.isHidden('#meta-alert'), true);

		// Without it the pages still load, and an alert says why.
		const release = con.allow(/status of 503/);
		await page.route('**/api/v1/meta', (route) => route.fulfill({
			status: 503, contentType: 'application/json',
			body: JSON.stringify({ error: 'meta down for the test', code: 'EUNAVAIL' }),
		}));
		try {
			await go('#/runs');
			await page.reload(); // a new document: the app boots again
			await page.waitForSelector('body[data-ready="1"]');
			await page.waitForSelector('#meta-alert:not([hidden])');
			assert.match(await page.textContent('#meta-alert'), /meta down for the test/);
			await page.waitForSelector('#runs-table tbody tr[data-run]');
			assert.equal(await page.$$eval('#f-status option', (o) => o.length), 1, 'no states, no copy of them');
			await screenshot('runs-without-meta');
		} finally {
			await page.unroute('**/api/v1/meta');
			release();
		}
		await page.reload();
		await page.waitForSelector('body[data-ready="1"]');
		await page.waitForSelector('#runs-table tbody tr[data-run]');
		assert.equal(await page.isHidden('#meta-alert'), true);
		assert.deepEqual(await page.$$eval('#f-status option', (o) => o.map((x) => x.value).filter(Boolean)), meta.run_states);
		noConsoleErrors();
	});
});
