'use strict';
// Files handed to the next step: fetched from the bridge (with the user's key) only when a later
// step actually uses them, then stored by Zapier (z.stashFile).

const { call } = require('./bridge');

const stashPdf = async (z, responsePromise, filename) => {
  const response = await responsePromise;
  return z.stashFile(response, undefined, filename, 'application/pdf');
};

const hydrators = {
  // The letter's main PDF exactly as sent: GET /v1/letters/<id>/document.
  document: (z, bundle) => {
    const { letter_id: letterId, filename } = bundle.inputData;
    const request = call(z, bundle, { path: `/v1/letters/${encodeURIComponent(letterId)}/document`, raw: true });
    return stashPdf(z, request, filename || `${letterId}.pdf`);
  },

  // The proof issued with an event: GET /v1/letters/<id>/proofs/<kind>.
  proof: (z, bundle) => {
    const { letter_id: letterId, kind } = bundle.inputData;
    const request = call(z, bundle, {
      path: `/v1/letters/${encodeURIComponent(letterId)}/proofs/${encodeURIComponent(kind)}`, raw: true,
    });
    return stashPdf(z, request, `${kind}-${letterId}.pdf`);
  },

  // A preview of a template with its data: POST /v1/templates/<name>/render.
  renderedLetter: (z, bundle) => {
    const { template, data, letter_date: letterDate } = bundle.inputData;
    const request = call(z, bundle, {
      method: 'POST', path: `/v1/templates/${encodeURIComponent(template)}/render`,
      body: { data, letter_date: letterDate }, raw: true,
    });
    return stashPdf(z, request, `${template}.pdf`);
  },
};

module.exports = hydrators;
