'use strict';
// Hydrators run later, in the step that uses the file; z.stashFile needs Zapier's deploy key, so
// they are tested with a fake z: real requests to the bridge, a stash that keeps what it is given.

const crypto = require('crypto');

const { App, MISE_EN_DEMEURE, appTester, authData, bridge } = require('./support/app');
const { api, httpRequest, waitFor } = require('./support/bridge');

const fakeZ = () => {
  const stashed = [];
  const z = {
    stashed,
    request: async (options) => {
      const response = await httpRequest(options.url, {
        method: options.method || 'GET',
        headers: { ...options.headers, Authorization: `Bearer ${bridge().apiKey}`, 'Content-Type': 'application/json' },
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
      return { ...response, request: options };
    },
    stashFile: async (response, length, filename, contentType) => {
      stashed.push({ status: (await response).status, content: (await response).content, filename, contentType });
      return `https://zapier-stash.example/${filename}`;
    },
  };
  return z;
};

const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');
const dehydrated = (pointer) => JSON.parse(pointer.split('|||')[1]);

test('the proof hydrator downloads the event proof with the user key', async () => {
  const letter = await appTester(App.creates.send_letter_from_template.operation.perform, {
    authData: authData(),
    inputData: { template: 'mise_en_demeure', ...MISE_EN_DEMEURE, recipient_type: 'professional',
      recipient_email: 'b@exemple.fr', recipient_company: 'B SARL', reference: 'PROOF-1', sandbox_outcome: 'accepted' },
  });
  const accepted = await waitFor(async () => {
    const current = (await api(bridge(), 'GET', `/v1/letters/${letter.id}`)).data;
    return current.status === 'accepted' && current;
  }, 'the letter to be accepted');
  const [item] = await appTester(App.triggers.letter_accepted.operation.performList, {
    authData: authData(), inputData: { reference: 'PROOF-1' },
  });
  const pointer = dehydrated(item.proof_file);
  expect(pointer).toMatchObject({ type: 'file', method: 'hydrators.proof', bundle: { letter_id: letter.id, kind: 'acceptance' } });

  const z = fakeZ();
  const url = await App.hydrators.proof(z, { authData: authData(), inputData: pointer.bundle });
  expect(url).toBe(`https://zapier-stash.example/acceptance-${letter.id}.pdf`);
  const [file] = z.stashed;
  expect(file).toMatchObject({ status: 200, contentType: 'application/pdf' });
  expect(file.content.subarray(0, 5).toString()).toBe('%PDF-');
  expect(sha256(file.content)).toBe(accepted.proofs.find((p) => p.kind === 'acceptance').sha256);
});

test('the preview hydrator renders the same PDF the action checked', async () => {
  const result = await appTester(App.creates.render_letter.operation.perform, {
    authData: authData(), inputData: { template: 'mise_en_demeure', ...MISE_EN_DEMEURE },
  });
  const z = fakeZ();
  await App.hydrators.renderedLetter(z, { authData: authData(), inputData: dehydrated(result.file).bundle });
  expect(z.stashed[0].filename).toBe('mise_en_demeure.pdf');
  expect(sha256(z.stashed[0].content)).toBe(result.sha256);
});

test('the document hydrator downloads the letter exactly as sent', async () => {
  const letter = await appTester(App.creates.send_letter_from_template.operation.perform, {
    authData: authData(),
    inputData: { template: 'mise_en_demeure', ...MISE_EN_DEMEURE, recipient_type: 'professional',
      recipient_email: 'c@exemple.fr', recipient_company: 'C SARL', reference: 'DOC-1' },
  });
  const pointer = dehydrated(letter.document_file);
  expect(pointer).toMatchObject({ method: 'hydrators.document', bundle: { letter_id: letter.id } });
  const z = fakeZ();
  await App.hydrators.document(z, { authData: authData(), inputData: pointer.bundle });
  expect(z.stashed[0].filename).toBe(letter.documents[0].filename);
  expect(sha256(z.stashed[0].content)).toBe(letter.documents[0].sha256);
});
