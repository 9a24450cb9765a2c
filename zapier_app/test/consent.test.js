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
