// login.test: the dashboard against a coordinator with --api-tokens, in
// headless Chromium. Without a session it shows the login page; a wrong
// token says so; the right one logs in, the runs page loads with a run
// made meanwhile, the live stream connects with the session cookie, and
// the cookie is HttpOnly (the page's script cannot read it). Logging out
// brings the login page back.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { Cluster, SRC_DIR, launchBrowser, watchConsole } from './harness.mjs';

const BUILD = path.resolve(process.env.WEFT_BUILD_DIR || path.join(SRC_DIR, 'build'));
const OUT = path.resolve(process.env.WEFT_BROWSER_OUT || path.join(BUILD, 'browser-screenshots'));
const OP = 'op-browser-0123456789abcdef';
const LIVE_WAIT = 20000;

// The answers the test provokes on purpose: 401 before logging in (whoami
// says who, the API refuses), and the refused stream.
const EXPECTED = /status of 401|WebSocket connection to .* failed/;

describe('login', { concurrency: 1 }, () => {
	let cluster;
	let browser;
	let page;
	let con;

	before(async () => {
		fs.mkdirSync(OUT, { recursive: true });
		cluster = new Cluster(BUILD, OUT, {
			tokens: `# browser test\nops operate ${OP}\n`,
			token: OP,
		});
		await cluster.startCoordinator();
		await cluster.startWorker('lw1');
		await cluster.waitWorkers(['lw1']);
		browser = await launchBrowser(OUT);
		page = await browser.context.newPage();
		con = watchConsole(page);
		con.allow(EXPECTED);
	}, { timeout: 120000 });

	after(async () => {
		if (browser) {
			await browser.close();
		}
		if (cluster) {
			await cluster.stop();
		}
	}, { timeout: 60000 });

	it('shows the login page, refuses a wrong token, logs in with the right one', { timeout: 90000 }, async () => {
		// Without a token the API refuses; the page says what to do.
		const r = await fetch(`${cluster.base}/api/v1/runs`);
		assert.equal(r.status, 401);

		await page.goto(`${cluster.base}/#/runs`);
		await page.waitForSelector('body[data-ready="1"]');
		await page.waitForSelector('#login-form');
		assert.equal(await page.getAttribute('main', 'data-page'), 'login');
		await page.screenshot({ path: path.join(OUT, 'login-01-page.png'), fullPage: true });

		await page.fill('#login-token', 'not-the-token-0123456789');
		await page.click('#login-submit');
		await page.waitForSelector('#login-error:not([hidden])');
		assert.match(await page.textContent('#login-error'), /not known/);
		assert.equal(await page.getAttribute('main', 'data-page'), 'login');
		await page.screenshot({ path: path.join(OUT, 'login-02-wrong.png'), fullPage: true });

		// A run made meanwhile (through the API, with the token) must
		// show once logged in.
		const run = await cluster.api('POST', '/api/v1/runs', {
			definition_json: { name: 'after-login', steps: [{ id: 'a', type: 'noop' }] },
		});

		await page.fill('#login-token', OP);
		await page.click('#login-submit');
		await page.waitForSelector('main[data-page="runs"]');
		await page.waitForSelector(`tr[data-run="${run.run_id}"]`, { timeout: LIVE_WAIT });
		await page.waitForSelector('#live-state[data-state="live"]', { timeout: LIVE_WAIT });
		assert.match(await page.textContent('#who'), /ops \(operate\)/);
		await page.screenshot({ path: path.join(OUT, 'login-03-runs.png'), fullPage: true });

		// The session cookie is set, and HttpOnly: no script reads it.
		const cookies = await browser.context.cookies(cluster.base);
		const session = cookies.find((c) => c.name === 'weft_session');
		assert.ok(session, 'no weft_session cookie');
		assert.equal(session.httpOnly, true);
		assert.equal(session.sameSite, 'Strict');
		const visible = await page.evaluate(() => document.cookie);
		assert.doesNotMatch(visible, /weft_session/);

		// The API works from the page with the cookie alone.
		const who = await page.evaluate(async () => (await fetch('/api/v1/whoami')).json());
		assert.equal(who.name, 'ops');
		assert.equal(who.via, 'session');
	});

	it('logs out back to the login page', { timeout: 60000 }, async () => {
		await page.click('#logout');
		await page.waitForSelector('#login-form');
		const status = await page.evaluate(async () => (await fetch('/api/v1/runs')).status);
		assert.equal(status, 401);
		const errs = con.errors.splice(0);
		assert.deepEqual(errs, [], 'console errors');
	});
});
