'use strict';

const crypto = require('crypto');

const { App, MISE_EN_DEMEURE, appError, appTester, authData, bridge } = require('./support/app');
const { api, pdfText, startServer } = require('./support/bridge');

const sendFromTemplate = App.creates.send_letter_from_template.operation;
const sendPdf = App.creates.send_letter_with_pdf.operation;
const render = App.creates.render_letter.operation;

const recipient = {
  recipient_type: 'professional',
  recipient_email: 'compta@exemple.fr',
  recipient_company: 'Exemple SARL',
};

describe('send a registered letter from a template', () => {
  test('the template dropdown lists the account templates', async () => {
    const templates = await appTester(App.triggers.template_list.operation.perform, {
      authData: authData(), meta: { isFillingDynamicDropdown: true },
    });
    expect(templates).toContainEqual(expect.objectContaining({ id: 'mise_en_demeure', name: 'Mise en demeure de payer' }));
  });

  test('the chosen template fields appear as inputs', async () => {
    const dynamic = sendFromTemplate.inputFields.find((field) => typeof field === 'function');
    const fields = await appTester(dynamic, { authData: authData(), inputData: { template: 'mise_en_demeure' } });
    expect(fields).toContainEqual(expect.objectContaining({
      key: 'tpl_montant_du', label: 'Montant dû (€)', required: true, type: 'string',
    }));
    expect(fields.find((f) => f.key === 'tpl_expediteur_adresse').type).toBe('text');
    expect(await appTester(dynamic, { authData: authData(), inputData: {} })).toEqual([]);
  });

  test('it sends the letter with the template data and recipient', async () => {
    const letter = await appTester(sendFromTemplate.perform, {
      authData: authData(),
      inputData: { template: 'mise_en_demeure', ...MISE_EN_DEMEURE, ...recipient, reference: 'TPL-1',
        message: 'Une lettre recommandée vous attend.', sandbox_outcome: 'accepted' },
    });
    expect(letter).toMatchObject({
      status: 'queued', reference: 'TPL-1', template: { name: 'mise_en_demeure' },
      recipient: { email: 'compta@exemple.fr', company: 'Exemple SARL', type: 'professional' },
    });
    const stored = await api(bridge(), 'GET', `/v1/letters/${letter.id}`);
    expect(stored.data.documents).toHaveLength(1);
  });

  test('every cell reaches the letter as it is, a list field\'s one item per line', async () => {
    // What a Google Sheets row maps: text cells holding quotes, semicolons, new lines and accents.
    const inForty = new Date(Date.now() + 40 * 86400 * 1000).toISOString().slice(0, 10);
    const letter = await appTester(sendFromTemplate.perform, {
      authData: authData(),
      inputData: { template: 'convocation_ag_copropriete', ...recipient, reference: 'TPL-CELLS',
        tpl_expediteur_nom: 'Cabinet "Durand & fils"', tpl_expediteur_adresse: '3 place Bellecour\n69002 Lyon',
        tpl_destinataire_nom: 'Mme Jeanne Martin', tpl_destinataire_adresse: '18 rue Victor-Hugo; apt 12\n69002 Lyon',
        tpl_lieu: 'Lyon', tpl_adresse_immeuble: '18 rue Victor-Hugo, 69002 Lyon', tpl_date_assemblee: inForty,
        tpl_heure_assemblee: '18 h 30', tpl_lieu_assemblee: 'Salle des fêtes',
        tpl_ordre_du_jour: ['Élection du président\nTravaux : « ravalement »; devis'],
        tpl_lots: 'Lot 12 : appartement "le Belvédère"; cave n° 3\nLot 112 : garage côté cour' },
    });
    const text = pdfText((await api(bridge(), 'GET', `/v1/letters/${letter.id}/document`)).data);
    for (const value of ['Cabinet "Durand & fils"', 'Lot 12 : appartement "le Belvédère"; cave n° 3',
      'Lot 112 : garage côté cour', 'Travaux : « ravalement »; devis']) {
      expect(text).toContain(value);
    }
  });

  test('the same Zap run twice sends one letter', async () => {
    const bundle = {
      authData: authData(),
      meta: { zap: { id: 'zap-42' } },
      inputData: { template: 'mise_en_demeure', ...MISE_EN_DEMEURE, ...recipient, reference: 'TWICE-1' },
    };
    const first = await appTester(sendFromTemplate.perform, bundle);
    const again = await appTester(sendFromTemplate.perform, bundle);
    expect(again.id).toBe(first.id);
    const listed = await api(bridge(), 'GET', '/v1/letters?reference=TWICE-1');
    expect(listed.data.data).toHaveLength(1);
  });

  test('a missing template field is a readable error naming the field', async () => {
    const { tpl_montant_du: _dropped, ...incomplete } = MISE_EN_DEMEURE;
    const attempt = appTester(sendFromTemplate.perform, {
      authData: authData(), inputData: { template: 'mise_en_demeure', ...incomplete, ...recipient },
    });
    await expect(attempt).rejects.toMatchObject({ name: 'AppError' });
    const error = await attempt.catch(appError);
    expect(error.status).toBe(422);
    expect(error.message).toMatch(/montant_du/);
    expect(error.message).not.toMatch(/Traceback|\n\s+at /);
  });
});

describe('send a registered letter with a PDF', () => {
  let pdf;
  let files;

  beforeAll(async () => {
    pdf = (await api(bridge(), 'POST', '/v1/templates/mise_en_demeure/render', {
      data: Object.fromEntries(Object.entries(MISE_EN_DEMEURE).map(([k, v]) => [k.slice(4), v])),
    })).data;
    files = await startServer(() => [200, { 'Content-Type': 'application/pdf' }, pdf]);
  });
  afterAll(() => files.close());

  test('the bridge fetches the PDF from the URL Zapier gives', async () => {
    const letter = await appTester(sendPdf.perform, {
      authData: authData(),
      inputData: { pdf: `${files.url}/facture.pdf`, ...recipient, reference: 'PDF-1' },
    });
    expect(letter.documents).toEqual([expect.objectContaining({
      filename: 'lettre.pdf', sha256: crypto.createHash('sha256').update(pdf).digest('hex'),
    })]);
    expect(files.requests.map((r) => r.url)).toContain('/facture.pdf');
  });

  test('an invalid recipient e-mail is a 422 shown as a readable error', async () => {
    const attempt = appTester(sendPdf.perform, {
      authData: authData(),
      inputData: { pdf: `${files.url}/facture.pdf`, ...recipient, recipient_email: 'not-an-address' },
    });
    const error = await attempt.catch(appError);
    expect(error).toMatchObject({ status: 422, code: 'invalid_request' });
    expect(error.message).toMatch(/\(field: recipient\.email\)$/);
  });
});

describe('render a letter (preview PDF)', () => {
  test('it returns the PDF as a file for the next step', async () => {
    const result = await appTester(render.perform, {
      authData: authData(), inputData: { template: 'mise_en_demeure', ...MISE_EN_DEMEURE },
    });
    expect(result).toMatchObject({ template: 'mise_en_demeure', filename: 'mise_en_demeure.pdf' });
    expect(result.size).toBeGreaterThan(1000);
    expect(result.file).toMatch(/^hydrate\|\|\|.*"method":"hydrators\.renderedLetter".*\|\|\|hydrate$/);
  });

  test('a missing field is reported at once, not by the next step', async () => {
    const attempt = appTester(render.perform, {
      authData: authData(), inputData: { template: 'mise_en_demeure', tpl_lieu: 'Lyon' },
    });
    const error = await attempt.catch(appError);
    expect(error.status).toBe(422);
  });
});
