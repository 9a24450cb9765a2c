'use strict';
// Status triggers: a REST hook on /v1/hooks (Standard Webhooks signed deliveries), with
// /v1/events as performList, both giving the same item: the event plus the letter as it was then.

const crypto = require('crypto');

const { bridge } = require('../generated/catalog');
const hydrators = require('./hydrators');
const { buildRequest, call } = require('./bridge');

const MAX_AGE_SECONDS = 3600; // Zapier may queue a webhook before running perform
const MAX_FUTURE_SECONDS = 300;

// The trigger's event types, narrowed by the `statuses` input when it has one.
const eventTypes = (operation, inputData) => {
  const statuses = [].concat(inputData.statuses || []).filter(Boolean);
  return statuses.length ? statuses.map((status) => `letter.${status}`) : operation.events;
};

const toItem = (z, { id, type, occurredAt, letter }) => {
  const proofKind = bridge.proofKinds[type] || null;
  const hasProof = (letter.proofs || []).some((proof) => proof.kind === proofKind);
  return {
    id,
    type,
    occurred_at: occurredAt,
    letter_id: letter.id,
    status: type.replace(/^letter\./, ''),
    reference: letter.reference,
    recipient: letter.recipient,
    message: letter.message,
    metadata: letter.metadata,
    template: letter.template,
    documents: letter.documents,
    failure: letter.failure,
    letter_created_at: letter.created_at,
    deposited_at: letter.deposited_at,
    completed_at: letter.completed_at,
    proof_kind: proofKind,
    proof_file: hasProof
      ? z.dehydrateFile(hydrators.proof, { letter_id: letter.id, kind: proofKind })
      : null,
  };
};

// An account event (consent.accepted, alert.raised…): the event's id, type and time, its object's id
// under the object's name (invitation_id, alert_id…) and the object's other fields, as
// catalog.account_event_item gives it. The item's id must be the EVENT's: Zapier de-duplicates items
// by id, so an invitation accepted then withdrawn would otherwise trigger once.
const accountItem = ({ id, type, occurredAt, data }) => {
  const idKey = bridge.eventIdKeys[type] || `${type.split('.')[0]}_id`;
  const own = Object.fromEntries(Object.entries(data || {}).filter(
    ([key]) => !['id', 'type', 'occurred_at', idKey].includes(key),
  ));
  return { id, type, occurred_at: occurredAt, [idKey]: (data || {}).id, ...own };
};

// Any delivery: a letter event as toItem gives it, an account event as accountItem does.
const eventItem = (z, { id, type, occurredAt, data }) => (type.startsWith('letter.')
  ? toItem(z, { id, type, occurredAt, letter: data })
  : accountItem({ id, type, occurredAt, data }));

// Headers arrive as "Http-Webhook-Id" (Zapier prefixes and Camel-Cases them).
const header = (headers, name) => {
  const wanted = name.toLowerCase();
  const found = Object.entries(headers || {}).find(
    ([key]) => key.toLowerCase().replace(/^http-/, '') === wanted,
  );
  return found ? String(found[1]) : '';
};

/**
 * Check a Standard Webhooks signature over the raw body; return the parsed delivery.
 * Fails closed: no secret, no raw body, a bad or stale signature all refuse the delivery.
 */
const verifyDelivery = (z, bundle, nowSeconds = Math.floor(Date.now() / 1000)) => {
  const secret = bundle.subscribeData && bundle.subscribeData.secret;
  const raw = bundle.rawRequest || {};
  const id = header(raw.headers, 'webhook-id');
  const timestamp = header(raw.headers, 'webhook-timestamp');
  const signatures = header(raw.headers, 'webhook-signature');
  const refuse = (why) => new z.errors.HaltedError(`Delivery refused: ${why}.`);
  if (!secret) throw refuse('this Zap has no signing secret; turn it off and on again');
  if (!id || !/^\d+$/.test(timestamp) || !signatures || typeof raw.content !== 'string') {
    throw refuse('it is not signed by the LRE Bridge');
  }
  const age = nowSeconds - Number(timestamp);
  if (age > MAX_AGE_SECONDS || age < -MAX_FUTURE_SECONDS) throw refuse('its timestamp is out of range');
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = crypto.createHmac('sha256', key).update(`${id}.${timestamp}.${raw.content}`).digest();
  const matches = signatures.split(' ').some((entry) => {
    const [version, value] = entry.split(',');
    const given = Buffer.from(value || '', 'base64');
    return version === 'v1' && given.length === expected.length && crypto.timingSafeEqual(given, expected);
  });
  if (!matches) throw refuse('the signature does not match');
  return { id, delivery: JSON.parse(raw.content) };
};

const hookTrigger = (operation) => ({
  performSubscribe: async (z, bundle) => {
    const { body } = buildRequest(operation, bundle.inputData);
    const created = await call(z, bundle, {
      method: 'POST',
      path: '/v1/hooks',
      body: { target_url: bundle.targetUrl, events: eventTypes(operation, bundle.inputData), filters: body.filters || {} },
    });
    let { id, secret } = created.data;
    if (!secret) {
      // The bridge already had this target URL (a re-subscription): only a rotation shows a secret.
      const rotated = await call(z, bundle, {
        method: 'POST', path: `/v1/hooks/${id}/rotate`, body: { grace_period_seconds: 0 },
      });
      secret = rotated.data.secret;
    }
    return { id, secret };
  },

  performUnsubscribe: async (z, bundle) => {
    await call(z, bundle, { method: 'DELETE', path: `/v1/hooks/${bundle.subscribeData.id}` });
    return { id: bundle.subscribeData.id, deleted: true };
  },

  perform: async (z, bundle) => {
    const { id, delivery } = verifyDelivery(z, bundle);
    return [eventItem(z, { id, type: delivery.type, occurredAt: delivery.timestamp, data: delivery.data })];
  },

  performList: async (z, bundle) => {
    const params = {
      type: eventTypes(operation, bundle.inputData).join(','),
      limit: bundle.meta && bundle.meta.isLoadingSample ? 10 : 50,
    };
    const response = await call(z, bundle, { path: '/v1/events', params });
    const reference = bundle.inputData.reference;
    return response.data.data
      .filter((event) => !reference || (event.data && event.data.reference === reference))
      .map((event) => eventItem(z, { id: event.id, type: event.type, occurredAt: event.occurred_at, data: event.data }));
  },
});

module.exports = { accountItem, eventItem, hookTrigger, toItem, verifyDelivery };
