'use strict';
// "Send a Batch": the rows come as Zapier line items, the common template values as key/value pairs.

const { App, appError, appTester, authData, bridge } = require('./support/app');
const { api, waitFor } = require('./support/bridge');

const sendBatch = App.creates.send_batch.operation;

const inFortyDays = new Date(Date.now() + 40 * 86400 * 1000).toISOString().slice(0, 10);
const COMMON = {
  expediteur_nom: 'Cabinet Durand, syndic',
  expediteur_adresse: '3 place Bellecour\n69002 Lyon',
  lieu: 'Lyon',
  adresse_immeuble: '18 rue Victor-Hugo, 69002 Lyon',
  date_assemblee: inFortyDays,
  heure_assemblee: '18 h 30',
  lieu_assemblee: 'Salle des fêtes, 2 rue d\'Enghien, 69002 Lyon',
  ordre_du_jour: 'Élection du président de séance\nApprobation des comptes',
};
// As Zapier gives line items: each key prefixed with its group's.
const row = (n) => Object.fromEntries(Object.entries({
  email: `zap-lot${n}@exemple.fr`, type: '', company: `SCI Lot ${n}`, first_name: '', last_name: '',
  reference: '', destinataire_nom: `SCI Lot ${n}`, destinataire_adresse: `${n} rue Victor-Hugo\n69002 Lyon`,
  data: JSON.stringify({ lots: [`Lot ${n} : appartement`] }),
}).map(([key, value]) => [`rows__${key}`, value]));

describe('send a batch', () => {
  test('the rows are line items', () => {
    const rows = sendBatch.inputFields.find((field) => field.key === 'rows');
    expect(rows.children.map((child) => child.key)).toEqual(expect.arrayContaining(['rows__email', 'rows__company', 'rows__data']));
    expect(rows.type).toBeUndefined();
  });

  test('one letter per line item is made and sent', async () => {
    const batch = await appTester(sendBatch.perform, {
      authData: authData(),
      inputData: { template: 'convocation_ag_copropriete', common_data: COMMON, rows: [row(1), row(2)],
        recipient_type: 'professional', reference: 'ZAP-AG', sandbox_outcome: 'accepted' },
    });
    expect(batch).toMatchObject({ object: 'batch', total: 2, reference: 'ZAP-AG' });
    await waitFor(async () => (await api(bridge(), 'GET', `/v1/batches/${batch.id}`)).data.counts.submitted === 2);
    const letters = await api(bridge(), 'GET', `/v1/batches/${batch.id}/letters`);
    expect(letters.data.data.map((r) => r.recipient.email)).toEqual(['zap-lot1@exemple.fr', 'zap-lot2@exemple.fr']);
  });

  test('a bad row stops the batch with every problem named', async () => {
    const bad = { ...row(3), rows__email: 'pas-une-adresse', rows__data: '{"lots": ' };
    const badEmail = { ...row(4), rows__email: 'encore-pas-une-adresse' };
    const error = await appTester(sendBatch.perform, {
      authData: authData(),
      inputData: { template: 'convocation_ag_copropriete', common_data: COMMON, rows: [bad, badEmail],
        recipient_type: 'professional' },
    }).catch((e) => e);
    expect(appError(error)).toMatchObject({ code: 'invalid_rows', status: 422 });
    // Every bad row is named after the bridge's message (the user fixes them all at once).
    expect(appError(error).message).toMatch(/\(field: rows\) — row 1, data: .*; row 2, email: /);
  });
});
