// new-run page: pick a registered definition, fill a form generated from
// its params (type, default, required) and optional JSON input, and start a
// run; or paste / upload a definition JSON, register it (the coordinator's
// validation error is shown inline, naming the step) and run it.
import { api } from '../api.js';
import { h, add, clear, fill, pretty, skeleton, dropPlaceholders } from '../util.js';

const EXAMPLE = {
	name: 'hello',
	description: 'Two echo steps and a short sleep.',
	params: { who: { type: 'string', default: 'world', description: 'whom to greet' } },
	steps: [
		{ id: 'greet', type: 'echo', with: { greeting: 'hello ${params.who}' } },
		{ id: 'wait', type: 'sleep', depends_on: ['greet'], with: { ms: 500 } },
		{ id: 'done', type: 'echo', depends_on: ['wait'], with: { ok: true } },
	],
};

// paramInput builds the form control for one parameter spec.
function paramInput(name, spec) {
	const type = spec.type || 'any';
	const id = `param-${name}`;
	const has = Object.prototype.hasOwnProperty.call(spec, 'default');
	const def = spec.default;
	let input;
	switch (type) {
	case 'bool':
		input = h('select', { id, name, 'data-type': type },
			h('option', { value: '' }, has ? `default (${def})` : '—'),
			h('option', { value: 'true' }, 'true'),
			h('option', { value: 'false' }, 'false'));
		if (has) {
			input.value = '';
		}
		break;
	case 'int':
	case 'number':
		input = h('input', {
			id, name, type: 'number', step: type === 'int' ? '1' : 'any', 'data-type': type,
			placeholder: has ? String(def) : '', value: has ? String(def) : '',
		});
		break;
	case 'string':
		// A secret is typed unseen; it is shown as *** once the run exists.
		input = h('input', {
			id, name, type: spec.secret ? 'password' : 'text', 'data-type': type,
			value: has ? String(def) : '', placeholder: has ? String(def) : '',
			...(spec.secret ? { autocomplete: 'off' } : {}),
		});
		break;
	default: // object, array, any: JSON
		input = h('textarea', {
			id, name, rows: 3, class: 'mono', 'data-type': type, spellcheck: 'false',
			placeholder: type === 'array' ? '[ ]' : type === 'object' ? '{ }' : 'any JSON value',
		});
		if (has) {
			input.value = JSON.stringify(def);
		}
		break;
	}
	if (spec.required) {
		input.required = true;
	}
	return h('div', { class: 'field' },
		h('label', { for: id },
			h('span', { class: 'mono' }, name), spec.required ? h('span', { class: 'req', title: 'required' }, ' *') : null,
			h('span', { class: 'type' }, spec.secret ? `${type}, secret` : type)),
		input,
		spec.description ? h('div', { class: 'hint' }, spec.description) : null,
		h('div', { class: 'field-error', hidden: true }));
}

// readParam reads one control; returns {value} or {skip} or {error}.
function readParam(input) {
	const type = input.dataset.type;
	const raw = input.value.trim();
	if (raw === '') {
		return input.required ? { error: 'required' } : { skip: true };
	}
	switch (type) {
	case 'bool':
		return { value: raw === 'true' };
	case 'int':
		if (!/^-?\d+$/.test(raw)) {
			return { error: 'must be a whole number' };
		}
		return { value: Number(raw) };
	case 'number':
		if (Number.isNaN(Number(raw))) {
			return { error: 'must be a number' };
		}
		return { value: Number(raw) };
	case 'string':
		return { value: input.value };
	default:
		try {
			const v = JSON.parse(raw);
			if (type === 'array' && !Array.isArray(v)) {
				return { error: 'must be a JSON array' };
			}
			if (type === 'object' && (v === null || typeof v !== 'object' || Array.isArray(v))) {
				return { error: 'must be a JSON object' };
			}
			return { value: v };
		} catch (e) {
			return { error: `not valid JSON: ${e.message}` };
		}
	}
}

// stepOfError finds the step a coordinator validation message points at:
// 'steps[3] (id "load"): ...'.
function stepOfError(msg) {
	const m = /steps\[(\d+)\](?: \(id "([^"]*)"\))?/.exec(msg || '');
	return m ? { index: Number(m[1]), id: m[2] || null } : null;
}

export function mount(root, ctx) {
	let alive = true;
	let defs = [];
	const defSel = h('select', { id: 'def-select', 'aria-label': 'definition' });
	const defInfo = h('div', { class: 'def-info' }, skeleton(2));
	const paramsBox = h('div', { class: 'params', id: 'params' });
	const inputBox = h('textarea', { id: 'run-input', rows: 4, class: 'mono', spellcheck: 'false', placeholder: '{ } (optional run input, a JSON object)' });
	const runErr = h('div', { class: 'alert error', id: 'run-form-error', hidden: true });
	const runBtn = h('button', { class: 'btn primary', type: 'submit', id: 'start-run' }, 'Start run');
	const form = h('form', { class: 'card form', id: 'run-form', novalidate: true },
		h('h2', null, 'Run a registered definition'),
		h('div', { class: 'field' }, h('label', { for: 'def-select' }, 'Definition'), defSel),
		defInfo,
		paramsBox,
		h('div', { class: 'field' },
			h('label', { for: 'run-input' }, 'Input ', h('span', { class: 'type' }, 'JSON object, optional')),
			inputBox),
		runErr,
		h('div', { class: 'form-actions' }, runBtn));

	const defText = h('textarea', {
		id: 'def-json', rows: 14, class: 'mono', spellcheck: 'false',
		placeholder: 'Paste a definition JSON here, or load a file.',
	});
	const fileIn = h('input', { type: 'file', id: 'def-file', accept: '.json,application/json' });
	const defErr = h('div', { class: 'alert error', id: 'def-error', hidden: true });
	const defOk = h('div', { class: 'alert ok', id: 'def-ok', hidden: true });
	const regBtn = h('button', { class: 'btn', type: 'button', id: 'register-def' }, 'Register');
	const regRunBtn = h('button', { class: 'btn primary', type: 'button', id: 'register-run' }, 'Register and run');
	const exampleBtn = h('button', { class: 'btn ghost small', type: 'button' }, 'Insert an example');
	const upload = h('section', { class: 'card form', id: 'def-form' },
		h('h2', null, 'Register a definition'),
		h('div', { class: 'row' },
			h('label', { class: 'btn small file' }, 'Load a file…', fileIn),
			exampleBtn),
		defText, defErr, defOk,
		h('div', { class: 'form-actions' }, regBtn, regRunBtn));

	root.append(
		h('div', { class: 'page-head' }, h('h1', null, 'New run')),
		h('div', { class: 'two-col' }, form, upload));

	function showDef() {
		clear(paramsBox);
		clear(defInfo);
		runErr.hidden = true;
		const d = defs.find((x) => x.name === defSel.value);
		if (!d) {
			defInfo.append(h('p', { class: 'muted' }, defs.length ? '' : 'No definitions are registered yet: register one on the right.'));
			runBtn.disabled = defs.length === 0;
			return;
		}
		runBtn.disabled = false;
		const body = d.definition || {};
		const steps = body.steps || [];
		add(defInfo,
			body.description ? h('p', { class: 'desc' }, body.description) : null,
			h('p', { class: 'muted small' }, `version ${d.version} · ${steps.length} step${steps.length === 1 ? '' : 's'}`,
				steps.length ? `: ${steps.slice(0, 8).map((s) => s.id).join(', ')}${steps.length > 8 ? ', …' : ''}` : ''));
		const params = d.params || body.params || {};
		const names = Object.keys(params);
		if (names.length === 0) {
			paramsBox.append(h('p', { class: 'muted small' }, 'This definition takes no parameters.'));
		} else {
			add(paramsBox, h('h3', null, 'Parameters'), names.map((n) => paramInput(n, params[n] || {})));
		}
	}

	async function loadDefs(select) {
		try {
			defs = await api.definitions();
		} catch (e) {
			runErr.textContent = `Cannot list definitions: ${e.message}`;
			runErr.hidden = false;
			dropPlaceholders(defInfo);
			return;
		}
		if (!alive) {
			return;
		}
		const want = select || defSel.value || ctx.query.definition;
		fill(defSel, defs.length === 0 ? h('option', { value: '' }, '(none registered)') : null,
			defs.map((d) => h('option', { value: d.name }, `${d.name} (v${d.version})`)));
		if (want && defs.some((d) => d.name === want)) {
			defSel.value = want;
		}
		showDef();
	}

	defSel.addEventListener('change', showDef);

	form.addEventListener('submit', async (e) => {
		e.preventDefault();
		runErr.hidden = true;
		const params = {};
		let bad = false;
		for (const input of paramsBox.querySelectorAll('[data-type]')) {
			const r = readParam(input);
			const fe = input.parentElement.querySelector('.field-error');
			fe.hidden = !r.error;
			fe.textContent = r.error || '';
			input.classList.toggle('invalid', !!r.error);
			if (r.error) {
				bad = true;
			} else if (!r.skip) {
				params[input.name] = r.value;
			}
		}
		let input = {};
		if (inputBox.value.trim() !== '') {
			try {
				input = JSON.parse(inputBox.value);
				if (input === null || typeof input !== 'object' || Array.isArray(input)) {
					throw new Error('the input must be a JSON object');
				}
			} catch (err) {
				runErr.textContent = `Input: ${err.message}`;
				runErr.hidden = false;
				bad = true;
			}
		}
		if (bad || !defSel.value) {
			return;
		}
		runBtn.disabled = true;
		try {
			const res = await api.createRun({ definition: defSel.value, params, input });
			ctx.navigate(`#/runs/${encodeURIComponent(res.run_id)}`);
		} catch (err) {
			runErr.textContent = `The coordinator refused the run: ${err.message}`;
			runErr.hidden = false;
		} finally {
			runBtn.disabled = false;
		}
	});

	function parseDefText() {
		defErr.hidden = true;
		defOk.hidden = true;
		const text = defText.value.trim();
		if (text === '') {
			defErr.textContent = 'Paste a definition first.';
			defErr.hidden = false;
			return null;
		}
		try {
			return JSON.parse(text);
		} catch (e) {
			defErr.textContent = `Not valid JSON: ${e.message}`;
			defErr.hidden = false;
			return null;
		}
	}

	function showDefError(msg) {
		clear(defErr);
		const where = stepOfError(msg);
		defErr.append(h('div', null, msg));
		if (where) {
			let id = where.id;
			try {
				const body = JSON.parse(defText.value);
				id = id || (body.steps && body.steps[where.index] && body.steps[where.index].id);
			} catch {
				// keep what the message said
			}
			defErr.append(h('div', { class: 'where' }, 'In step ', h('strong', { class: 'mono', id: 'def-error-step' }, id || `#${where.index}`),
				` (steps[${where.index}])`));
			markStep(where.index, id);
		}
		defErr.hidden = false;
	}

	// markStep selects the offending step's id in the text area.
	function markStep(index, id) {
		if (!id) {
			return;
		}
		const t = defText.value;
		const re = new RegExp(`"id"\\s*:\\s*"${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`);
		const m = re.exec(t);
		if (m) {
			defText.focus();
			defText.setSelectionRange(m.index, m.index + m[0].length);
			// Bring the selected line into view.
			const line = t.slice(0, m.index).split('\n').length - 1;
			const lh = parseFloat(getComputedStyle(defText).lineHeight) || 18;
			defText.scrollTop = Math.max(0, (line - 3) * lh);
		}
	}

	async function register(andRun) {
		const body = parseDefText();
		if (!body) {
			return;
		}
		regBtn.disabled = regRunBtn.disabled = true;
		try {
			const res = await api.define(body);
			fill(defOk, `Registered ${res.name} version ${res.version} (${res.steps} step${res.steps === 1 ? '' : 's'}).`);
			defOk.hidden = false;
			await loadDefs(res.name);
			if (andRun) {
				const d = defs.find((x) => x.name === res.name);
				const params = d ? d.params || {} : {};
				const missing = Object.entries(params).filter(([, s]) => s && s.required && !Object.prototype.hasOwnProperty.call(s, 'default'));
				if (missing.length) {
					defOk.append(' It has required parameters: fill them in on the left and start the run.');
					return;
				}
				const r = await api.createRun({ definition: res.name });
				ctx.navigate(`#/runs/${encodeURIComponent(r.run_id)}`);
			}
		} catch (e) {
			showDefError(e.message);
		} finally {
			regBtn.disabled = regRunBtn.disabled = false;
		}
	}

	regBtn.addEventListener('click', () => register(false));
	regRunBtn.addEventListener('click', () => register(true));
	exampleBtn.addEventListener('click', () => {
		defText.value = pretty(EXAMPLE);
	});
	fileIn.addEventListener('change', async () => {
		const f = fileIn.files && fileIn.files[0];
		if (f) {
			defText.value = await f.text();
			defErr.hidden = true;
			defOk.hidden = true;
		}
	});

	loadDefs();
	return {
		unmount() {
			alive = false;
		},
	};
}
