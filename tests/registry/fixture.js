#!/usr/bin/env node
// SPDX-License-Identifier: MIT
//
// A small Confluent Schema Registry for tests: Node's standard library only.
//
//   node fixture.js [--port N] [--descriptor-set FILE] [--basic-auth USER:PASS] [--unavailable N]
//
// Listens on 127.0.0.1 (port N, or one the kernel picks) and prints "port=N" on stdout once it
// accepts connections. --unavailable N answers the first N requests 503 (an outage at start).
//
// What it serves, as Confluent's registry does (REST API v1, its error JSON
// {"error_code": ..., "message": ...}, Content-Type application/vnd.schemaregistry.v1+json):
//   GET  /subjects, /subjects/S/versions, /subjects/S/versions/V[?deleted=true&format=serialized],
//        /subjects/S/versions/V/schema, /schemas/ids/ID[?subject=S&format=serialized],
//        /schemas/ids/ID/versions, /schemas/ids/ID/subjects, /schemas/types, /config[/S]
//   POST /subjects/S/versions (register: the same schema and references get the same id in every
//        subject; registering what a subject holds returns its id without a new version),
//        /subjects/S (lookup), /compatibility/subjects/S/versions/V[?verbose=true]
//   PUT  /config[/S]      DELETE /subjects/S, /subjects/S/versions/V (soft)
//   anything else, /associations/... included: 404 {"error_code":404,...}
// Errors: 40401 subject not found, 40402 version not found, 40403 schema not found, 42201
// invalid schema (unparsable, a reference missing or not matching an import), 409 incompatible,
// 401 without the right basic auth.
//
// Schemas: PROTOBUF only. A schema is either a base64 FileDescriptorProto (what ferry registers;
// Confluent's registry accepts that form too) or .proto text. The fixture has no .proto parser:
// text is mapped to a file of the --descriptor-set (by package and first top-level type) and
// refused with 42201 when none matches. format=serialized answers the FileDescriptorProto in
// base64; the default format answers .proto text (rendered from the descriptor for schemas
// registered as descriptors, as Confluent renders its parsed form).
//
// Limitations (documented, not hidden): the compatibility check (on register and on the
// compatibility endpoint) catches only obvious breaks: a message removed, the package changed,
// a field's wire type or named type changed; anything subtler is answered compatible. Ids of a
// schema registered once as text and once as descriptor differ (Confluent would normalise both
// to one). Contexts, modes, metadata, rule sets, and non-PROTOBUF types are not implemented.
'use strict';

const http = require('node:http');
const fs = require('node:fs');

// ---- a minimal protobuf reader: just enough of descriptor.proto ----

function readVarint(buf, pos) {
	let v = 0n, shift = 0n;
	for (;;) {
		if (pos.i >= buf.length || shift > 63n) throw new Error('truncated varint');
		const b = buf[pos.i++];
		v |= BigInt(b & 0x7f) << shift;
		if (!(b & 0x80)) return v;
		shift += 7n;
	}
}

// Calls fn(fieldNumber, value) per field: value is a BigInt (varint), a Buffer (bytes) or null.
function eachField(buf, fn) {
	const pos = { i: 0 };
	while (pos.i < buf.length) {
		const key = Number(readVarint(buf, pos));
		const num = key >>> 3, wt = key & 7;
		if (num === 0) throw new Error('field 0');
		if (wt === 0) fn(num, readVarint(buf, pos));
		else if (wt === 2) {
			const len = Number(readVarint(buf, pos));
			if (pos.i + len > buf.length) throw new Error('truncated bytes');
			fn(num, buf.subarray(pos.i, pos.i + len));
			pos.i += len;
		} else if (wt === 1) { pos.i += 8; fn(num, null); }
		else if (wt === 5) { pos.i += 4; fn(num, null); }
		else throw new Error('wire type ' + wt);
		if (pos.i > buf.length) throw new Error('truncated');
	}
}

const str = (b) => b.toString('utf8');

function parseEnum(buf) {
	const e = { name: '', value: [] };
	eachField(buf, (n, v) => {
		if (n === 1) e.name = str(v);
		else if (n === 2) {
			const val = { name: '', number: 0 };
			eachField(v, (m, w) => {
				if (m === 1) val.name = str(w);
				else if (m === 2) val.number = Number(BigInt.asIntN(32, w));
			});
			e.value.push(val);
		}
	});
	return e;
}

function parseMessage(buf) {
	const m = { name: '', field: [], nestedType: [], enumType: [] };
	eachField(buf, (n, v) => {
		if (n === 1) m.name = str(v);
		else if (n === 2) {
			const f = { name: '', number: 0, label: 1, type: 0, typeName: '' };
			eachField(v, (k, w) => {
				if (k === 1) f.name = str(w);
				else if (k === 3) f.number = Number(w);
				else if (k === 4) f.label = Number(w);
				else if (k === 5) f.type = Number(w);
				else if (k === 6) f.typeName = str(w);
			});
			m.field.push(f);
		} else if (n === 3) m.nestedType.push(parseMessage(v));
		else if (n === 4) m.enumType.push(parseEnum(v));
	});
	return m;
}

function parseFile(buf) {
	const f = { name: '', package: '', dependency: [], messageType: [], enumType: [], syntax: '' };
	eachField(buf, (n, v) => {
		if (n === 1) f.name = str(v);
		else if (n === 2) f.package = str(v);
		else if (n === 3) f.dependency.push(str(v));
		else if (n === 4) f.messageType.push(parseMessage(v));
		else if (n === 5) f.enumType.push(parseEnum(v));
		else if (n === 12) f.syntax = str(v);
	});
	if (!f.name) throw new Error('no file name');
	return f;
}

// FileDescriptorSet: repeated FileDescriptorProto file = 1; keeps each file's own bytes.
function parseSet(buf) {
	const files = [];
	eachField(buf, (n, v) => { if (n === 1) files.push({ fd: parseFile(v), bytes: Buffer.from(v) }); });
	return files;
}

// ---- .proto text from a descriptor (the default format) ----

const TYPES = [null, 'double', 'float', 'int64', 'uint64', 'int32', 'fixed64', 'fixed32', 'bool',
	'string', 'group', 'message', 'bytes', 'uint32', 'enum', 'sfixed32', 'sfixed64', 'sint32',
	'sint64'];

function renderEnum(e, ind) {
	let s = `${ind}enum ${e.name} {\n`;
	for (const v of e.value) s += `${ind}  ${v.name} = ${v.number};\n`;
	return s + `${ind}}\n`;
}

function renderMessage(m, ind, proto3) {
	let s = `${ind}message ${m.name} {\n`;
	for (const n of m.nestedType) s += renderMessage(n, ind + '  ', proto3);
	for (const e of m.enumType) s += renderEnum(e, ind + '  ');
	for (const f of m.field) {
		const label = f.label === 3 ? 'repeated ' : f.label === 2 ? 'required ' : proto3 ? '' : 'optional ';
		const type = f.typeName || TYPES[f.type] || 'bytes';
		s += `${ind}  ${label}${type} ${f.name} = ${f.number};\n`;
	}
	return s + `${ind}}\n`;
}

function renderFile(fd) {
	const proto3 = fd.syntax === 'proto3';
	let s = `syntax = "${proto3 ? 'proto3' : 'proto2'}";\n`;
	if (fd.package) s += `package ${fd.package};\n`;
	for (const d of fd.dependency) s += `\nimport "${d}";`;
	if (fd.dependency.length) s += '\n';
	for (const m of fd.messageType) s += '\n' + renderMessage(m, '', proto3);
	for (const e of fd.enumType) s += '\n' + renderEnum(e, '');
	return s;
}

// ---- compatibility: obvious breaks only ----

function wireKind(f) {
	if (f.typeName && (f.type === 0 || f.type === 11 || f.type === 14)) return f.type === 14 ? 'varint' : 'len';
	switch (f.type) {
	case 1: case 6: case 16: return 'i64';
	case 2: case 7: case 15: return 'i32';
	case 9: case 11: case 12: return 'len';
	case 10: return 'group';
	default: return 'varint';
	}
}

function messagesByName(fd) {
	const out = new Map();
	const walk = (list, scope) => {
		for (const m of list) {
			const name = scope + m.name;
			out.set(name, m);
			walk(m.nestedType, name + '.');
		}
	};
	walk(fd.messageType, fd.package ? fd.package + '.' : '');
	return out;
}

const bare = (t) => (t || '').replace(/^\./, '').split('.').pop();

// Reasons a reader of `newer` cannot read what `older` wrote (and vice versa for FORWARD).
function breaks(older, newer) {
	const out = [];
	if (older.package !== newer.package) out.push(`PACKAGE_CHANGED: ${older.package} -> ${newer.package}`);
	const a = messagesByName(older), b = messagesByName(newer);
	for (const [name, m] of a) {
		const n = b.get(name);
		if (!n) { out.push(`MESSAGE_REMOVED: ${name}`); continue; }
		for (const f of m.field) {
			const g = n.field.find((x) => x.number === f.number);
			if (!g) continue;
			if (wireKind(f) !== wireKind(g)) out.push(`FIELD_KIND_CHANGED: ${name}.${f.name} (${f.number})`);
			else if ((f.typeName || g.typeName) && bare(f.typeName) !== bare(g.typeName))
				out.push(`FIELD_NAMED_TYPE_CHANGED: ${name}.${f.name} (${f.number})`);
		}
	}
	return out;
}

// ---- the registry ----

function errorBody(code, message) { return { error_code: code, message }; }
class RegistryError extends Error {
	constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

function main() {
	const args = process.argv.slice(2);
	const opt = { port: 0, descriptorSet: null, auth: null, unavailable: 0 };
	for (let i = 0; i < args.length; i++) {
		const a = args[i], v = args[i + 1];
		if (a === '--port') { opt.port = Number(v); i++; }
		else if (a === '--descriptor-set') { opt.descriptorSet = v; i++; }
		else if (a === '--basic-auth') { opt.auth = v; i++; }
		else if (a === '--unavailable') { opt.unavailable = Number(v); i++; }
		else { process.stderr.write(`fixture: unknown argument ${a}\n`); process.exit(100); }
	}
	const known = opt.descriptorSet ? parseSet(fs.readFileSync(opt.descriptorSet)) : [];

	const schemas = new Map(); // id -> {schemaType, schema, references, fd, bytes}
	const ids = new Map(); // canonical key -> id
	const subjects = new Map(); // subject -> [{version, id, deleted}]
	const config = new Map(); // subject ('' = global) -> level
	config.set('', 'BACKWARD');
	let nextId = 1;

	// The descriptor of a schema string: base64 FileDescriptorProto, or text mapped to --descriptor-set.
	function descriptorOf(schema) {
		if (/^[A-Za-z0-9+/]+={0,2}$/.test(schema) && schema.length % 4 === 0) {
			try {
				const bytes = Buffer.from(schema, 'base64');
				return { fd: parseFile(bytes), bytes, text: false };
			} catch (e) { /* not a descriptor: maybe text */ }
		}
		const pkg = (schema.match(/^\s*package\s+([\w.]+)\s*;/m) || [])[1] || '';
		const first = (schema.match(/^\s*(?:message|enum)\s+(\w+)/m) || [])[1];
		if (!first) throw new RegistryError(422, 42201, 'Invalid schema: neither .proto text nor a base64 FileDescriptorProto');
		for (const k of known) {
			const top = k.fd.messageType[0] ? k.fd.messageType[0].name : (k.fd.enumType[0] || {}).name;
			if (k.fd.package === pkg && top === first) return { fd: k.fd, bytes: k.bytes, text: true };
		}
		throw new RegistryError(422, 42201, `Invalid schema: the fixture cannot parse .proto text; ` +
			`no file of its descriptor set has package '${pkg}' and first type '${first}'`);
	}

	function live(subject, deleted) {
		return (subjects.get(subject) || []).filter((v) => deleted || !v.deleted);
	}

	function version(subject, v, deleted) {
		const all = live(subject, deleted);
		if (!subjects.has(subject) || !live(subject, true).length || (!deleted && !all.length))
			throw new RegistryError(404, 40401, `Subject '${subject}' not found.`);
		const found = v === 'latest' || v === '-1' ? all[all.length - 1] : all.find((x) => String(x.version) === v);
		if (!found) throw new RegistryError(404, 40402, `Version ${v} not found.`);
		return found;
	}

	// A schema as submitted: checked, its references resolved; not stored.
	function parseSubmitted(body) {
		if (!body || typeof body.schema !== 'string')
			throw new RegistryError(422, 42201, 'Invalid schema: no schema');
		const schemaType = body.schemaType || 'AVRO';
		if (schemaType !== 'PROTOBUF')
			throw new RegistryError(422, 42201, `Invalid schema: the fixture serves PROTOBUF only, not ${schemaType}`);
		const references = (body.references || []).map((r) => ({ name: r.name, subject: r.subject, version: r.version }));
		const d = descriptorOf(body.schema);
		for (const r of references) {
			try { version(r.subject, String(r.version), false); } catch (e) {
				throw new RegistryError(422, 42201, `Invalid schema: reference ${r.name} (subject ${r.subject} version ${r.version}) not found`);
			}
		}
		for (const dep of d.fd.dependency) {
			// well-known types are built in, as in Confluent's clients
			if (/^(google\/protobuf|google\/type|confluent)\//.test(dep)) continue;
			if (!references.some((r) => r.name === dep))
				throw new RegistryError(422, 42201, `Invalid schema: import ${dep} has no reference`);
		}
		const key = JSON.stringify([schemaType, body.schema, references]);
		return { schemaType, schema: body.schema, references, fd: d.fd, bytes: d.bytes, key };
	}

	function level(subject) { return config.get(subject) || config.get(''); }

	function incompatibilities(subject, s, against) {
		const lv = level(subject);
		if (lv === 'NONE') return [];
		const out = [];
		for (const v of against) {
			const old = schemas.get(v.id).fd;
			if (lv.startsWith('BACKWARD') || lv.startsWith('FULL')) out.push(...breaks(old, s.fd));
			if (lv.startsWith('FORWARD') || lv.startsWith('FULL')) out.push(...breaks(s.fd, old));
		}
		return out;
	}

	function priorFor(subject) {
		const all = live(subject, false);
		if (!all.length) return [];
		return level(subject).endsWith('_TRANSITIVE') ? all : [all[all.length - 1]];
	}

	function schemaOut(s, format) {
		if (format === 'serialized') return s.bytes.toString('base64');
		return s.bytes && !descriptorIsText(s) ? renderFile(s.fd) : s.schema;
	}
	function descriptorIsText(s) { return !/^[A-Za-z0-9+/]+={0,2}$/.test(s.schema); }

	function versionOut(subject, v, format) {
		const s = schemas.get(v.id);
		const out = { subject, version: v.version, id: v.id, schemaType: s.schemaType, schema: schemaOut(s, format) };
		if (s.references.length) out.references = s.references;
		return out;
	}

	const routes = [
		['GET', /^\/$/, () => ({})],
		['GET', /^\/schemas\/types$/, () => ['PROTOBUF']],
		['GET', /^\/subjects$/, (m, q) => [...subjects.keys()].filter((s) => live(s, q.get('deleted') === 'true').length)],
		['GET', /^\/subjects\/([^/]+)\/versions$/, (m, q) => {
			const all = live(m[1], q.get('deleted') === 'true');
			if (!all.length) throw new RegistryError(404, 40401, `Subject '${m[1]}' not found.`);
			return all.map((v) => v.version);
		}],
		['POST', /^\/subjects\/([^/]+)\/versions$/, (m, q, body) => {
			const s = parseSubmitted(body);
			const existing = ids.get(s.key);
			const held = existing && live(m[1], false).find((v) => v.id === existing);
			if (held) return { id: existing };
			const bad = incompatibilities(m[1], s, priorFor(m[1]));
			if (bad.length)
				throw new RegistryError(409, 409, `Schema being registered is incompatible with an earlier schema for subject "${m[1]}", details: [${bad.join(', ')}]`);
			let id = existing;
			if (!id) {
				id = nextId++;
				ids.set(s.key, id);
				schemas.set(id, s);
			}
			const list = subjects.get(m[1]) || [];
			const ver = list.length ? list[list.length - 1].version + 1 : 1;
			list.push({ version: ver, id, deleted: false });
			subjects.set(m[1], list);
			return { id };
		}],
		['POST', /^\/subjects\/([^/]+)$/, (m, q, body) => {
			const deleted = q.get('deleted') === 'true';
			if (!live(m[1], deleted).length) throw new RegistryError(404, 40401, `Subject '${m[1]}' not found.`);
			const s = parseSubmitted(body);
			const id = ids.get(s.key);
			const v = id && live(m[1], deleted).find((x) => x.id === id);
			if (!v) throw new RegistryError(404, 40403, 'Schema not found');
			return versionOut(m[1], v, q.get('format'));
		}],
		['GET', /^\/subjects\/([^/]+)\/versions\/([^/]+)$/, (m, q) =>
			versionOut(m[1], version(m[1], m[2], q.get('deleted') === 'true'), q.get('format'))],
		['GET', /^\/subjects\/([^/]+)\/versions\/([^/]+)\/schema$/, (m, q) =>
			({ raw: schemaOut(schemas.get(version(m[1], m[2], q.get('deleted') === 'true').id), q.get('format')) })],
		['DELETE', /^\/subjects\/([^/]+)$/, (m) => {
			const all = live(m[1], false);
			if (!all.length) throw new RegistryError(404, 40401, `Subject '${m[1]}' not found.`);
			for (const v of all) v.deleted = true;
			return all.map((v) => v.version);
		}],
		['DELETE', /^\/subjects\/([^/]+)\/versions\/([^/]+)$/, (m) => {
			const v = version(m[1], m[2], false);
			v.deleted = true;
			return v.version;
		}],
		['GET', /^\/schemas\/ids\/(\d+)$/, (m, q) => {
			const s = schemas.get(Number(m[1]));
			if (!s) throw new RegistryError(404, 40403, `Schema ${m[1]} not found`);
			const out = { schemaType: s.schemaType, schema: schemaOut(s, q.get('format')) };
			if (s.references.length) out.references = s.references;
			return out;
		}],
		['GET', /^\/schemas\/ids\/(\d+)\/(versions|subjects)$/, (m) => {
			const id = Number(m[1]);
			if (!schemas.has(id)) throw new RegistryError(404, 40403, `Schema ${m[1]} not found`);
			const out = [];
			for (const [subject, list] of subjects)
				for (const v of list) if (v.id === id && !v.deleted) out.push({ subject, version: v.version });
			return m[2] === 'versions' ? out : [...new Set(out.map((x) => x.subject))];
		}],
		['POST', /^\/compatibility\/subjects\/([^/]+)\/versions\/([^/]+)$/, (m, q, body) => {
			const s = parseSubmitted(body);
			const against = m[2] === 'latest' && !live(m[1], false).length ? [] : [version(m[1], m[2], false)];
			const bad = incompatibilities(m[1], s, against);
			const out = { is_compatible: bad.length === 0 };
			if (q.get('verbose') === 'true') out.messages = bad;
			return out;
		}],
		['GET', /^\/config$/, () => ({ compatibilityLevel: config.get('') })],
		['GET', /^\/config\/([^/]+)$/, (m, q) => {
			if (config.has(m[1])) return { compatibilityLevel: config.get(m[1]) };
			if (q.get('defaultToGlobal') === 'true') return { compatibilityLevel: config.get('') };
			throw new RegistryError(404, 40408, `Subject '${m[1]}' does not have subject-level compatibility configured`);
		}],
		['PUT', /^\/config(?:\/([^/]+))?$/, (m, q, body) => {
			const lv = body && body.compatibility;
			const ok = ['NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE'];
			if (!ok.includes(lv)) throw new RegistryError(422, 42203, 'Invalid compatibility level');
			config.set(m[1] || '', lv);
			return { compatibility: lv };
		}],
	];

	let refusedSoFar = 0;
	const server = http.createServer((req, res) => {
		const chunks = [];
		req.on('data', (c) => chunks.push(c));
		req.on('end', () => {
			const send = (status, obj) => {
				const raw = obj && Object.prototype.hasOwnProperty.call(obj, 'raw');
				const text = raw ? obj.raw : JSON.stringify(obj);
				res.writeHead(status, { 'Content-Type': raw ? 'text/plain' : 'application/vnd.schemaregistry.v1+json' });
				res.end(text);
			};
			if (refusedSoFar < opt.unavailable) {
				refusedSoFar++;
				return send(503, errorBody(50003, 'Error while forwarding the request to the leader (fixture outage)'));
			}
			if (opt.auth) {
				const want = 'Basic ' + Buffer.from(opt.auth).toString('base64');
				if (req.headers.authorization !== want) {
					res.setHeader('WWW-Authenticate', 'Basic realm="SchemaRegistry"');
					return send(401, errorBody(401, 'Unauthorized'));
				}
			}
			const url = new URL(req.url, 'http://fixture');
			let segs;
			try {
				segs = url.pathname.split('/').map((p) => encodeURIComponent(decodeURIComponent(p)));
			} catch (e) { return send(404, errorBody(404, 'HTTP 404 Not Found')); }
			const path = segs.join('/');
			for (const [method, re, fn] of routes) {
				const m = path.match(re);
				if (!m || method !== req.method) continue;
				const args = m.map((x, i) => (i ? x && decodeURIComponent(x) : x));
				let body = null;
				if (chunks.length) {
					try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch (e) {
						return send(400, errorBody(400, 'Unexpected character: the body is not JSON'));
					}
				}
				try { return send(200, fn(args, url.searchParams, body)); } catch (e) {
					if (e instanceof RegistryError) return send(e.status, errorBody(e.code, e.message));
					return send(500, errorBody(50001, 'fixture: ' + e.message));
				}
			}
			return send(404, errorBody(404, 'HTTP 404 Not Found'));
		});
	});
	server.listen(opt.port, '127.0.0.1', () => {
		process.stdout.write(`port=${server.address().port}\n`);
	});
	const stop = () => {
		server.close(() => process.exit(0));
		server.closeAllConnections();
	};
	process.on('SIGTERM', stop);
	process.on('SIGINT', stop);
}

main();
