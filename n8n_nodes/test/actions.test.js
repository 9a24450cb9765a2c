'use strict';
// Each operation of the "LRE Bridge" node (built dist/), its request and its output, against a real bridge.

const test = require('node:test');
const assert = require('node:assert/strict');

const { LreBridge } = require('../dist/nodes/LreBridge/LreBridge.node.js');
const { OPERATIONS } = require('../dist/nodes/LreBridge/generated/catalog.js');
const {
	MISE_EN_DEMEURE, api, executeContext, loadOptionsContext, pdfText, samplePdf, sha256, startServer, waitFor,
} = require('./support');

const node = new LreBridge();
const run = (options) => {
	const context = executeContext(options);
	return node.execute.call(context).then(([items]) => ({ items, calls: context.calls }));
};
const recipient = { recipientType: 'professional', recipientEmail: 'compta@exemple.fr', recipientCompany: 'Exemple SARL' };
const fromTemplate = (extra = {}, additionalFields = {}) => ({
	resource: 'letter',
	operation: 'sendFromTemplate',
	template: { __rl: true, mode: 'list', value: 'mise_en_demeure' },
	data: { mappingMode: 'defineBelow', value: MISE_EN_DEMEURE },
	...recipient,
	additionalFields,
	...extra,
});
const unique = (prefix) => `${prefix}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;

test('send from template: body from the resource mapper, derived Idempotency-Key, letter as output', async () => {
	const reference = unique('N8N-TPL');
	const { items, calls } = await run({ params: fromTemplate({}, { reference }), executionId: 'exec-tpl' });
	assert.equal(calls.length, 1);
	const [call] = calls;
	assert.equal(call.method, 'POST');
	assert.match(call.url, /\/v1\/letters$/);
	assert.equal(call.headers['Idempotency-Key'], 'n8n-exec-tpl-a1b2c3d4-0000-4000-8000-000000000001-0');
	assert.deepEqual(call.body.data, MISE_EN_DEMEURE);
	assert.equal(call.body.template, 'mise_en_demeure');
	assert.deepEqual(call.body.recipient, { type: 'professional', email: 'compta@exemple.fr', company: 'Exemple SARL' });
	assert.equal(items.length, 1);
	assert.deepEqual(items[0].pairedItem, { item: 0 });
	assert.match(items[0].json.id, /^let_/);
	assert.equal(items[0].json.reference, reference);
	assert.equal(items[0].json.template.name, 'mise_en_demeure');
	for (const key of OPERATIONS['letter:sendFromTemplate'].sampleKeys.filter((k) => k !== 'document_file')) {
		assert.ok(key in items[0].json, `the output has "${key}" like the catalogue's sample`);
	}
});

test('the same execution, node and item never send twice; a given key wins', async () => {
	const reference = unique('N8N-IDEM');
	const first = await run({ params: fromTemplate({}, { reference }), executionId: 'exec-same' });
	const again = await run({ params: fromTemplate({}, { reference }), executionId: 'exec-same' });
	assert.equal(again.items[0].json.id, first.items[0].json.id);
	const listed = await api('GET', `/v1/letters?reference=${reference}`);
	assert.equal(listed.data.data.length, 1);
	const own = await run({ params: fromTemplate({}, { reference, idempotencyKey: `row-${reference}` }), executionId: 'exec-other' });
	assert.equal(own.calls[0].headers['Idempotency-Key'], `row-${reference}`);
	assert.notEqual(own.items[0].json.id, first.items[0].json.id);
});

test('every input item is sent and paired; a 422 is a NodeApiError with the bridge message and field', async () => {
	const reference = unique('N8N-ITEMS');
	const params = (i) => fromTemplate(i === 1 ? { recipientEmail: 'not-an-email' } : {}, { reference: `${reference}-${i}` });
	await assert.rejects(run({ params, items: [{ json: {} }, { json: {} }] }), (error) => {
		assert.equal(error.constructor.name, 'NodeApiError');
		assert.match(error.message, /email/i);
		assert.match(error.description, /Field: recipient\.email/);
		assert.equal(error.httpCode, '422');
		return true;
	});
	const tolerant = await run({ params, items: [{ json: {} }, { json: {} }, { json: {} }], continueOnFail: true });
	assert.deepEqual(tolerant.items.map((item) => item.pairedItem.item), [0, 1, 2]);
	assert.match(tolerant.items[0].json.id, /^let_/);
	assert.match(tolerant.items[1].json.error, /email/i);
	assert.match(tolerant.items[2].json.id, /^let_/);
});

test('send a PDF from a binary property: the bridge stores exactly those bytes', async () => {
	const pdf = await samplePdf();
	const reference = unique('N8N-PDF');
	const binaries = [{ attachment: { data: pdf.toString('base64'), fileName: 'facture-412.pdf', mimeType: 'application/pdf' } }];
	const { items, calls } = await run({
		params: { resource: 'letter', operation: 'sendPdf', pdfSource: 'binary', pdfBinaryProperty: 'attachment', ...recipient, additionalFields: { reference } },
		binaries,
	});
	assert.equal(calls[0].body.documents[0].filename, 'facture-412.pdf');
	assert.equal(calls[0].body.documents[0].url, undefined);
	assert.equal(items[0].json.documents[0].sha256, sha256(pdf));
	await assert.rejects(
		run({ params: { resource: 'letter', operation: 'sendPdf', pdfSource: 'binary', pdfBinaryProperty: 'missing', ...recipient } }),
		/binary file 'missing'/,
	);
});

test('send a PDF from a URL: the bridge downloads it', async () => {
	const pdf = await samplePdf();
	const server = await startServer(() => [200, { 'Content-Type': 'application/pdf' }, pdf]);
	try {
		const { items, calls } = await run({
			params: { resource: 'letter', operation: 'sendPdf', pdfSource: 'url', pdfUrl: `${server.url}/lettre.pdf`, ...recipient, additionalFields: { pdfFilename: 'relance.pdf' } },
		});
		assert.deepEqual(calls[0].body.documents, [{ url: `${server.url}/lettre.pdf`, filename: 'relance.pdf' }]);
		assert.equal(items[0].json.documents[0].sha256, sha256(pdf));
		assert.equal(server.requests.length, 1);
	} finally {
		await server.close();
	}
});

test('get, find by reference, get many with Return All and Limit and filters', async () => {
	const reference = unique('N8N-FIND');
	const sent = [];
	for (let i = 0; i < 3; i++) {
		const { items } = await run({ params: fromTemplate({}, { reference }), executionId: `exec-find-${i}` });
		sent.push(items[0].json.id);
	}
	const got = await run({ params: { resource: 'letter', operation: 'get', letterId: sent[0] } });
	assert.match(got.calls[0].url, new RegExp(`/v1/letters/${sent[0]}$`));
	assert.equal(got.items[0].json.id, sent[0]);

	const found = await run({ params: { resource: 'letter', operation: 'findByReference', reference } });
	assert.equal(found.items.length, 1);
	assert.equal(found.items[0].json.id, sent[2], 'the most recent letter with that reference');
	const none = await run({ params: { resource: 'letter', operation: 'findByReference', reference: unique('NOPE') } });
	assert.equal(none.items.length, 0);

	const limited = await run({ params: { resource: 'letter', operation: 'getMany', returnAll: false, limit: 2, filters: { reference } } });
	assert.deepEqual(limited.items.map((i) => i.json.id), [sent[2], sent[1]]);
	assert.equal(new URL(limited.calls[0].url).searchParams.get('reference'), reference);
	const all = await run({ params: { resource: 'letter', operation: 'getMany', returnAll: true, filters: { reference } } });
	assert.equal(all.items.length, 3);

	const missing = await run({ params: { resource: 'letter', operation: 'get', letterId: 'let_unknown' }, continueOnFail: true });
	assert.match(missing.items[0].json.error, /No letter with this id/);
	assert.equal(missing.items[0].json.httpCode, '404');
});

test('templates: get many, and a preview rendered as binary', async () => {
	const listed = await run({ params: { resource: 'template', operation: 'getMany', returnAll: true } });
	assert.ok(listed.items.some((item) => item.json.name === 'mise_en_demeure'));
	const limited = await run({ params: { resource: 'template', operation: 'getMany', returnAll: false, limit: 1 } });
	assert.equal(limited.items.length, 1);

	const rendered = await run({
		params: { resource: 'template', operation: 'render', template: { mode: 'name', value: 'mise_en_demeure' }, data: { value: MISE_EN_DEMEURE }, binaryPropertyName: 'preview' },
	});
	const [item] = rendered.items;
	const bytes = Buffer.from(item.binary.preview.data, 'base64');
	assert.equal(bytes.subarray(0, 5).toString(), '%PDF-');
	assert.equal(item.binary.preview.mimeType, 'application/pdf');
	assert.equal(item.json.sha256, sha256(bytes));
	assert.equal(item.json.templateVersion, 1);
});

test('the template list and the resource mapper fields come from the bridge', async () => {
	const search = await node.methods.listSearch.searchTemplates.call(loadOptionsContext({}), 'demeure');
	assert.ok(search.results.some((r) => r.value === 'mise_en_demeure'));
	assert.ok(search.results.every((r) => `${r.name} ${r.value}`.toLowerCase().includes('demeure')));
	const context = loadOptionsContext({ template: { mode: 'list', value: 'mise_en_demeure' } });
	const mapped = await node.methods.resourceMapping.getTemplateFields.call(context);
	assert.match(context.calls[0].url, /\/v1\/templates\/mise_en_demeure\/fields\?platform=n8n$/);
	const ids = mapped.fields.map((f) => f.id);
	for (const key of Object.keys(MISE_EN_DEMEURE)) assert.ok(ids.includes(key), key);
	assert.ok(mapped.fields.every((f) => typeof f.displayName === 'string' && typeof f.required === 'boolean'));
});

test('proof, document and evidence package download as binary with the bridge\'s hashes', async () => {
	const reference = unique('N8N-PROOF');
	const { items } = await run({ params: fromTemplate({}, { reference, sandboxOutcome: 'accepted' }) });
	const letterId = items[0].json.id;
	const proofs = await waitFor(async () => {
		const listed = await api('GET', `/v1/letters/${letterId}/proofs`);
		return listed.data.data.some((p) => p.kind === 'acceptance') && listed.data.data;
	}, 'the acceptance proof');
	const acceptance = proofs.find((p) => p.kind === 'acceptance');

	const proof = await run({ params: { resource: 'proof', operation: 'download', letterId, kind: 'acceptance', binaryPropertyName: 'proof' } });
	const proofBytes = Buffer.from(proof.items[0].binary.proof.data, 'base64');
	assert.equal(sha256(proofBytes), acceptance.sha256);
	assert.equal(proof.items[0].json.sha256, acceptance.sha256);
	assert.equal(proof.items[0].json.letter_id, letterId);
	assert.equal(proof.items[0].binary.proof.fileName, acceptance.filename);

	const documentItem = await run({ params: { resource: 'document', operation: 'download', letterId, binaryPropertyName: 'data' } });
	assert.equal(documentItem.items[0].json.sha256, items[0].json.documents[0].sha256);

	const evidence = await run({ params: { resource: 'evidencePackage', operation: 'download', letterId, binaryPropertyName: 'data' } });
	const zip = Buffer.from(evidence.items[0].binary.data.data, 'base64');
	assert.equal(zip.subarray(0, 2).toString(), 'PK');
	assert.equal(evidence.items[0].binary.data.mimeType, 'application/zip');

	const absent = await run({ params: { resource: 'proof', operation: 'download', letterId, kind: 'refusal', binaryPropertyName: 'data' }, continueOnFail: true });
	assert.match(absent.items[0].json.error, /no 'refusal' proof/);
});

test('consents: record (idempotent per item), list with filters, revoke', async () => {
	const email = `${unique('jeanne')}@exemple.fr`;
	const params = {
		resource: 'consent', operation: 'record', email, method: 'electronic_form', obtainedAt: '2026-11-20T14:05:00+01:00', recordedBy: 'Cabinet Durand',
		additionalFields: { firstName: 'Jeanne', lastName: 'Martin' },
	};
	const recorded = await run({ params, executionId: 'exec-consent' });
	assert.equal(recorded.calls[0].body.obtained_at, '2026-11-20T14:05:00+01:00');
	assert.equal(recorded.items[0].json.status, 'active');
	const again = await run({ params, executionId: 'exec-consent' });
	assert.equal(again.items[0].json.id, recorded.items[0].json.id);

	const listed = await run({ params: { resource: 'consent', operation: 'getMany', returnAll: true, filters: { email, status: 'active' } } });
	assert.deepEqual(listed.items.map((i) => i.json.id), [recorded.items[0].json.id]);

	const revoked = await run({ params: { resource: 'consent', operation: 'revoke', consentId: recorded.items[0].json.id, additionalFields: { revokedBy: 'Cabinet Durand' } } });
	assert.equal(revoked.calls[0].method, 'DELETE');
	assert.equal(revoked.items[0].json.status, 'revoked');
	assert.equal(revoked.items[0].json.revoked_by, 'Cabinet Durand');

	await assert.rejects(run({ params: { ...params, obtainedAt: '2026-11-20T14:05:00' } }), /time zone/);
});

// --- Send a Batch (issue 16): every input item is one row of ONE batch -------------------------------

const inFortyDays = new Date(Date.now() + 40 * 86400 * 1000).toISOString().slice(0, 10);
const CONVOCATION = {
	expediteur_nom: 'Cabinet Durand, syndic', expediteur_adresse: '3 place Bellecour\n69002 Lyon', lieu: 'Lyon',
	adresse_immeuble: '18 rue Victor-Hugo, 69002 Lyon', date_assemblee: inFortyDays, heure_assemblee: '18 h 30',
	lieu_assemblee: 'Salle des fêtes, 2 rue d\'Enghien, 69002 Lyon',
	ordre_du_jour: 'Élection du président de séance\nApprobation des comptes',
};
const coOwners = (prefix, count) => Array.from({ length: count }, (_, i) => ({ json: {
	email: `${prefix}-lot${i + 1}@exemple.fr`, company: `SCI Lot ${i + 1}`, address: `${i + 1} rue Victor-Hugo\n69002 Lyon`,
	lots: `Lot ${i + 1} : appartement`,
} }));
// A spreadsheet cell as a syndic types it: quotes, a semicolon, a new line (two lots) and accents.
const AWKWARD_LOTS = 'Lot 12 : appartement "le Belvédère"; cave n° 3\nLot 112 : garage côté cour';
// The node's parameters for item i, as n8n gives them once the row expressions are evaluated on that item.
const batchParams = (items, additionalFields, extra = {}) => (i) => ({
	resource: 'batch',
	operation: 'send',
	template: { __rl: true, mode: 'list', value: 'convocation_ag_copropriete' },
	rowEmail: items[i].json.email,
	rowFields: {
		rowCompany: items[i].json.company, rowDestinataireNom: items[i].json.company,
		rowDestinataireAdresse: items[i].json.address,
		// The row's template values as key/value pairs (each value an expression on the item); an item
		// with `former` fills the former JSON field instead, as workflows made before the pairs do.
		...(items[i].json.former
			? { rowData: JSON.stringify({ lots: items[i].json.former }) }
			: { rowValues: { pairs: [{ key: 'lots', value: items[i].json.lots }] } }),
	},
	additionalFields: {
		commonData: { pairs: Object.entries(CONVOCATION).map(([key, value]) => ({ key, value })) },
		recipientType: 'professional', ...additionalFields,
	},
	...extra,
});

test('send a batch: all input items are one batch, one request per run, common attachments from the first item', async () => {
	const pdf = await samplePdf();
	const reference = unique('N8N-AG');
	const items = coOwners(reference.toLowerCase(), 3);
	const binaries = [{ ordre: { data: pdf.toString('base64'), fileName: 'ordre-du-jour.pdf', mimeType: 'application/pdf' } }];
	const params = batchParams(items, { reference, sandboxOutcome: 'accepted' },
		{ attachmentsSource: 'binary', attachmentsBinaryProperties: 'ordre' });
	const { items: out, calls } = await run({ params, items, binaries, executionId: 'exec-batch' });
	assert.equal(calls.length, 1, 'one request for the whole run, not one per item');
	const [call] = calls;
	assert.equal(call.method, 'POST');
	assert.match(call.url, /\/v1\/batches$/);
	assert.equal(call.headers['Idempotency-Key'], 'n8n-exec-batch-a1b2c3d4-0000-4000-8000-000000000001-0');
	assert.deepEqual(call.body.rows.map((row) => row.email), items.map((item) => item.json.email));
	assert.equal(call.body.rows[1].company, 'SCI Lot 2');
	assert.equal(call.body.data.date_assemblee, inFortyDays);
	assert.deepEqual(call.body.attachments.map((a) => a.filename), ['ordre-du-jour.pdf']);
	assert.equal(out.length, 1);
	assert.deepEqual(out[0].pairedItem, [{ item: 0 }, { item: 1 }, { item: 2 }]);
	const batch = out[0].json;
	assert.match(batch.id, /^bat_/);
	assert.equal(batch.total, 3);
	assert.equal(batch.reference, reference);
	for (const key of OPERATIONS['batch:send'].sampleKeys) assert.ok(key in batch, `the output has "${key}"`);
	const done = await waitFor(async () => {
		const progress = (await api('GET', `/v1/batches/${batch.id}`)).data;
		return progress.counts.submitted === 3 ? progress : undefined;
	}, 'every letter of the batch submitted');
	assert.equal(done.documents.filter((d) => d.role === 'attachment')[0].sha256, sha256(pdf));
	const letters = (await api('GET', `/v1/batches/${batch.id}/letters`)).data.data;
	assert.deepEqual(letters.map((l) => l.recipient.email).sort(), items.map((item) => item.json.email).sort());
	// The same execution again (a retry): the same batch, nothing sent twice.
	const again = await run({ params, items, binaries, executionId: 'exec-batch' });
	assert.equal(again.items[0].json.id, batch.id);
});

test('send a batch: a row\'s template values reach its letter as the cell holds them; the former JSON field still works', async () => {
	const reference = unique('N8N-AG-CELLS');
	const items = coOwners(reference.toLowerCase(), 2);
	items[0].json.lots = AWKWARD_LOTS;
	items[1].json.former = ['Lot 7 : parking'];
	const { calls } = await run({ params: batchParams(items, { reference, sandboxOutcome: 'accepted' }), items });
	const [call] = calls;
	assert.equal(call.body.rows[0]['data.lots'], AWKWARD_LOTS);
	assert.equal(call.body.rows[1].data, JSON.stringify({ lots: ['Lot 7 : parking'] }));
	const batchId = (await api('GET', '/v1/batches?limit=100')).data.data.find((b) => b.reference === reference).id;
	await waitFor(async () => (await api('GET', `/v1/batches/${batchId}`)).data.counts.submitted === 2 || undefined,
		'both letters submitted');
	const letters = (await api('GET', `/v1/batches/${batchId}/letters`)).data.data;
	const text = async (index) => {
		const letter = letters.find((l) => l.recipient.email === items[index].json.email);
		return pdfText((await api('GET', `/v1/letters/${letter.letter_id}/document`)).data);
	};
	const first = await text(0);
	assert.ok(first.includes('Lot 12 : appartement "le Belvédère"; cave n° 3'), first);
	assert.ok(first.includes('Lot 112 : garage côté cour'), first);
	assert.ok((await text(1)).includes('Lot 7 : parking'));
});

test('send a batch: a bad row refuses the whole batch with the bridge message; continue on fail gives one error item', async () => {
	const reference = unique('N8N-AG-BAD');
	const items = coOwners(reference.toLowerCase(), 2);
	items[1].json.email = 'pas-une-adresse';
	const params = batchParams(items, { reference });
	await assert.rejects(run({ params, items }), (error) => {
		assert.equal(error.constructor.name, 'NodeApiError');
		assert.match(error.message, /1 problem\(s\) in the rows; nothing was stored\. First, row 2/);
		assert.match(error.description, /Field: rows · Code: invalid_rows · row 2, email: /);
		assert.equal(error.httpCode, '422');
		return true;
	});
	const tolerant = await run({ params, items, continueOnFail: true });
	assert.equal(tolerant.items.length, 1);
	assert.match(tolerant.items[0].json.error, /row 2/);
	assert.deepEqual(tolerant.items[0].pairedItem, [{ item: 0 }, { item: 1 }]);
	const stored = (await api('GET', '/v1/batches?limit=100')).data.data;
	assert.ok(!stored.some((b) => b.reference === reference), 'nothing stored');
});
