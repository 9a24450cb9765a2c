'use strict';

const { App, appTester, authData, bridge } = require('./support/app');

describe('authentication', () => {
  test('it tests the connection with /v1/me and labels it with the account name', async () => {
    const me = await appTester(App.authentication.test, { authData: authData() });
    expect(me.name).toBe('Cabinet Zapier Test');
    expect(App.authentication.connectionLabel).toBe('{{bundle.inputData.name}}');
  });

  test('a bridge URL with a trailing slash works', async () => {
    const me = await appTester(App.authentication.test, {
      authData: { ...authData(), base_url: `${bridge().baseUrl}/` },
    });
    expect(me.id).toMatch(/^acc_/);
  });

  test('a refused key asks the user to reconnect, without a stack trace', async () => {
    const attempt = appTester(App.authentication.test, { authData: { ...authData(), api_key: 'lre_wrong' } });
    await expect(attempt).rejects.toMatchObject({ name: 'ExpiredAuthError' });
    await expect(attempt).rejects.toThrow(/Reconnect with a valid key/);
    await attempt.catch((error) => expect(error.message).not.toMatch(/\n\s+at /));
  });
});
