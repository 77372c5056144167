// definitions page: the registered definitions (latest versions) on the
// left; for the one chosen, its versions (GET /definitions/{name}), the
// chosen version's body (GET .../versions/{n}): description, parameters
// with their types, defaults and rules, the step graph (dag.js, as on the
// run page, without states), and a Run form (input and params as JSON)
// that creates a run of that version and opens it.
import { api, get, BASE } from '../api.js';
import { DagView, depsOf } from '../dag.js';
import {
	h, clear, fill, pretty, timeCell, skeleton,
} from '../util.js';

const RULES = ['enum', 'minimum', 'maximum', 'pattern'];

// parseObject reads a JSON object from a form field: {value} or {error}
// naming the field.
function parseObject(text, what) {
	if (text.trim() === '') {
		return { value: {} };
	}
	let v;
	try {
		v = JSON.parse(text);
	} catch (e) {
		return { error: `${what}: not valid JSON: ${e.message}` };
	}
	if (v === null || typeof v !== 'object' || Array.isArray(v)) {
		return { error: `${what}: must be a JSON object` };
	}
	return { value: v };
}

export function mount(root, ctx) {
	let alive = true;
	const name = ctx.args[0] || null;
	const list = h('nav', { class: 'card def-list', id: 'def-list' }, skeleton(6));
	const detail = h('div', { class: 'def-detail', id: 'def-detail' });
	const err = h('div', { class: 'alert error', id: 'defs-error', hidden: true });
	root.append(
		h('div', { class: 'page-head' }, h('h1', null, 'Definitions'),
			h('a', { class: 'btn small', href: '#/new' }, 'Register a definition')),
		err,
		h('div', { class: 'defs' }, list, detail));

	function fail(msg) {
		err.textContent = msg;
		err.hidden = false;
	}

	async function loadList() {
		let defs;
		try {
			defs = await api.definitions();
		} catch (e) {
			clear(list);
			fail(`Cannot list the definitions: ${e.message}`);
			return;
		}
		if (!alive) {
			return;
		}
		defs.sort((a, b) => a.name.localeCompare(b.name));
		fill(list, defs.length === 0
			? h('p', { class: 'muted small', style: 'padding: 0 14px' }, 'No definitions are registered yet.')
			: defs.map((d) => h('a', {
				href: `#/definitions/${encodeURIComponent(d.name)}`, 'data-def': d.name,
				class: d.name === name ? 'active' : '',
			}, d.name, ' ', h('span', { class: 'muted' }, `v${d.version}`))));
		list.dataset.loaded = '1';
		if (!name) {
			fill(detail, h('p', { class: 'card muted', style: 'padding: 14px' },
				defs.length ? 'Choose a definition to see its versions, parameters and steps.' : ''));
			root.dataset.loaded = '1';
		}
	}

	async function loadDef(version) {
		fill(detail, h('section', { class: 'card' }, skeleton(3)), h('section', { class: 'card' }, skeleton(5)));
		// ?version=N in the address picks a version; anything but a
		// positive integer is refused naming it, not quietly ignored.
		const asked = version || ctx.query.version;
		if (asked !== undefined && asked !== null && asked !== '' && !/^[1-9]\d{0,9}$/.test(String(asked))) {
			clear(detail);
			fail(`version=${asked} in the address: a version is a positive integer.`);
			return;
		}
		let versions;
		let body;
		let n = asked ? Number(asked) : null;
		try {
			const base = `${BASE}/definitions/${encodeURIComponent(name)}`;
			versions = (await get(base)).versions || [];
			n = n || (versions.length ? versions[versions.length - 1].version : 1);
			body = await get(`${base}/versions/${n}`);
		} catch (e) {
			clear(detail);
			fail(e.status === 404 ? `No definition ${name}${versions ? ` version ${n}` : ''}.` : `Cannot load ${name}: ${e.message}`);
			return;
		}
		if (!alive) {
			return;
		}
		ctx.setQuery(body.version === versions[versions.length - 1]?.version ? {} : { version: body.version });
		render(versions, body);
		root.dataset.loaded = '1';
	}

	function render(versions, v) {
		const def = v.definition || {};
		const params = def.params || {};
		const names = Object.keys(params);
		const dagBox = h('div', { class: 'dag-box def-dag', id: 'def-dag' });
		fill(detail,
			h('section', { class: 'card', id: 'def-head' },
				h('div', { class: 'card-head' }, h('h2', { class: 'mono' }, v.name),
					h('span', { class: 'muted' }, `version ${v.version}`)),
				def.description ? h('p', { class: 'desc', id: 'def-desc' }, def.description) : null,
				h('p', { class: 'small versions', id: 'def-versions' }, 'Versions: ', versions.map((x) => h('button', {
					class: `btn small${x.version === v.version ? ' active' : ''}`, type: 'button',
					'data-version': String(x.version), title: `${x.hash || ''} · created ${new Date(x.created_ms).toLocaleString()}`,
					onclick: () => loadDef(x.version),
				}, `v${x.version}`))),
				h('p', { class: 'muted small' }, 'Created ', timeCell(v.created_ms), ' · ', h('span', { class: 'mono' }, v.hash || ''))),
			h('section', { class: 'card', id: 'def-params' },
				h('div', { class: 'card-head' }, h('h2', null, 'Parameters')),
				names.length === 0 ? h('p', { class: 'muted small' }, 'This definition takes no parameters.')
					: h('div', { class: 'table-wrap' }, h('table', { class: 'table compact' },
						h('thead', null, h('tr', null, ['Name', 'Type', 'Default', 'Required', 'Rules', 'Description']
							.map((t) => h('th', null, t)))),
						h('tbody', null, names.map((n) => {
							const p = params[n] || {};
							const rules = RULES.filter((r) => p[r] !== undefined)
								.map((r) => `${r} ${JSON.stringify(p[r])}`).join(', ');
							return h('tr', { 'data-param': n },
								h('td', { class: 'mono' }, n),
								h('td', { class: 'mono' }, p.type || 'any', p.secret ? ' (secret)' : ''),
								h('td', { class: 'mono' }, p.default !== undefined ? JSON.stringify(p.default) : '—'),
								h('td', null, p.required ? 'yes' : 'no'),
								h('td', { class: 'mono small' }, rules || '—'),
								h('td', { class: 'small' }, p.description || ''));
						}))))),
			h('section', { class: 'card', id: 'def-steps' },
				h('div', { class: 'card-head' }, h('h2', null, `Steps (${(def.steps || []).length})`)),
				dagBox),
			runForm(v, names, params),
			h('details', { class: 'card json-details', style: 'padding: 8px 14px' }, h('summary', null, 'The definition as JSON'),
				h('pre', { class: 'json', id: 'def-json-view' }, pretty(def))));
		const nodes = (def.steps || []).map((s) => ({ id: s.id, type: s.type, deps: depsOf(s) }));
		if (nodes.length) {
			const dag = new DagView(dagBox, nodes, {});
			dag.zoomTo(Math.max(0.45, Math.min(1, (dagBox.clientWidth - 4) / dag.lay.width)));
		}
	}

	// runForm: input and params as JSON (params prefilled with the
	// defaults, so what will be bound is visible), POST /runs for this
	// version, then the new run's page.
	function runForm(v, names, params) {
		const defaults = {};
		for (const n of names) {
			if (params[n] && params[n].default !== undefined) {
				defaults[n] = params[n].default;
			}
		}
		const paramsIn = h('textarea', { id: 'def-run-params', rows: 3, class: 'mono', spellcheck: 'false' },
			names.length ? JSON.stringify(defaults, null, 1) : '');
		const inputIn = h('textarea', { id: 'def-run-input', rows: 3, class: 'mono', spellcheck: 'false', placeholder: '{ } (optional run input, a JSON object)' });
		const msg = h('div', { class: 'alert error', id: 'def-run-error', hidden: true });
		const btn = h('button', { class: 'btn primary', type: 'submit', id: 'def-run' }, `Run v${v.version}`);
		const form = h('form', { class: 'card form', id: 'def-run-form', novalidate: true },
			h('h2', null, 'Run'),
			h('div', { class: 'field' }, h('label', { for: 'def-run-params' }, 'Params ', h('span', { class: 'type' }, 'JSON object')), paramsIn),
			h('div', { class: 'field' }, h('label', { for: 'def-run-input' }, 'Input ', h('span', { class: 'type' }, 'JSON object, optional')), inputIn),
			msg, h('div', { class: 'form-actions' }, btn));
		form.addEventListener('submit', async (e) => {
			e.preventDefault();
			msg.hidden = true;
			const p = parseObject(paramsIn.value, 'params');
			const i = parseObject(inputIn.value, 'input');
			const bad = p.error || i.error;
			if (bad) {
				msg.textContent = bad;
				msg.hidden = false;
				return;
			}
			btn.disabled = true;
			try {
				const res = await api.createRun({ definition: v.name, version: v.version, params: p.value, input: i.value });
				ctx.navigate(`#/runs/${encodeURIComponent(res.run_id)}`);
			} catch (e2) {
				msg.textContent = `Cannot start the run: ${e2.message}`;
				msg.hidden = false;
				btn.disabled = false;
			}
		});
		return form;
	}

	loadList();
	if (name) {
		loadDef(null);
	}
	return {
		unmount() {
			alive = false;
		},
	};
}
