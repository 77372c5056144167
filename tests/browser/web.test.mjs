// web.test: issue 15's dashboard pages in headless Chromium against a
// real coordinator and two workers from the build tree: the run page's
// Timeline (a bar per attempt, a failed first attempt beside its retry,
// the coordinator's own lane, live growth, per-step lanes), the
// Definitions page (versions, parameters, DAG, the Run button and its
// malformed-input errors), the Metrics page (charts from GET /metrics that
// move after runs), loading placeholders, the event log's newest-first
// toggle and no horizontal scroll at 1280 px. Saves screenshots
// (web-*.png); fails on any console error.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import {
	Cluster, SRC_DIR, closeAll, go as goTo, runEnd, screenshotter, startPage,
} from './harness.mjs';

const BUILD = path.resolve(process.env.WEFT_BUILD_DIR || path.join(SRC_DIR, 'build'));
const OUT = path.resolve(process.env.WEFT_BROWSER_OUT || path.join(BUILD, 'browser-screenshots'));
const LIVE_WAIT = 20000;

// gate.sh waits (at most 60 s) for the file it is given, so a test
// decides when its step ends.
const GATE = '#!/bin/sh\ni=0\nwhile [ ! -e "$1" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done\necho \'{"gate": "open"}\'\n';

const gantt = (flag) => ({
	name: 'gantt',
	description: 'flaky fails once then succeeds; gate waits for a file; cool is a coordinator delay.',
	steps: [
		{ id: 'prep', type: 'echo', with: { x: 1 } },
		{ id: 'flaky', type: 'fail', depends_on: ['prep'], with: { times: 1 }, retry: { max_attempts: 3, initial_ms: 200 } },
		{ id: 'cool', type: 'delay', depends_on: ['prep'], with: { ms: 300 } },
		{ id: 'gate', type: 'exec', depends_on: ['prep'], with: { cmd: ['gate.sh', flag] } },
		{ id: 'done', type: 'echo', depends_on: ['flaky', 'cool', 'gate'], with: { y: 2 } },
	],
});

// What the placeholder test holds back: the lists, a run, /metrics.
const HELD = /\/api\/v1\/(runs(\/[^/?]+)?|definitions|events|workers|schedules)(\?|$)|\/metrics$/;

const PARAMDEF = (desc) => ({
	name: 'paramdef',
	description: desc,
	params: {
		who: { type: 'string', default: 'world', description: 'whom to greet', pattern: '^[a-z]+$' },
		n: { type: 'int', default: 2, minimum: 1, maximum: 9 },
	},
	steps: [
		{ id: 'a', type: 'echo', with: { hi: '${params.who}' } },
		{ id: 'b', type: 'echo', depends_on: ['a'], with: { n: '${params.n}' } },
		{ id: 'c', type: 'noop', depends_on: ['a'] },
	],
});

describe('dashboard: timeline, definitions, metrics', { concurrency: 1 }, () => {
	let cluster;
	let browser;
	let page;
	let con;
	let screenshot;
	const go = (hash) => goTo(page, hash);
	const runWhenDone = (id) => runEnd(cluster, id, LIVE_WAIT);

	function noConsoleErrors() {
		const errs = con.errors.splice(0);
		assert.deepEqual(errs, [], 'console errors');
	}

	async function noHorizontalScroll(what) {
		const w = await page.evaluate(() => ({
			doc: document.documentElement.scrollWidth,
			// an inner box that scrolls sideways is a horizontal scroll too
			wide: [...document.querySelectorAll('.table-wrap')]
				.filter((el) => el.scrollWidth > el.clientWidth + 1).map((el) => el.className),
		}));
		assert.ok(w.doc <= 1280, `${what}: the page is ${w.doc} px wide at 1280`);
		assert.deepEqual(w.wide, [], `${what}: boxes that scroll sideways`);
	}

	before(async () => {
		fs.mkdirSync(OUT, { recursive: true });
		cluster = new Cluster(BUILD, OUT);
		await cluster.startCoordinator();
		fs.writeFileSync(path.join(cluster.execDir, 'gate.sh'), GATE, { mode: 0o755 });
		await cluster.startWorker('w1');
		await cluster.startWorker('w2');
		await cluster.waitWorkers(['w1', 'w2']);
		({ browser, page, con } = await startPage(cluster, OUT));
		screenshot = screenshotter(page, OUT, 'web');
	}, { timeout: 120000 });

	after(() => closeAll(browser, cluster), { timeout: 60000 });

	it('draws a timeline bar per attempt, a retry beside the failure, live', { timeout: 120000 }, async () => {
		const flag = path.join(cluster.tmp, 'gate-open');
		await cluster.api('POST', '/api/v1/definitions', gantt(flag));
		const { run_id: id } = await cluster.api('POST', '/api/v1/runs', { definition: 'gantt' });
		await go(`#/runs/${id}`);
		await page.evaluate(() => { window.weftNoReload = 1; });
		const tl = '#timeline';
		// flaky: attempt 1 failed, attempt 2 succeeded, two bars.
		await page.waitForSelector(`${tl} .tl-bar[data-step="flaky"][data-attempt="1"][data-state="failed"]`, { timeout: LIVE_WAIT });
		await page.waitForSelector(`${tl} .tl-bar[data-step="flaky"][data-attempt="2"][data-state="succeeded"]`, { timeout: LIVE_WAIT });
		// Lanes per worker; the delay in the coordinator's lane.
		await page.waitForSelector(`${tl}[data-mode="worker"] .tl-lane[data-lane="coordinator"] .tl-bar[data-step="cool"]`, { timeout: LIVE_WAIT });
		const flakyLanes = await page.$$eval(`${tl} .tl-bar[data-step="flaky"]`, (els) => els.map((e) => e.closest('.tl-lane').dataset.lane));
		assert.ok(flakyLanes.every((l) => l === 'w1' || l === 'w2'), `flaky ran on a worker: ${flakyLanes}`);
		// The gate runs: its bar is solid (run time) and grows with the clock.
		const gate = `${tl} .tl-bar[data-step="gate"][data-attempt="1"]`;
		await page.waitForSelector(`${gate}[data-state="running"] .tl-run`, { timeout: LIVE_WAIT });
		const w0 = Number(await page.getAttribute(`${gate} .tl-run`, 'width'));
		const t0 = await page.$eval(tl, (el) => Number(el.dataset.drawnAt));
		await page.waitForFunction((t) => Number(document.querySelector('#timeline').dataset.drawnAt) > t + 1500, t0, { timeout: LIVE_WAIT });
		const w1 = Number(await page.getAttribute(`${gate} .tl-run`, 'width'));
		assert.ok(w1 > w0, `the running bar grows with the clock (${w0} → ${w1})`);
		await screenshot('timeline-running');
		// Its wait (ready → started) is drawn lighter, left of its run.
		const wait = await page.$eval(`${gate} .tl-wait`, (el) => ({ x: Number(el.getAttribute('x')), fill: getComputedStyle(el).fill }));
		const run = await page.$eval(`${gate} .tl-run`, (el) => ({ x: Number(el.getAttribute('x')), fill: getComputedStyle(el).fill }));
		assert.ok(wait.x <= run.x, 'the queue wait comes before the run time');
		assert.notEqual(wait.fill, run.fill, 'queue wait and run time look different');
		fs.writeFileSync(flag, '');
		await page.waitForSelector(`${gate}[data-state="succeeded"]`, { timeout: LIVE_WAIT });
		await page.waitForSelector('#run-status .badge[data-state="succeeded"]', { timeout: LIVE_WAIT });
		await page.waitForSelector(`${tl} .tl-bar[data-step="done"][data-state="succeeded"]`, { timeout: LIVE_WAIT });
		assert.equal(await page.evaluate(() => window.weftNoReload), 1, 'updated live, without a reload');
		const failFill = await page.$eval(`${tl} .tl-bar[data-step="flaky"][data-attempt="1"] .tl-run`, (el) => getComputedStyle(el).fill);
		const okFill = await page.$eval(`${tl} .tl-bar[data-step="flaky"][data-attempt="2"] .tl-run`, (el) => getComputedStyle(el).fill);
		assert.notEqual(failFill, okFill, 'the failed attempt is coloured apart');
		await screenshot('timeline-per-worker');
		// Per step: one lane per step, flaky's holding both attempts;
		// the choice survives a reload.
		await page.click('#tl-mode [data-tl-mode="step"]');
		await page.waitForSelector(`${tl}[data-mode="step"] .tl-lane[data-lane="flaky"]`);
		assert.equal(await page.$$eval(`${tl} .tl-lane[data-lane="flaky"] .tl-bar`, (els) => els.length), 2);
		assert.deepEqual((await page.$$eval(`${tl} .tl-lane`, (els) => els.map((e) => e.dataset.lane))).sort(),
			['cool', 'done', 'flaky', 'gate', 'prep']);
		await screenshot('timeline-per-step');
		await page.reload();
		await page.waitForSelector(`${tl}[data-mode="step"] .tl-lane[data-lane="flaky"]`, { timeout: LIVE_WAIT });
		await page.click('#tl-mode [data-tl-mode="worker"]');
		await page.waitForSelector(`${tl}[data-mode="worker"]`);
		// The run page: no scroll box of the log's own, nothing sideways.
		const log = await page.$eval('.log-wrap', (el) => getComputedStyle(el).overflowY);
		assert.equal(log, 'visible', 'the run\'s event log has no scroll box of its own');
		await noHorizontalScroll('run page');
		noConsoleErrors();
	});

	it('lists definitions with versions, params and DAG, and runs one', { timeout: 120000 }, async () => {
		await cluster.api('POST', '/api/v1/definitions', PARAMDEF('first version'));
		await cluster.api('POST', '/api/v1/definitions', PARAMDEF('second version'));
		await go('#/definitions');
		await page.click('#def-list a[data-def="paramdef"]');
		await page.waitForSelector('#def-versions button[data-version="2"].active', { timeout: LIVE_WAIT });
		assert.equal(await page.$$eval('#def-versions button[data-version]', (els) => els.length), 2);
		assert.equal(await page.textContent('#def-desc'), 'second version');
		const who = await page.textContent('#def-params tr[data-param="who"]');
		assert.match(who, /string/);
		assert.match(who, /"world"/);
		assert.match(who, /pattern "\^\[a-z\]\+\$"/);
		assert.match(await page.textContent('#def-params tr[data-param="n"]'), /minimum 1, maximum 9/);
		for (const s of ['a', 'b', 'c']) {
			await page.waitForSelector(`#def-dag svg.dag g.node[data-id="${s}"]`);
		}
		await screenshot('definitions');
		await page.click('#def-versions button[data-version="1"]');
		await page.waitForSelector('#def-versions button[data-version="1"].active');
		assert.equal(await page.textContent('#def-desc'), 'first version');
		assert.match(await page.evaluate(() => location.hash), /version=1/);
		// Malformed input is refused in the page, naming the field.
		await page.fill('#def-run-input', 'nope');
		await page.click('#def-run');
		await page.waitForSelector('#def-run-error:has-text("input: not valid JSON")');
		await page.fill('#def-run-input', '[1]');
		await page.click('#def-run');
		await page.waitForSelector('#def-run-error:has-text("input: must be a JSON object")');
		// A value the coordinator refuses: its error, shown (the
		// browser logs the 400 itself).
		const allow400 = con.allow(/status of 400/);
		await page.fill('#def-run-input', '');
		await page.fill('#def-run-params', '{"who": "NOT lower", "n": 2}');
		await page.click('#def-run');
		await page.waitForSelector('#def-run-error:has-text("Cannot start the run")');
		assert.match(await page.textContent('#def-run-error'), /who/);
		allow400();
		await page.fill('#def-run-params', '{"who": "browser", "n": 3}');
		await page.click('#def-run');
		await page.waitForFunction(() => /^#\/runs\/[^/?]+/.test(location.hash), null, { timeout: LIVE_WAIT });
		const id = decodeURIComponent((await page.evaluate(() => location.hash)).match(/^#\/runs\/([^/?]+)/)[1]);
		const r = await runWhenDone(id);
		assert.equal(r.status, 'succeeded');
		assert.equal(r.version, 1, 'the version shown is the one run');
		assert.deepEqual(r.params, { who: 'browser', n: 3 });
		await page.waitForSelector('#run-status .badge[data-state="succeeded"]', { timeout: LIVE_WAIT });
		// An unknown name says so.
		const allow404 = con.allow(/status of 404/);
		await go('#/definitions/nosuch');
		await page.waitForSelector('#defs-error:has-text("No definition nosuch")');
		await go('#/definitions/paramdef?version=99');
		await page.waitForSelector('#defs-error:has-text("No definition paramdef version 99")');
		allow404();
		for (const bad of ['abc', '0', '-1', '1.5']) {
			await go('#/runs');
			await go(`#/definitions/paramdef?version=${bad}`);
			await page.waitForSelector(`#defs-error:has-text("version=${bad} in the address: a version is a positive integer")`);
		}
		noConsoleErrors();
	});

	it('charts metrics that move after runs', { timeout: 120000 }, async () => {
		await go('#/metrics');
		await page.waitForSelector('.chart[data-chart="workers"][data-last="2"]', { timeout: LIVE_WAIT });
		// Two samples give the first rates.
		await page.waitForFunction(() => Number(document.querySelector('.chart[data-chart="steps"]').dataset.samples) >= 2,
			null, { timeout: LIVE_WAIT });
		const before = await page.$eval('.chart[data-chart="steps"]', (el) => Number(el.dataset.samples));
		const ids = [];
		for (let i = 0; i < 5; i++) {
			ids.push((await cluster.api('POST', '/api/v1/runs', { definition: 'paramdef' })).run_id);
		}
		for (const id of ids) {
			await runWhenDone(id);
		}
		for (const c of ['steps', 'runs_started', 'runs_ended', 'commit_ms']) {
			await page.waitForFunction((k) => Number(document.querySelector(`.chart[data-chart="${k}"]`).dataset.max) > 0,
				c, { timeout: LIVE_WAIT });
		}
		const after = await page.$eval('.chart[data-chart="steps"]', (el) => Number(el.dataset.samples));
		assert.ok(after > before, 'sampled again');
		assert.ok(await page.$$eval('.chart polyline.line', (els) => els.length) >= 6, 'a line per chart');
		await screenshot('metrics');
		noConsoleErrors();
	});

	it('shows placeholders while pages load', { timeout: 120000 }, async () => {
		// Hold the answers back until each placeholder has been seen.
		const { runs: [{ id: run }] } = await cluster.api('GET', '/api/v1/runs?limit=1');
		const held = [];
		let holding = true; // off once a page's placeholder was seen
		await page.route(HELD, (route) => (holding ? held.push(route) : route.continue().catch(() => {})));
		const release = async () => {
			holding = false;
			for (const r of held.splice(0)) {
				await r.continue().catch(() => {});
			}
		};
		try {
			for (const [hash, sel] of [
				['#/runs', '#runs-table tr.loading-row .skeleton'],
				['#/workers', 'tr.loading-row .skeleton'],
				['#/schedules', 'tr.loading-row .skeleton'],
				['#/events', '#events-loading'],
				['#/definitions', '#def-list .skeleton'],
				['#/metrics', '.chart .skeleton'],
				['#/new', '.def-info .skeleton'],
				[`#/runs/${run}`, '.run-meta .skeleton'],
			]) {
				holding = true;
				await go(hash);
				await page.waitForSelector(sel, { timeout: LIVE_WAIT });
				if (hash === '#/runs') {
					await screenshot('placeholder-runs');
				}
				await release();
				await page.waitForSelector(sel, { state: 'detached', timeout: LIVE_WAIT });
			}
		} finally {
			await page.unroute(HELD);
			await release();
		}
		// A load that fails shows its error, never a placeholder forever.
		const allow = con.allow(/status of (500|404)/);
		await page.route(/\/api\/v1\/workers$/, (route) => route.fulfill({
			status: 500, contentType: 'application/json', body: '{"error": "planted failure"}',
		}));
		try {
			await go('#/workers');
			await page.waitForSelector('#workers-error:has-text("planted failure"), .alert.error:has-text("planted failure")');
			assert.equal(await page.$$eval('.placeholder', (els) => els.length), 0, 'no placeholder left');
		} finally {
			await page.unroute(/\/api\/v1\/workers$/);
		}
		await go('#/runs/NOSUCHRUN');
		await page.waitForSelector('.alert.error:has-text("No run with id NOSUCHRUN")');
		assert.equal(await page.$$eval('.placeholder', (els) => els.length), 0, 'no placeholder left on the run page');
		allow();
		noConsoleErrors();
	});

	it('shows the event log newest first, remembered, with no sideways scroll', { timeout: 120000 }, async () => {
		// A run whose input is one long word: its events' details must
		// not widen the table.
		const long = 'x'.repeat(3000);
		await runWhenDone((await cluster.api('POST', '/api/v1/runs', { definition: 'paramdef', input: { long } })).run_id);
		await go('#/events?limit=50');
		await page.waitForSelector('#events-table tr.ev-row');
		const ids = async () => page.$$eval('#events-table tr.ev-row', (els) => els.map((e) => Number(e.dataset.id)));
		let got = await ids();
		assert.ok(got[0] < got[got.length - 1], 'oldest first by default');
		await page.check('#ev-newest');
		await page.waitForSelector('.page-events[data-order="newest"]');
		got = await ids();
		assert.ok(got[0] > got[got.length - 1], 'newest first');
		await page.reload();
		await page.waitForSelector('.page-events[data-order="newest"] #events-table tr.ev-row', { timeout: LIVE_WAIT });
		assert.equal(await page.isChecked('#ev-newest'), true, 'remembered');
		await noHorizontalScroll('event log');
		// Live tail with newest first: a new event goes on top.
		await page.check('#ev-tail');
		// Caught up: the newest event the stream has seen is on top.
		await page.waitForFunction(() => Number(document.querySelector('#events-table tr.ev-row').dataset.id) >= window.weft.stream.lastId,
			null, { timeout: LIVE_WAIT });
		const top = (await ids())[0];
		await cluster.api('POST', '/api/v1/runs', { definition: 'paramdef' });
		await page.waitForFunction((t) => Number(document.querySelector('#events-table tr.ev-row').dataset.id) > t,
			top, { timeout: LIVE_WAIT });
		got = await ids();
		assert.ok(got.every((v, i) => i === 0 || got[i - 1] > v), 'still newest first after the tail');
		await screenshot('events-newest-first');
		// The details cell is cut with its whole text in the tooltip.
		const title = await page.$eval('#events-table td.details[title*="xxxxxxxxxx"]', (el) => el.title.length);
		assert.ok(title > 100, 'the whole text is in the tooltip');
		await page.uncheck('#ev-tail');
		await page.uncheck('#ev-newest');
		await page.waitForSelector('.page-events[data-order="oldest"]');
		noConsoleErrors();
	});
});
