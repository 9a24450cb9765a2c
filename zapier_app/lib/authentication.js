'use strict';
// API key + bridge URL, tested with GET /v1/me; the connection is labelled with the account name.

const { app, bridge } = require('../generated/catalog');
const { call } = require('./bridge');

module.exports = {
  ...app.authentication,
  test: async (z, bundle) => (await call(z, bundle, { path: bridge.authTest.path })).data,
  // Rendered by Zapier with the test's result as bundle.inputData (also by `zapier-platform invoke auth label`).
  connectionLabel: `{{bundle.inputData.${bridge.authTest.labelField}}}`,
};
