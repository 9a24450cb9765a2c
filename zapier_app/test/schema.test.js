'use strict';
// Zapier's own schemas: the app-level one and each action's (which also demands samples).

const zapier = require('zapier-platform-core');
const schema = require('zapier-platform-schema');

const { App } = require('./support/app');

const SCHEMAS = { triggers: 'TriggerSchema', creates: 'CreateSchema', searches: 'SearchSchema' };

const definition = async () => (await zapier.createAppHandler(App)({ command: 'definition', bundle: {} })).results;

describe('the app definition', () => {
  test('passes the app-level schema', async () => {
    expect(schema.validateAppDefinition(await definition()).errors.map((e) => e.stack)).toEqual([]);
  });

  test('passes the validation `zapier-platform validate` runs', async () => {
    const { results } = await zapier.createAppHandler(App)({ command: 'validate', bundle: {} });
    expect(results.map((e) => e.stack)).toEqual([]);
  });

  test.each(Object.entries(SCHEMAS))('every one of its %s passes %s', async (section, name) => {
    const Schema = require(`zapier-platform-schema/lib/schemas/${name}`);
    const actions = Object.values((await definition())[section]);
    expect(actions.length).toBeGreaterThan(0);
    for (const action of actions) {
      expect([action.key, Schema.validate(action).errors.map((e) => e.stack)]).toEqual([action.key, []]);
    }
  });

  test('every visible operation has a sample and labelled output fields', () => {
    for (const section of Object.keys(SCHEMAS)) {
      for (const action of Object.values(App[section])) {
        if (action.display.hidden) continue;
        expect(Object.keys(action.operation.sample).length).toBeGreaterThan(0);
        expect(action.operation.outputFields.every((f) => f.label)).toBe(true);
      }
    }
  });

  test('find a letter is offered as find-or-send', () => {
    expect(App.searchOrCreates.find_letter).toMatchObject({ search: 'find_letter', create: 'send_letter_from_template' });
  });
});
