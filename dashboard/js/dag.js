// dag: lays out a run's step graph in the browser and draws it as SVG.
// Layout: longest-path layering (left to right), barycenter ordering with
// alternating sweeps (keeping the order with the fewest adjacent-layer
// crossings), very tall layers wrapped into several columns. The SVG is
// built once as markup; live updates only change a node's class.
import { esc } from './util.js';

const NODE_W = 156;
const NODE_H = 34;
const COL_GAP = 64;   // between layers
const SUB_GAP = 18;   // between the columns of one wrapped layer
const ROW_GAP = 10;
const PAD = 16;
const SWEEPS = 8;
const BAND_W = 6000;  // widest band of layers before wrapping
const BAND_GAP = 56;

// layer assigns each node its longest-path layer. nodes: [{id, deps}];
// returns {layerOf: Int32Array, order: topological index list}.
function layer(nodes, index) {
	const n = nodes.length;
	const indeg = new Int32Array(n);
	const outs = Array.from({ length: n }, () => []);
	for (let i = 0; i < n; i++) {
		for (const d of nodes[i].depIdx) {
			outs[d].push(i);
			indeg[i]++;
		}
	}
	const layerOf = new Int32Array(n);
	const queue = [];
	for (let i = 0; i < n; i++) {
		if (indeg[i] === 0) {
			queue.push(i);
		}
	}
	let seen = 0;
	for (let q = 0; q < queue.length; q++) {
		const u = queue[q];
		seen++;
		for (const v of outs[u]) {
			if (layerOf[v] < layerOf[u] + 1) {
				layerOf[v] = layerOf[u] + 1;
			}
			if (--indeg[v] === 0) {
				queue.push(v);
			}
		}
	}
	if (seen < n) {
		// A cycle (the coordinator rejects these): park what is left last.
		let max = 0;
		for (const i of queue) {
			max = Math.max(max, layerOf[i]);
		}
		for (let i = 0; i < n; i++) {
			if (indeg[i] > 0) {
				layerOf[i] = max + 1;
			}
		}
	}
	return { layerOf, outs };
}

// crossings counts edge crossings between adjacent layers (inversions of
// the target positions, counted with a Fenwick tree).
function crossings(layers, pos, nodes, layerOf) {
	let total = 0;
	for (let l = 0; l + 1 < layers.length; l++) {
		const width = layers[l + 1].length;
		const pairs = [];
		for (const u of layers[l]) {
			for (const v of nodes[u].outIdx) {
				if (layerOf[v] === l + 1) {
					pairs.push(pos[u] * 1e6 + pos[v]);
				}
			}
		}
		if (pairs.length < 2) {
			continue;
		}
		pairs.sort((a, b) => a - b);
		const tree = new Int32Array(width + 1);
		let seen = 0;
		for (const p of pairs) {
			const v = (p % 1e6) + 1;
			// count earlier pairs with target > v
			let le = 0;
			for (let i = v; i > 0; i -= i & -i) {
				le += tree[i];
			}
			total += seen - le;
			for (let i = v; i <= width; i += i & -i) {
				tree[i]++;
			}
			seen++;
		}
	}
	return total;
}

// order runs barycenter sweeps over the layers and keeps the best order.
function order(layers, nodes, layerOf) {
	const n = nodes.length;
	const pos = new Float64Array(n);
	const centre = (l) => (layers[l].length - 1) / 2;
	const setPos = () => {
		for (const L of layers) {
			L.forEach((v, i) => { pos[v] = i; });
		}
	};
	setPos();
	let best = layers.map((L) => L.slice());
	let bestX = n > 1 ? crossings(layers, pos, nodes, layerOf) : 0;
	const bary = new Float64Array(n);
	for (let s = 0; s < SWEEPS && bestX > 0; s++) {
		const down = s % 2 === 0;
		const ls = down ? layers.map((_, i) => i) : layers.map((_, i) => layers.length - 1 - i);
		for (const l of ls) {
			const L = layers[l];
			for (const v of L) {
				const nb = down ? nodes[v].depIdx : nodes[v].outIdx;
				if (nb.length === 0) {
					bary[v] = pos[v] - centre(l);
					continue;
				}
				let sum = 0;
				for (const u of nb) {
					sum += pos[u] - centre(layerOf[u]);
				}
				bary[v] = sum / nb.length;
			}
			L.sort((a, b) => bary[a] - bary[b] || pos[a] - pos[b]);
			L.forEach((v, i) => { pos[v] = i; });
		}
		const x = crossings(layers, pos, nodes, layerOf);
		if (x < bestX) {
			bestX = x;
			best = layers.map((L) => L.slice());
		}
	}
	return { layers: best, crossings: bestX };
}

// layout computes positions for steps [{id, deps: [id...]}]. Returns
// {nodes: [{id, x, y, layer}], edges: [{from, to}], width, height}.
export function layout(steps) {
	const index = new Map();
	steps.forEach((s, i) => index.set(s.id, i));
	const nodes = steps.map((s) => ({
		id: s.id,
		depIdx: [...new Set((s.deps || []).filter((d) => index.has(d)).map((d) => index.get(d)))],
		outIdx: [],
	}));
	const { layerOf, outs } = layer(nodes, index);
	nodes.forEach((nd, i) => { nd.outIdx = outs[i]; });
	let nl = 0;
	for (let i = 0; i < nodes.length; i++) {
		nl = Math.max(nl, layerOf[i] + 1);
	}
	let layers = Array.from({ length: nl }, () => []);
	for (let i = 0; i < nodes.length; i++) {
		layers[layerOf[i]].push(i);
	}
	const ord = order(layers, nodes, layerOf);
	layers = ord.layers;

	// Wrap a tall layer into columns so a 2,000-wide fan-out stays a block,
	// and a long run of layers into bands below each other (like lines of
	// text) so a 2,000-step chain does not become 400,000 px wide.
	const total = nodes.length;
	const maxRows = Math.max(24, Math.ceil(Math.sqrt(total * 3)));
	const colsOf = layers.map((L) => Math.max(1, Math.ceil(L.length / maxRows)));
	const rowsOf = layers.map((L, l) => Math.ceil(L.length / colsOf[l]));
	const colW = layers.map((_, l) => colsOf[l] * (NODE_W + SUB_GAP) - SUB_GAP);
	const colH = layers.map((_, l) => rowsOf[l] * (NODE_H + ROW_GAP) - ROW_GAP);
	const bands = [];
	let band = { layers: [], w: 0 };
	layers.forEach((_, l) => {
		const need = colW[l] + (band.layers.length ? COL_GAP : 0);
		if (band.layers.length && band.w + need > BAND_W) {
			bands.push(band);
			band = { layers: [], w: 0 };
		}
		band.w += band.layers.length ? need : colW[l];
		band.layers.push(l);
	});
	bands.push(band);
	const out = new Array(nodes.length);
	let y = PAD;
	let width = NODE_W + 2 * PAD;
	for (const b of bands) {
		const bandH = Math.max(...b.layers.map((l) => colH[l]));
		const bottom = y + bandH;
		let x = PAD;
		for (const l of b.layers) {
			const rows = rowsOf[l];
			const y0 = y + (bandH - colH[l]) / 2;
			layers[l].forEach((v, i) => {
				const c = Math.floor(i / rows);
				const r = i % rows;
				out[v] = {
					id: nodes[v].id, layer: l, bottom,
					x: x + c * (NODE_W + SUB_GAP),
					y: y0 + r * (NODE_H + ROW_GAP),
				};
			});
			x += colW[l] + COL_GAP;
		}
		width = Math.max(width, x - COL_GAP + PAD);
		y = bottom + BAND_GAP;
	}
	const height = y - BAND_GAP + PAD;
	const edges = [];
	nodes.forEach((nd, v) => {
		for (const u of nd.depIdx) {
			edges.push({ from: u, to: v });
		}
	});
	return { nodes: out, edges, width, height, crossings: ord.crossings, layers: nl, bands: bands.length };
}

const f = (v) => v.toFixed(1);

function label(id, max = 20) {
	return id.length > max ? id.slice(0, max - 1) + '…' : id;
}

// DagView draws a layout into a container and keeps a map from step id to
// its SVG group, so a state change is one class attribute write.
// depsOf returns a definition step's dependencies: its depends_on, or the
// step ids its "depends" condition names ("a.succeeded && b" names a, b).
export const depsOf = (ds) => ds.depends_on
	|| (typeof ds.depends === 'string'
		? [...new Set(ds.depends.match(/(?<![.\w-])[A-Za-z0-9_-]+/g) || [])]
		: []);

export class DagView {
	// groups: [{id, members: [step ids]}], boxes drawn behind the nodes
	// (an expand step's expansion, labelled with the step).
	constructor(container, steps, { onSelect, groups = [] } = {}) {
		this.container = container;
		this.onSelect = onSelect;
		this.groupList = groups;
		this.lay = layout(steps);
		this.types = new Map(steps.map((s) => [s.id, s.type || '']));
		this.scale = 1;
		this.render();
	}

	render() {
		const { nodes, edges, width, height } = this.lay;
		const parts = [];
		parts.push(`<svg class="dag" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="step graph">`);
		parts.push('<defs><marker id="dag-arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" markerUnits="userSpaceOnUse" orient="auto"><path d="M0,0 L8,4 L0,8 z" class="arrow"/></marker></defs>');
		parts.push(this.groupsSvg());
		parts.push(`<g class="edges${edges.length > 1500 ? ' dense' : ''}">`);
		for (let i = 0; i < edges.length; i++) {
			const a = nodes[edges[i].from];
			const b = nodes[edges[i].to];
			const x1 = a.x + NODE_W;
			const y1 = a.y + NODE_H / 2;
			const x2 = b.x - 2;
			const y2 = b.y + NODE_H / 2;
			let d;
			if (x2 > x1 + 8) {
				const dx = Math.max(24, (x2 - x1) / 2);
				d = `M${f(x1)},${f(y1)} C${f(x1 + dx)},${f(y1)} ${f(x2 - dx)},${f(y2)} ${f(x2)},${f(y2)}`;
			} else {
				// Into a later band: down to the gap under the source's band,
				// back to the left, and in.
				const yg = a.bottom + BAND_GAP / 2;
				d = `M${f(x1)},${f(y1)} C${f(x1 + 30)},${f(y1)} ${f(x1 + 30)},${f(yg)} ${f(x1)},${f(yg)} L${f(x2 - 20)},${f(yg)} C${f(x2 - 50)},${f(yg)} ${f(x2 - 50)},${f(y2)} ${f(x2)},${f(y2)}`;
			}
			parts.push(`<path class="edge" data-e="${i}" d="${d}" marker-end="url(#dag-arrow)"/>`);
		}
		parts.push('</g><g class="nodes">');
		for (let i = 0; i < nodes.length; i++) {
			const n = nodes[i];
			const t = this.types.get(n.id);
			parts.push(`<g class="node st-pending" data-i="${i}" transform="translate(${n.x.toFixed(1)},${n.y.toFixed(1)})" tabindex="0"><title>${esc(n.id)}${t ? ` (${esc(t)})` : ''}</title><rect width="${NODE_W}" height="${NODE_H}" rx="6"/><circle cx="13" cy="${NODE_H / 2}" r="4.5" class="dot"/><text x="24" y="${NODE_H / 2 + 4}">${esc(label(n.id))}</text><text class="count" x="${NODE_W - 8}" y="${NODE_H / 2 + 4}" text-anchor="end"></text></g>`);
		}
		parts.push('</g></svg>');
		this.container.innerHTML = parts.join('');
		this.svg = this.container.firstElementChild;
		this.groups = new Map();
		this.stateOf = new Map();
		for (const g of this.svg.querySelectorAll('g.node')) {
			const n = nodes[Number(g.dataset.i)];
			this.groups.set(n.id, g);
			g.dataset.id = n.id;
			this.stateOf.set(n.id, 'pending');
		}
		this.edgeEls = this.svg.querySelectorAll('path.edge');
		this.svg.addEventListener('click', (e) => {
			const g = e.target.closest('g.node');
			if (g && this.onSelect) {
				this.onSelect(g.dataset.id);
			}
		});
		this.svg.addEventListener('keydown', (e) => {
			const g = e.target.closest('g.node');
			if (g && (e.key === 'Enter' || e.key === ' ') && this.onSelect) {
				e.preventDefault();
				this.onSelect(g.dataset.id);
			}
		});
	}

	// groupsSvg draws each group's box: the bounding box of its members'
	// nodes, a nested group's a little tighter, labelled with its step.
	groupsSvg() {
		const at = new Map(this.lay.nodes.map((n) => [n.id, n]));
		const parts = ['<g class="groups">'];
		for (const g of this.groupList) {
			const ms = g.members.map((id) => at.get(id)).filter(Boolean);
			if (ms.length === 0) {
				continue;
			}
			const pad = Math.max(4, 14 - 4 * (g.id.split('.').length - 1));
			const x = Math.min(...ms.map((n) => n.x)) - pad;
			// Room for the label above the first row, inside the drawing.
			const y = Math.max(1, Math.min(...ms.map((n) => n.y)) - pad - 12);
			const w = Math.max(...ms.map((n) => n.x)) + NODE_W + pad - x;
			const hgt = Math.min(this.lay.height - 1,
				Math.max(...ms.map((n) => n.y)) + NODE_H + pad) - y;
			parts.push(`<g class="group" data-group="${esc(g.id)}"><rect x="${f(x)}" y="${f(y)}" width="${f(w)}" height="${f(hgt)}" rx="10"/><text x="${f(x + 8)}" y="${f(y + 12)}">${esc(label(g.id, 28))} ▸ expansion (${ms.length})</text></g>`);
		}
		parts.push('</g>');
		return parts.join('');
	}

	cls(id) {
		return `node st-${this.stateOf.get(id)}${id === this.selected ? ' sel' : ''}`;
	}

	// setState colours one node; cheap enough to call per event.
	setState(id, state) {
		const g = this.groups.get(id);
		if (!g || this.stateOf.get(id) === state) {
			return;
		}
		this.stateOf.set(id, state);
		g.setAttribute('class', this.cls(id));
		g.dataset.state = state;
	}

	// setCount shows "done/total" on a node (map steps).
	setCount(id, text) {
		const g = this.groups.get(id);
		if (g) {
			g.querySelector('text.count').textContent = text;
		}
	}

	select(id) {
		const prev = this.selected;
		this.selected = id;
		for (const x of [prev, id]) {
			const g = x && this.groups.get(x);
			if (g) {
				g.setAttribute('class', this.cls(x));
			}
		}
		// Highlight the selected node's edges.
		const { nodes, edges } = this.lay;
		for (const el of this.svg.querySelectorAll('path.edge.hl')) {
			el.classList.remove('hl');
		}
		if (id) {
			edges.forEach((e, i) => {
				if (nodes[e.from].id === id || nodes[e.to].id === id) {
					this.edgeEls[i].classList.add('hl');
				}
			});
		}
	}

	// zoom sets the drawing scale; 'fit' fits the container's width.
	zoom(how) {
		const { width } = this.lay;
		if (how === 'fit') {
			const avail = this.container.clientWidth - 4;
			this.scale = Math.min(1, Math.max(0.1, avail / width));
		} else if (how === 'in') {
			this.scale = Math.min(3, this.scale * 1.25);
		} else if (how === 'out') {
			this.scale = Math.max(0.1, this.scale / 1.25);
		} else {
			this.scale = 1;
		}
		this.zoomTo(this.scale);
	}

	zoomTo(scale) {
		const { width, height } = this.lay;
		this.scale = scale;
		this.svg.setAttribute('width', String(Math.round(width * scale)));
		this.svg.setAttribute('height', String(Math.round(height * scale)));
	}

	scrollTo(id) {
		const g = this.groups.get(id);
		if (g) {
			g.scrollIntoView({ block: 'nearest', inline: 'nearest' });
		}
	}
}
