// proto: a tiny protobuf decoder for the one message the live stream
// carries: topic bytes + 0x00 + weft.Envelope{events: EventBatch{Event...}}.
// Only the wire types proto3 uses are read (varint, 64-bit, length-delimited,
// 32-bit); unknown fields are skipped, so newer coordinators still decode.

const utf8 = new TextDecoder('utf-8');

class Reader {
	constructor(bytes, start = 0, end = bytes.length) {
		this.b = bytes;
		this.pos = start;
		this.end = end;
	}

	more() {
		return this.pos < this.end;
	}

	// varint reads an unsigned varint as a Number (exact up to 2^53).
	varint() {
		let result = 0;
		let mul = 1;
		for (let i = 0; i < 10; i++) {
			if (this.pos >= this.end) {
				throw new Error('protobuf: truncated varint');
			}
			const byte = this.b[this.pos++];
			result += (byte & 0x7f) * mul;
			if ((byte & 0x80) === 0) {
				return result;
			}
			mul *= 128;
		}
		throw new Error('protobuf: varint longer than 10 bytes');
	}

	// bytes reads a length-delimited field and returns [start, end).
	span() {
		const n = this.varint();
		const start = this.pos;
		if (start + n > this.end) {
			throw new Error('protobuf: length past the end of the message');
		}
		this.pos += n;
		return [start, start + n];
	}

	string() {
		const [s, e] = this.span();
		return utf8.decode(this.b.subarray(s, e));
	}

	skip(wire) {
		switch (wire) {
		case 0: this.varint(); break;
		case 1: this.pos += 8; break;
		case 2: this.span(); break;
		case 5: this.pos += 4; break;
		default: throw new Error(`protobuf: unsupported wire type ${wire}`);
		}
		if (this.pos > this.end) {
			throw new Error('protobuf: field past the end of the message');
		}
	}

	// tag reads a field key and returns [field number, wire type].
	tag() {
		const key = this.varint();
		return [Math.floor(key / 8), key % 8];
	}
}

// decodeEvent reads a weft.Event from bytes[start, end) into the same
// shape GET /api/v1/events returns.
function decodeEvent(bytes, start, end) {
	const r = new Reader(bytes, start, end);
	const ev = {
		id: 0, run: null, seq: 0, ts_ms: 0, ts: '', type: '', step: null,
		attempt: 0, node: null, data: {},
	};
	let dataJson = '';
	while (r.more()) {
		const [field, wire] = r.tag();
		switch (field * 8 + wire) {
		case 1 * 8 + 0: ev.id = r.varint(); break;
		case 2 * 8 + 2: ev.run = r.string() || null; break;
		case 3 * 8 + 0: ev.seq = r.varint(); break;
		case 4 * 8 + 0: ev.ts_ms = r.varint(); break;
		case 5 * 8 + 2: ev.type = r.string(); break;
		case 6 * 8 + 2: ev.step = r.string() || null; break;
		case 7 * 8 + 0: ev.attempt = r.varint(); break;
		case 8 * 8 + 2: ev.node = r.string() || null; break;
		case 9 * 8 + 2: dataJson = r.string(); break;
		default: r.skip(wire); break;
		}
	}
	if (dataJson !== '') {
		try {
			ev.data = JSON.parse(dataJson);
		} catch {
			ev.data = { raw: dataJson };
		}
	}
	if (ev.ts_ms) {
		ev.ts = new Date(ev.ts_ms).toISOString();
	}
	return ev;
}

// decodeEventBatch reads the repeated field 1 (Event) of an EventBatch.
function decodeEventBatch(bytes, start, end, out) {
	const r = new Reader(bytes, start, end);
	while (r.more()) {
		const [field, wire] = r.tag();
		if (field === 1 && wire === 2) {
			const [s, e] = r.span();
			out.push(decodeEvent(bytes, s, e));
		} else {
			r.skip(wire);
		}
	}
}

// The frame around an Envelope (common/wire.h): 'W' 'F' version flags, a
// 32-byte HMAC tag when flags bit 0 is set, the signer's 32-byte key and
// 64-byte signature when bit 1 is, its key and a 32-byte mac when bit 2
// is (paired). The browser does not hold the cluster cookie and does not
// check them: the WebSocket it came over is the coordinator's own,
// admitted by Origin and API token.
const FRAME_VERSION = 3;
const FRAME_HEADER = 4;
const FRAME_TAG = 32;
const FRAME_SIGNATURE = 32 + 64;
const FRAME_PAIRED = 32 + 32;

// decodeStreamMessage splits one WebSocket message (ArrayBuffer or
// Uint8Array) into its topic and the events of its Envelope. Throws on a
// malformed message.
export function decodeStreamMessage(data) {
	const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
	const nul = bytes.indexOf(0);
	if (nul < 0) {
		throw new Error('stream message has no topic terminator');
	}
	const topic = utf8.decode(bytes.subarray(0, nul));
	let at = nul + 1;
	if (bytes.length < at + FRAME_HEADER || bytes[at] !== 0x57 ||
	    bytes[at + 1] !== 0x46 || bytes[at + 2] !== FRAME_VERSION) {
		throw new Error('stream message is not a weft frame of version ' +
		    FRAME_VERSION);
	}
	const flags = bytes[at + 3];
	at += FRAME_HEADER + ((flags & 1) ? FRAME_TAG : 0) +
	    ((flags & 2) ? FRAME_SIGNATURE : 0) + ((flags & 4) ? FRAME_PAIRED : 0);
	if (at > bytes.length) {
		throw new Error('stream message is cut short');
	}
	const r = new Reader(bytes, at);
	const msg = { topic, version: 0, sender: '', seq: 0, ts_ms: 0, events: [] };
	while (r.more()) {
		const [field, wire] = r.tag();
		switch (field * 8 + wire) {
		case 1 * 8 + 0: msg.version = r.varint(); break;
		case 2 * 8 + 2: msg.sender = r.string(); break;
		case 3 * 8 + 0: msg.seq = r.varint(); break;
		case 4 * 8 + 0: msg.ts_ms = r.varint(); break;
		case 16 * 8 + 2: { // a single Event (older publishers)
			const [s, e] = r.span();
			msg.events.push(decodeEvent(bytes, s, e));
			break;
		}
		case 19 * 8 + 2: { // EventBatch
			const [s, e] = r.span();
			decodeEventBatch(bytes, s, e, msg.events);
			break;
		}
		default: r.skip(wire); break;
		}
	}
	return msg;
}
