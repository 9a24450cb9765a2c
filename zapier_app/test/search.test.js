'use strict';

const { App, MISE_EN_DEMEURE, appError, appTester, authData } = require('./support/app');

const find = App.searches.find_letter.operation;

describe('find a letter', () => {
  let letter;
  beforeAll(async () => {
    letter = await appTester(App.creates.send_letter_from_template.operation.perform, {
      authData: authData(),
      inputData: { template: 'mise_en_demeure', ...MISE_EN_DEMEURE, recipient_type: 'professional',
        recipient_email: 'a@exemple.fr', recipient_company: 'A SARL', reference: 'FIND-1' },
    });
  });

  test('by its id', async () => {
    const found = await appTester(find.perform, { authData: authData(), inputData: { letter_id: letter.id } });
    expect(found.map((l) => l.id)).toEqual([letter.id]);
  });

  test('by your reference', async () => {
    const found = await appTester(find.perform, { authData: authData(), inputData: { reference: 'FIND-1' } });
    expect(found.map((l) => l.id)).toEqual([letter.id]);
  });

  test('nothing found is an empty result (so find-or-send sends), not an error', async () => {
    expect(await appTester(find.perform, { authData: authData(), inputData: { letter_id: 'let_unknown' } })).toEqual([]);
    expect(await appTester(find.perform, { authData: authData(), inputData: { reference: 'NOPE' } })).toEqual([]);
  });

  test('without an id or a reference it says what to give', async () => {
    const error = await appTester(find.perform, { authData: authData(), inputData: {} }).catch(appError);
    expect(error).toMatchObject({ code: 'missing_search_input', message: 'Give the letter ID or your reference.' });
  });
});
