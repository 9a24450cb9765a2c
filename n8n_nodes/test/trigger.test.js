'use strict';
// The "LRE Bridge Trigger" node (built dist/): its webhook lifecycle against a real bridge's /v1/hooks,
// a real signed delivery from the bridge, and forged ones.

const test = require('node:test');
const assert = require('node:assert/strict');

const { LreBridgeTrigger } = require('../dist/nodes/LreBridgeTrigger/LreBridgeTrigger.node.js');
const { MISE_EN_DEMEURE, api, baseUrl, sign, startServer, triggerContext, waitFor, webhookRequest } = require('./support');

const trigger = new LreBridgeTrigger();
const hooks = trigger.webhookMethods.default;
const unique = (prefix) => `${prefix}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;

test('publish: checkExists finds nothing, create stores the hook id and secret; checkExists then holds', async () => {
	const webhookUrl = `http://127.0.0.1:9/webhook/${unique('wf')}/webhook`;
	const staticData = {};
	const params = { events: ['letter.refused', 'letter.accepted'], filters: { reference: 'DOSSIER-42' } };
	const context = triggerContext({ params, staticData, webhookUrl });
	assert.equal(await hooks.checkExists.call(context), false);
	assert.equal(await hooks.create.call(context), true);
	assert.match(staticData.hookId, /^hook_/);
	assert.match(staticData.secret, /^whsec_/);
	const listed = await api('GET', `/v1/hooks?target_url=${encodeURIComponent(webhookUrl)}`);
	assert.equal(listed.data.data.length, 1);
	assert.deepEqual(listed.data.data[0].events.slice().sort(), ['letter.accepted', 'letter.refused']);
	assert.deepEqual(listed.data.data[0].filters, { reference: 'DOSSIER-42' });
	assert.equal(await hooks.checkExists.call(context), true);

	// Other events chosen: the subscription no longer matches, and create updates the same hook.
	const changed = triggerContext({ params: { events: ['letter.bounced'] }, staticData, webhookUrl });
	assert.equal(await hooks.checkExists.call(changed), false);
	const { hookId, secret } = staticData;
	await hooks.create.call(changed);
	assert.equal(staticData.hookId, hookId);
	assert.equal(staticData.secret, secret, 'the secret we hold stays valid: no rotation needed');
	assert.equal(await hooks.checkExists.call(changed), true);

	// Static data lost (workflow copied): create finds the hook by URL and rotates to learn a secret.
	const fresh = {};
	const lost = triggerContext({ params: { events: ['letter.bounced'] }, staticData: fresh, webhookUrl });
	assert.equal(await hooks.checkExists.call(lost), false);
	await hooks.create.call(lost);
	assert.equal(fresh.hookId, hookId);
	assert.notEqual(fresh.secret, secret);

	assert.equal(await hooks.delete.call(lost), true);
	assert.deepEqual(fresh, {});
	const after = await api('GET', `/v1/hooks?target_url=${encodeURIComponent(webhookUrl)}`);
	assert.equal(after.data.data.length, 0);
	// Deleting again (already gone on the bridge) is fine.
	assert.equal(await hooks.delete.call(triggerContext({ staticData: { hookId }, webhookUrl })), true);
});

test('a real delivery from the bridge starts the workflow; forged, stale or unsigned ones answer 401', async () => {
	const deliveries = await startServer(() => [200, { 'Content-Type': 'application/json' }, '{}']);
	const staticData = {};
	const reference = unique('N8N-HOOK');
	const params = { events: ['letter.accepted'], filters: { reference }, includeProof: true, binaryPropertyName: 'proof' };
	try {
		await hooks.create.call(triggerContext({ params, staticData, webhookUrl: `${deliveries.url}/hook` }));
		const sent = await api('POST', '/v1/letters', {
			template: 'mise_en_demeure', data: MISE_EN_DEMEURE, reference, sandbox_outcome: 'accepted',
			recipient: { type: 'professional', email: 'compta@exemple.fr', company: 'Exemple SARL' },
		});
		assert.equal(sent.status, 201);
		const delivery = await waitFor(() => deliveries.requests.find((r) => r.body.includes('letter.accepted')), 'the delivery');
		const request = webhookRequest(delivery.body, delivery.headers);

		const context = triggerContext({ params, staticData, request });
		const result = await trigger.webhook.call(context);
		const [[item]] = result.workflowData;
		assert.equal(item.json.type, 'letter.accepted');
		assert.equal(item.json.letter_id, sent.data.id);
		assert.equal(item.json.status, 'accepted');
		assert.equal(item.json.reference, reference);
		assert.equal(item.json.proof_kind, 'acceptance');
		assert.equal(item.json.id, delivery.headers['webhook-id']);
		const proofs = await api('GET', `/v1/letters/${sent.data.id}/proofs`);
		const acceptance = proofs.data.data.find((p) => p.kind === 'acceptance');
		const bytes = Buffer.from(item.binary.proof.data, 'base64');
		assert.equal(require('node:crypto').createHash('sha256').update(bytes).digest('hex'), acceptance.sha256);

		const forged = async (headers, body = delivery.body) => {
			const ctx = triggerContext({ params, staticData, request: webhookRequest(body, { ...delivery.headers, ...headers }) });
			const answer = await trigger.webhook.call(ctx);
			return { answer, response: ctx.response };
		};
		const tampered = Buffer.from(delivery.body.toString().replace(reference, 'AUTRE'));
		for (const [what, attempt] of [
			['a changed body', forged({}, tampered)],
			['a signature by another secret', forged({ 'webhook-signature': sign('whsec_' + Buffer.alloc(32, 7).toString('base64'), delivery.headers['webhook-id'], delivery.headers['webhook-timestamp'], delivery.body) })],
			['no signature', forged({ 'webhook-signature': '' })],
			['a stale timestamp', forged({ 'webhook-timestamp': '1000000000', 'webhook-signature': sign(staticData.secret, delivery.headers['webhook-id'], '1000000000', delivery.body) })],
		]) {
			const { answer, response } = await attempt;
			assert.deepEqual(answer, { noWebhookResponse: true }, what);
			assert.equal(response.statusCode, 401, what);
			assert.match(response.body.error.message, /^Delivery refused/, what);
		}
		const noSecret = triggerContext({ params, staticData: {}, request });
		assert.deepEqual(await trigger.webhook.call(noSecret), { noWebhookResponse: true });
		assert.equal(noSecret.response.statusCode, 401);
	} finally {
		await hooks.delete.call(triggerContext({ staticData }));
		await deliveries.close();
	}
});

test('a consent answered on the bridge\'s page is an item with the event\'s id and the invitation\'s as invitation_id', async () => {
	const deliveries = await startServer(() => [200, { 'Content-Type': 'application/json' }, '{}']);
	const staticData = {};
	const params = { events: ['consent.accepted', 'consent.withdrawn'] };
	try {
		await hooks.create.call(triggerContext({ params, staticData, webhookUrl: `${deliveries.url}/hook` }));
		const email = `${unique('n8n-consent')}@exemple.fr`;
		const invitation = (await api('POST', '/v1/consents/invitations', { email, name: 'Claire Petit' })).data;
		const page = `${baseUrl}${new URL(invitation.url).pathname}`;
		const browser = { 'User-Agent': 'Mozilla/5.0 N8nTest/1.0' };
		const form = await (await fetch(page, { headers: browser })).text();
		const fields = Object.fromEntries([...form.matchAll(/<input type="hidden" name="([a-z_0-9]+)" value="([^"]*)">/g)]
			.map(([, name, value]) => [name, value.replace(/&amp;/g, '&')]));
		const answered = await fetch(page, {
			method: 'POST', headers: { ...browser, 'Content-Type': 'application/x-www-form-urlencoded' },
			body: new URLSearchParams({ ...fields, decision: 'accept' }).toString(),
		});
		assert.equal(answered.status, 200);
		assert.equal((await fetch(`${page}/withdraw`, { method: 'POST', headers: browser })).status, 200);
		await waitFor(() => deliveries.requests.length >= 2, 'the acceptance and withdrawal deliveries');
		const items = [];
		for (const delivery of deliveries.requests) {
			const result = await trigger.webhook.call(triggerContext({ params, staticData, request: webhookRequest(delivery.body, delivery.headers) }));
			const [[item]] = result.workflowData;
			assert.equal(item.json.id, delivery.headers['webhook-id']);
			items.push(item.json);
		}
		assert.deepEqual(items.map((item) => item.type).sort(), ['consent.accepted', 'consent.withdrawn']);
		for (const item of items) {
			assert.match(item.id, /^evt_/);
			assert.equal(item.invitation_id, invitation.id);
			assert.equal(item.email, email);
		}
		assert.notEqual(items[0].id, items[1].id);
	} finally {
		await hooks.delete.call(triggerContext({ staticData }));
		await deliveries.close();
	}
});
