'use strict';

const { App, appError, appTester, authData, bridge } = require('./support/app');
const { api } = require('./support/bridge');

const invite = App.creates.invite_consent.operation;

describe('invite a recipient to consent', () => {
  test('it returns the single-use link for the next step to send', async () => {
    const invitation = await appTester(invite.perform, {
      authData: authData(),
      inputData: { email: 'jeanne.martin@exemple.fr', name: 'Jeanne Martin', message: 'Pour vos avis.', expires_in_days: 10 },
    });
    expect(invitation).toMatchObject({ status: 'pending', email: 'jeanne.martin@exemple.fr', language: 'fr', emailed: false });
    expect(invitation.url).toMatch(new RegExp(`/consent/${invitation.id}\\.[A-Za-z0-9_-]{43}$`));
    const days = (Date.parse(invitation.expires_at) - Date.parse(invitation.created_at)) / 86400000;
    expect(days).toBe(10);
    const stored = await api(bridge(), 'GET', `/v1/consents/invitations/${invitation.id}`);
    expect(stored.data.url).toBe(invitation.url);
  });

  test('the same Zap run twice makes one invitation', async () => {
    const bundle = {
      authData: authData(), meta: { zap: { id: 'zap-consent' } },
      inputData: { email: 'paul.durand@exemple.fr', name: 'Paul Durand' },
    };
    const first = await appTester(invite.perform, bundle);
    const again = await appTester(invite.perform, bundle);
    expect(again.id).toBe(first.id);
    const listed = await api(bridge(), 'GET', '/v1/consents/invitations?email=paul.durand@exemple.fr');
    expect(listed.data.data).toHaveLength(1);
  });

  test('an answer window outside 3 to 30 days is a readable error naming the field', async () => {
    const attempt = appTester(invite.perform, {
      authData: authData(), inputData: { email: 'a@exemple.fr', name: 'A', expires_in_days: 45 },
    });
    await expect(attempt).rejects.toMatchObject({ name: 'AppError' });
    const error = await attempt.catch(appError);
    expect(error).toMatchObject({ status: 422, code: 'invalid_request' });
    expect(error.message).toMatch(/\(field: expires_in_days\)$/);
  });
});

// "Consent answered" (REST hook): each event is its own item (Zapier de-duplicates by id), the
// invitation's id is invitation_id.
const consentAnswered = App.triggers.consent_answered.operation;
const { startServer, waitFor } = require('./support/bridge');

const asZapierRequest = (delivery) => {
  const camel = (name) => name.split('-').map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('-');
  const headers = Object.fromEntries(Object.entries(delivery.headers).map(([name, value]) => [
    /^content-(type|length)$/.test(name) ? camel(name) : `Http-${camel(name)}`, value,
  ]));
  const content = delivery.body.toString('utf8');
  return { rawRequest: { method: 'POST', headers, content }, cleanedRequest: JSON.parse(content) };
};

// The person answers on the bridge's hosted page, as a browser posts its form.
const onThePage = async (invitation, action) => {
  const page = `${bridge().baseUrl}${new URL(invitation.url).pathname}`;
  const browser = { 'User-Agent': 'Mozilla/5.0 ZapierTest/1.0' };
  if (action === 'withdraw') {
    const withdrawn = await fetch(`${page}/withdraw`, { method: 'POST', headers: browser });
    expect(withdrawn.status).toBe(200);
    return;
  }
  const form = await (await fetch(page, { headers: browser })).text();
  const fields = Object.fromEntries([...form.matchAll(/<input type="hidden" name="([a-z_0-9]+)" value="([^"]*)">/g)]
    .map(([, name, value]) => [name, value.replace(/&amp;/g, '&').replace(/&#x27;|&#39;/g, "'").replace(/&quot;/g, '"')]));
  const answered = await fetch(page, {
    method: 'POST', headers: { ...browser, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ ...fields, decision: 'accept' }).toString(),
  });
  expect(answered.status).toBe(200);
};

describe('consent answered (REST hook)', () => {
  let receiver;
  beforeAll(async () => { receiver = await startServer(() => [200, { 'Content-Type': 'text/plain' }, 'ok']); });
  afterAll(() => receiver.close());

  test('an acceptance and its later withdrawal are two items, each with its event id', async () => {
    const subscribeData = await appTester(consentAnswered.performSubscribe, {
      authData: authData(), targetUrl: `${receiver.url}/zap/consent`, inputData: {},
    });
    const hook = (await api(bridge(), 'GET', `/v1/hooks/${subscribeData.id}`)).data;
    expect(hook.events).toEqual(expect.arrayContaining(['consent.accepted', 'consent.withdrawn']));
    const invitation = await appTester(invite.perform, {
      authData: authData(), inputData: { email: 'claire.petit@exemple.fr', name: 'Claire Petit' },
    });
    const deliveries = () => receiver.requests.filter((r) => r.url === '/zap/consent');
    await onThePage(invitation, 'accept');
    await waitFor(async () => deliveries().length === 1, 'the acceptance delivery');
    await onThePage(invitation, 'withdraw');
    await waitFor(async () => deliveries().length === 2, 'the withdrawal delivery');

    const items = [];
    for (const delivery of deliveries()) {
      const [item] = await appTester(consentAnswered.perform, { authData: authData(), subscribeData, ...asZapierRequest(delivery) });
      expect(item.id).toBe(delivery.headers['webhook-id']);
      items.push(item);
    }
    expect(items.map((item) => item.type)).toEqual(['consent.accepted', 'consent.withdrawn']);
    for (const item of items) {
      expect(item.id).toMatch(/^evt_/);
      expect(item).toMatchObject({ invitation_id: invitation.id, email: 'claire.petit@exemple.fr' });
    }
    expect(items[0].id).not.toBe(items[1].id); // Zapier keeps both: their ids differ
    expect(items[0].consent_id).toBeTruthy();

    // performList (the sample and polling) gives the same items, newest first.
    const listed = await appTester(consentAnswered.performList, { authData: authData(), inputData: {} });
    const mine = listed.filter((item) => item.invitation_id === invitation.id);
    expect(mine.map((item) => item.id)).toEqual([items[1].id, items[0].id]);
    expect(mine[1]).toEqual(items[0]);

    await appTester(consentAnswered.performUnsubscribe, { authData: authData(), subscribeData });
  });
});
