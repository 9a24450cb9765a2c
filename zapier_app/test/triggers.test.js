'use strict';

const { App, appTester, authData, bridge } = require('./support/app');
const { api, startServer, waitFor } = require('./support/bridge');

const statusChanged = App.triggers.letter_status_changed.operation;
const recipient = { type: 'professional', email: 'litiges@exemple.fr', company: 'Exemple SARL' };

// A delivery as Zapier hands it to perform: headers Camel-Cased, "Http-" before all but the content ones.
const asZapierRequest = (delivery) => {
  const camel = (name) => name.split('-').map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('-');
  const headers = Object.fromEntries(Object.entries(delivery.headers).map(([name, value]) => [
    /^content-(type|length)$/.test(name) ? camel(name) : `Http-${camel(name)}`, value,
  ]));
  const content = delivery.body.toString('utf8');
  return { rawRequest: { method: 'POST', headers, content }, cleanedRequest: JSON.parse(content) };
};

const sendLetter = async (reference, outcome) => (await api(bridge(), 'POST', '/v1/letters', {
  recipient, reference, sandbox_outcome: outcome, template: 'mise_en_demeure', data: {
    expediteur_nom: 'SARL Dupont', expediteur_adresse: '12 rue des Lilas\n69003 Lyon', destinataire_nom: 'Exemple SARL',
    destinataire_adresse: '5 avenue Jean-Jaurès\n75019 Paris', lieu: 'Lyon', numero_facture: 'F-1',
    montant_du: '10.00', date_echeance: '2026-10-15', date_limite: '2026-12-11',
  },
})).data;

describe('letter status changed (REST hook)', () => {
  let receiver;
  beforeAll(async () => { receiver = await startServer(() => [200, { 'Content-Type': 'text/plain' }, 'ok']); });
  afterAll(() => receiver.close());

  test('subscribe, receive a signed delivery, perform it, unsubscribe', async () => {
    const subscribeData = await appTester(statusChanged.performSubscribe, {
      authData: authData(), targetUrl: `${receiver.url}/zap/1`,
      inputData: { statuses: ['refused'], reference: 'HOOK-1' },
    });
    expect(subscribeData).toEqual({ id: expect.stringMatching(/^hook_/), secret: expect.stringMatching(/^whsec_/) });
    const hook = (await api(bridge(), 'GET', `/v1/hooks/${subscribeData.id}`)).data;
    expect(hook).toMatchObject({ events: ['letter.refused'], filters: { reference: 'HOOK-1' } });

    await sendLetter('OTHER-REF', 'refused');
    const letter = await sendLetter('HOOK-1', 'refused');
    const delivery = await waitFor(async () => receiver.requests.find((r) => r.url === '/zap/1'), 'the delivery');

    const [item] = await appTester(statusChanged.perform, {
      authData: authData(), subscribeData, ...asZapierRequest(delivery),
    });
    expect(item).toMatchObject({
      id: delivery.headers['webhook-id'], type: 'letter.refused', status: 'refused', letter_id: letter.id,
      reference: 'HOOK-1', recipient: { email: 'litiges@exemple.fr' }, proof_kind: 'refusal',
    });
    expect(item.id).toMatch(/^evt_/);
    expect(item.proof_file).toMatch(/^hydrate\|\|\|.*"method":"hydrators\.proof".*\|\|\|hydrate$/);
    expect(receiver.requests.filter((r) => r.url === '/zap/1')).toHaveLength(1); // the filter held

    await appTester(statusChanged.performUnsubscribe, { authData: authData(), subscribeData });
    expect((await api(bridge(), 'GET', `/v1/hooks/${subscribeData.id}`)).status).toBe(404);
  });

  test('a delivery that is not signed by the bridge is refused', async () => {
    const subscribeData = await appTester(statusChanged.performSubscribe, {
      authData: authData(), targetUrl: `${receiver.url}/zap/2`, inputData: { reference: 'HOOK-2' },
    });
    await sendLetter('HOOK-2', 'accepted');
    const delivery = await waitFor(async () => receiver.requests.find((r) => r.url === '/zap/2'), 'the delivery');
    const forged = asZapierRequest(delivery);
    forged.rawRequest.content = forged.rawRequest.content.replace('HOOK-2', 'HOOK-X');
    await expect(appTester(statusChanged.perform, { authData: authData(), subscribeData, ...forged }))
      .rejects.toMatchObject({ name: 'HaltedError', message: expect.stringMatching(/signature does not match/) });
    const unsigned = asZapierRequest({ ...delivery, headers: { 'content-type': 'application/json' } });
    await expect(appTester(statusChanged.perform, { authData: authData(), subscribeData, ...unsigned }))
      .rejects.toThrow(/not signed/);
    await appTester(statusChanged.performUnsubscribe, { authData: authData(), subscribeData });
  });

  test('subscribing again to the same URL still yields a signing secret', async () => {
    const bundle = { authData: authData(), targetUrl: `${receiver.url}/zap/3`, inputData: {} };
    const first = await appTester(statusChanged.performSubscribe, bundle);
    const again = await appTester(statusChanged.performSubscribe, bundle);
    expect(again.id).toBe(first.id);
    expect(again.secret).toMatch(/^whsec_/);
    await appTester(statusChanged.performUnsubscribe, { authData: authData(), subscribeData: again });
  });

  test('each outcome trigger subscribes to its own event', async () => {
    for (const outcome of ['accepted', 'refused', 'neglected', 'bounced']) {
      const subscribeData = await appTester(App.triggers[`letter_${outcome}`].operation.performSubscribe, {
        authData: authData(), targetUrl: `${receiver.url}/outcome/${outcome}`, inputData: {},
      });
      expect((await api(bridge(), 'GET', `/v1/hooks/${subscribeData.id}`)).data.events).toEqual([`letter.${outcome}`]);
      await appTester(App.triggers[`letter_${outcome}`].operation.performUnsubscribe, { authData: authData(), subscribeData });
    }
  });
});

describe('performList (samples and polling)', () => {
  test('ids are unique event ids, newest first, shaped like the hook items', async () => {
    const letter = await sendLetter('LIST-1', 'accepted');
    await waitFor(async () => (await api(bridge(), 'GET', `/v1/letters/${letter.id}`)).data.status === 'accepted',
      'the letter to be accepted');
    const items = await appTester(statusChanged.performList, { authData: authData(), inputData: {} });
    const ids = items.map((item) => item.id);
    expect(new Set(ids).size).toBe(ids.length);
    const feed = (await api(bridge(), 'GET', `/v1/events?limit=50&type=${encodeURIComponent(
      'letter.deposited,letter.accepted,letter.refused,letter.neglected,letter.bounced,letter.failed')}`)).data.data;
    expect(ids).toEqual(feed.map((event) => event.id));
    // Newest first as the bridge recorded them (the feed's order); two letters processed at once
    // may record their events in another order than their providers' times, one letter never does.
    for (const letterId of new Set(items.map((item) => item.letter_id))) {
      const times = items.filter((item) => item.letter_id === letterId).map((item) => item.occurred_at);
      expect([...times].sort().reverse()).toEqual(times);
    }
    const mine = items.filter((item) => item.letter_id === letter.id).map((item) => item.status);
    expect(mine).toEqual(['accepted', 'deposited']);
    expect(items.every((item) => item.type !== 'letter.queued')).toBe(true);
  });

  test('an outcome trigger lists only its outcome, filtered by reference', async () => {
    const items = await appTester(App.triggers.letter_accepted.operation.performList, {
      authData: authData(), inputData: { reference: 'LIST-1' }, meta: { isLoadingSample: true },
    });
    expect(items.map((item) => [item.type, item.reference])).toEqual([['letter.accepted', 'LIST-1']]);
  });
});
