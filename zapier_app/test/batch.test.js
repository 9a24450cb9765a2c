'use strict';
// "Send a Batch": the rows come as Zapier line items, the common template values as key/value pairs.

const { App, appError, appTester, authData, bridge } = require('./support/app');
const { api, pdfText, waitFor } = require('./support/bridge');

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
// As Zapier gives line items: each key prefixed with its group's; the template's own fields are tpl_<key>.
const row = (n, extra = {}) => Object.fromEntries(Object.entries({
  email: `zap-lot${n}@exemple.fr`, type: '', company: `SCI Lot ${n}`, first_name: '', last_name: '',
  reference: '', destinataire_nom: `SCI Lot ${n}`, destinataire_adresse: `${n} rue Victor-Hugo\n69002 Lyon`,
  tpl_lots: `Lot ${n} : appartement`, ...extra,
}).map(([key, value]) => [`rows__${key}`, value]));
// A spreadsheet cell as a syndic types it: quotes, a semicolon, a new line (two lots) and accents.
const AWKWARD_LOTS = 'Lot 12 : appartement "le Belvédère"; cave n° 3\nLot 112 : garage côté cour';

// The rows field as the Zap editor shows it once the template is chosen (a dynamic field).
const rowsField = async (template) => {
  const dynamic = sendBatch.inputFields.find((field) => typeof field === 'function');
  const [rows] = await appTester(dynamic, { authData: authData(), inputData: { template } });
  return rows;
};

const letterText = async (batchId, email) => {
  const letters = (await api(bridge(), 'GET', `/v1/batches/${batchId}/letters`)).data.data;
  const { letter_id: letterId } = letters.find((r) => r.recipient.email === email);
  return pdfText((await api(bridge(), 'GET', `/v1/letters/${letterId}/document`)).data);
};

describe('send a batch', () => {
  test('the rows are line items whose children include the chosen template\'s own fields', async () => {
    const template = sendBatch.inputFields.find((field) => field.key === 'template');
    expect(template.altersDynamicFields).toBe(true);
    const rows = await rowsField('convocation_ag_copropriete');
    expect(rows.key).toBe('rows');
    expect(rows.type).toBeUndefined();
    const keys = rows.children.map((child) => child.key);
    expect(keys).toEqual(expect.arrayContaining(['rows__email', 'rows__company', 'rows__tpl_lots',
      'rows__tpl_date_assemblee', 'rows__data']));
    // The former JSON field comes last; no template field is required (the common values may give it).
    expect(keys[keys.length - 1]).toBe('rows__data');
    expect(rows.children.filter((child) => child.key.startsWith('rows__tpl_') && child.required)).toEqual([]);
    expect(rows.children.find((child) => child.key === 'rows__tpl_lots').type).toBe('text');
  });

  test('a cell reaches its letter as the sheet holds it, quotes and new lines included', async () => {
    const batch = await appTester(sendBatch.perform, {
      authData: authData(),
      inputData: { template: 'convocation_ag_copropriete', common_data: COMMON,
        rows: [row(5, { tpl_lots: AWKWARD_LOTS }), row(6, { tpl_lots: '', data: JSON.stringify({ lots: ['Lot 7 : parking'] }) })],
        recipient_type: 'professional', reference: 'ZAP-AG-CELLS', sandbox_outcome: 'accepted' },
    });
    await waitFor(async () => (await api(bridge(), 'GET', `/v1/batches/${batch.id}`)).data.counts.submitted === 2);
    const text = await letterText(batch.id, 'zap-lot5@exemple.fr');
    expect(text).toContain('Lot 12 : appartement "le Belvédère"; cave n° 3');
    expect(text).toContain('Lot 112 : garage côté cour');
    // The former JSON field still fills a row (Zaps made before the template's fields were offered).
    expect(await letterText(batch.id, 'zap-lot6@exemple.fr')).toContain('Lot 7 : parking');
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
    const bad = { ...row(3), rows__email: 'pas-une-adresse', rows__tpl_lots: '', rows__data: '{"lots": ' };
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
