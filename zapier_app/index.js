'use strict';
// The Zapier app: the generated catalogue (generated/catalog.js) plus the behaviour in lib/.

const zapier = require('zapier-platform-core');

const { app, bridge } = require('./generated/catalog');
const authentication = require('./lib/authentication');
const hydrators = require('./lib/hydrators');
const { addApiKey, readableErrors } = require('./lib/bridge');
const { DYNAMIC_INPUTS, behaviour, withTemplateChildren } = require('./lib/operations');

const DYNAMIC_PREFIX = '$dynamic:';

const withBehaviour = (definitions) => Object.fromEntries(
  Object.entries(definitions).map(([key, definition]) => {
    const inputs = (bridge.operations[key] || {}).inputs || {};
    const inputFields = (definition.operation.inputFields || []).map((field) => {
      if (typeof field === 'string' && field.startsWith(DYNAMIC_PREFIX)) {
        return DYNAMIC_INPUTS[field.slice(DYNAMIC_PREFIX.length)];
      }
      // Line items that hold the chosen template's own fields: built when the template is chosen.
      return inputs[field.key] && inputs[field.key].templateChildren ? withTemplateChildren(field) : field;
    });
    return [key, { ...definition, operation: { ...definition.operation, inputFields, ...behaviour(key) } }];
  }),
);

module.exports = {
  version: require('./package.json').version,
  platformVersion: zapier.version,
  authentication,
  beforeRequest: [addApiKey],
  afterResponse: [readableErrors],
  hydrators,
  triggers: withBehaviour(app.triggers),
  creates: withBehaviour(app.creates),
  searches: withBehaviour(app.searches),
  searchOrCreates: app.searchOrCreates,
};
