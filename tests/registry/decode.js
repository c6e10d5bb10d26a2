#!/usr/bin/env node
// SPDX-License-Identifier: MIT
//
// Decode Confluent wire-format record values with Confluent's own JavaScript client
// (@confluentinc/schemaregistry's ProtobufDeserializer): a decoder nobody on ferry wrote.
//
//   node decode.js URL [USER:PASS] < records.json
//
// stdin: [{"topic": "...", "hex": "00000000010600..."}, ...]
// stdout: [{"topic": "...", "type": "<message full name>", "value": {<proto3 JSON>}}, ...]
// or exit 1 with the deserializer's error on stderr.
'use strict';

const sr = require('@confluentinc/schemaregistry');
const bufbuild = require(require.resolve('@bufbuild/protobuf', {
	paths: [require.resolve('@confluentinc/schemaregistry')],
}));

async function main() {
	const [url, userInfo] = process.argv.slice(2);
	const conf = { baseURLs: [url] };
	if (userInfo) conf.basicAuthCredentials = { credentialsSource: 'USER_INFO', userInfo };
	const d = new sr.ProtobufDeserializer(new sr.SchemaRegistryClient(conf), sr.SerdeType.VALUE, {});
	const records = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
	const out = [];
	for (const r of records) {
		const msg = await d.deserialize(r.topic, Buffer.from(r.hex, 'hex'));
		const desc = d.fileRegistry.getMessage(msg.$typeName);
		out.push({ topic: r.topic, type: msg.$typeName, value: bufbuild.toJson(desc, msg) });
	}
	process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
	process.stderr.write(`decode: ${e && e.stack ? e.stack : e}\n`);
	process.exit(1);
});
