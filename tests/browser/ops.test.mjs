// ops.test: issue 14 in the dashboard, headless Chromium against a real
// coordinator and a worker from the build tree: run tags on the Runs page
// and the run page, the Runs page's tag filter, and the step panel's
// "Retry from here" on a succeeded run (the step and its downstream run
// again, the rest keep their attempts). Saves screenshots (ops-*.png);
// fails on any console error.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import {
	Cluster, SRC_DIR, launchBrowser, waitFor, watchConsole,
} from './harness.mjs';

const BUILD = path.resolve(process.env.WEFT_BUILD_DIR || path.join(SRC_DIR, 'build'));
const OUT = path.resolve(process.env.WEFT_BROWSER_OUT || path.join(BUILD, 'browser-screenshots'));
const LIVE_WAIT = 20000;

const CHAIN = {
	name: 'chain',
	description: 'a, then b, then c; d on its own.',
	steps: [
		{ id: 'a', type: 'echo', with: { n: 1 } },
		{ id: 'b', type: 'echo', depends_on: ['a'], with: { n: 2 } },
		{ id: 'c', type: 'noop', depends_on: ['b'] },
		{ id: 'd', type: 'noop' },
	],
};

describe('dashboard: tags and retry from a step', { concurrency: 1 }, () => {
	let cluster;
	let browser;
	let page;
	let con;
	let shot = 0;

	async function screenshot(name) {
		shot++;
		const file = path.join(OUT, `ops-${String(shot).padStart(2, '0')}-${name}.png`);
		await page.screenshot({ path: file, fullPage: true });
		return file;
	}

	async function go(hash) {
		await page.evaluate((h) => { location.hash = h; }, hash);
		await page.waitForFunction((h) => location.hash === h || location.hash.startsWith(`${h}?`), hash);
	}

	async function runWhenDone(id, attemptsOfB) {
		return waitFor(async () => {
			const r = await cluster.api('GET', `/api/v1/runs/${id}`);
			const b = r.steps.find((s) => s.id === 'b');
			return r.status === 'succeeded' && (!attemptsOfB || b.attempt === attemptsOfB) ? r : null;
		}, { timeoutMs: LIVE_WAIT, what: `run ${id} to succeed` });
	}

	function noConsoleErrors() {
		const errs = con.errors.splice(0);
		assert.deepEqual(errs, [], 'console errors');
	}

	before(async () => {
		fs.mkdirSync(OUT, { recursive: true });
		cluster = new Cluster(BUILD, OUT);
		await cluster.startCoordinator();
		await cluster.startWorker('w1');
		await cluster.waitWorkers(['w1']);
		await cluster.api('POST', '/api/v1/definitions', CHAIN);
		browser = await launchBrowser(OUT);
		page = await browser.context.newPage();
		con = watchConsole(page);
		await page.goto(`${cluster.base}/#/runs`);
		await page.waitForSelector('body[data-ready="1"]');
	}, { timeout: 120000 });

	after(async () => {
		if (browser) {
			await browser.close();
		}
		if (cluster) {
			await cluster.stop();
		}
	}, { timeout: 60000 });

	it('shows tags and filters the Runs page by one', { timeout: 90000 }, async () => {
		const prod = await cluster.api('POST', '/api/v1/runs',
			{ definition: 'chain', tags: { env: 'prod', team: 'web' } });
		const dev = await cluster.api('POST', '/api/v1/runs',
			{ definition: 'chain', tags: { env: 'dev' } });
		await runWhenDone(prod.run_id);
		await runWhenDone(dev.run_id);
		await go('#/runs');
		await page.waitForSelector(`tr[data-run="${prod.run_id}"] .tag:text("env=prod")`, { timeout: LIVE_WAIT });
		await page.waitForSelector(`tr[data-run="${prod.run_id}"] .tag:text("team=web")`);
		await page.waitForSelector(`tr[data-run="${dev.run_id}"] .tag:text("env=dev")`);
		await page.fill('#f-tag', 'env=prod');
		await page.press('#f-tag', 'Enter');
		await page.waitForSelector(`tr[data-run="${dev.run_id}"]`, { state: 'detached', timeout: LIVE_WAIT });
		await page.waitForSelector(`tr[data-run="${prod.run_id}"]`);
		assert.match(await page.evaluate(() => location.hash), /tag=env%3Dprod|tag=env=prod/,
			'the filter is in the address');
		await screenshot('runs-tag-filter');
		await page.fill('#f-tag', 'env=nowhere');
		await page.press('#f-tag', 'Enter');
		await page.waitForSelector('#runs-table tr.empty td:has-text("No runs match these filters.")', { timeout: LIVE_WAIT });
		await page.fill('#f-tag', '');
		await page.press('#f-tag', 'Enter');
		await page.waitForSelector(`tr[data-run="${dev.run_id}"]`, { timeout: LIVE_WAIT });
		noConsoleErrors();
	});

	it('retries a succeeded run from a step in the step panel', { timeout: 90000 }, async () => {
		const run = await cluster.api('POST', '/api/v1/runs',
			{ definition: 'chain', tags: { env: 'prod' } });
		await runWhenDone(run.run_id);
		await go(`#/runs/${run.run_id}`);
		await page.waitForSelector('#run-status .badge[data-state="succeeded"]', { timeout: LIVE_WAIT });
		await page.waitForSelector('#run-tags .tag:text("env=prod")');
		await page.click('g.node[data-id="b"]');
		await page.waitForSelector('#side-step-id:text("b")');
		await page.waitForSelector('#side-retry-from');
		await screenshot('run-retry-from-button');
		await page.click('#side-retry-from');
		const done = await runWhenDone(run.run_id, 2);
		const att = Object.fromEntries(done.steps.map((s) => [s.id, s.attempt]));
		assert.deepEqual(att, { a: 1, b: 2, c: 2, d: 1 }, 'b and c ran again, a and d kept theirs');
		// The page follows: the run succeeded again, b on attempt 2.
		await page.waitForSelector('#run-status .badge[data-state="succeeded"]', { timeout: LIVE_WAIT });
		await page.click('g.node[data-id="c"]');
		await page.click('g.node[data-id="b"]');
		await page.waitForSelector('#side-attempts tbody tr:nth-child(2)', { timeout: LIVE_WAIT });
		await screenshot('run-retried-from-b');
		noConsoleErrors();
	});
});
