'use strict';
// What each operation of the catalogue does. Labels, fields and samples come from
// generated/catalog.js; this file only holds behaviour, keyed by operation key.

const { bridge } = require('../generated/catalog');
const hydrators = require('./hydrators');
const {
  TEMPLATE_FIELD_PREFIX, buildRequest, call, idempotencyKey, templateData, toError,
} = require('./bridge');
const hooks = require('./hooks');

const spec = (key) => bridge.operations[key];

// A letter as the API shows it, plus the PDF as sent, as a file for the next step.
const withDocument = (z, letter) => {
  const [main] = letter.documents || [];
  const pointer = main && { letter_id: letter.id, filename: main.filename };
  return { ...letter, document_file: pointer ? z.dehydrateFile(hydrators.document, pointer) : null };
};

// Dynamic inputs: the fields of the template chosen in the `template` input.
const templateFields = async (z, bundle) => {
  const name = bundle.inputData.template;
  if (!name) return [];
  const response = await call(z, bundle, { path: `/v1/templates/${encodeURIComponent(name)}` });
  return (response.data.fields || []).map((field) => {
    const input = {
      key: `${TEMPLATE_FIELD_PREFIX}${field.key}`,
      label: field.label || field.key,
      required: Boolean(field.required),
      type: bridge.templateFieldTypes[field.type] || 'string',
    };
    if (field.list) input.list = true;
    if (field.help_text) input.helpText = field.help_text;
    if (field.example !== undefined && field.example !== null && !field.list) {
      input.placeholder = String(field.example);
    }
    if (field.choices && field.choices.length) input.choices = field.choices;
    return input;
  });
};

// Line items (a batch's rows) whose children include the chosen template's own fields, keyed
// `<group>__tpl_<key>`: the user maps a sheet column to each, and every cell reaches the letter as
// it is (quotes, semicolons, new lines), never inside JSON. A list field takes one item per line or
// items separated by " | ", as in the bridge's CSV. None is required: the values common to every
// letter may give it. They go before the former JSON field, which stays for the Zaps that fill it.
const withTemplateChildren = (group) => async (z, bundle) => {
  const own = (await templateFields(z, bundle)).map((field) => {
    const child = { key: `${group.key}__${field.key}`, label: field.label, type: field.list ? 'text' : field.type };
    if (field.helpText) child.helpText = field.helpText;
    if (field.placeholder) child.placeholder = field.placeholder;
    return child;
  });
  const former = group.children.filter((child) => child.key === `${group.key}__data`);
  const rest = group.children.filter((child) => !former.includes(child));
  return [{ ...group, children: [...rest, ...own, ...former] }];
};

// A row's template fields (tpl_<key>, after the group prefix is off) as its data.<key> columns.
const rowColumns = (row) => Object.fromEntries(Object.entries(row).map(([key, value]) => [
  key.startsWith(TEMPLATE_FIELD_PREFIX) ? `data.${key.slice(TEMPLATE_FIELD_PREFIX.length)}` : key, value,
]));

const sendLetter = (key) => async (z, bundle) => {
  const request = buildRequest(spec(key), bundle.inputData);
  const headers = {
    'Idempotency-Key': request.header['Idempotency-Key'] || idempotencyKey(bundle, key, request.body),
  };
  const response = await call(z, bundle, { method: 'POST', path: '/v1/letters', body: request.body, headers });
  return withDocument(z, response.data);
};

// The preview is rendered here (so a bad field is reported at once) and again, byte for byte the
// same thanks to the fixed letter date, by the hydrator when a later step asks for the file.
const renderLetter = async (z, bundle) => {
  const template = bundle.inputData.template;
  const body = { data: templateData(bundle.inputData), letter_date: new Date().toISOString().slice(0, 10) };
  const response = await call(z, bundle, {
    method: 'POST', path: `/v1/templates/${encodeURIComponent(template)}/render`, body, raw: true,
  });
  const pdf = await response.buffer();
  return {
    template,
    template_version: Number(response.headers.get('x-template-version')) || null,
    filename: `${template}.pdf`,
    size: pdf.length,
    sha256: response.headers.get('x-content-sha256'),
    letter_date: body.letter_date,
    file: z.dehydrateFile(hydrators.renderedLetter, { template, ...body }),
  };
};

const findLetter = async (z, bundle) => {
  const { letter_id: letterId, reference } = bundle.inputData;
  if (letterId) {
    const response = await call(z, bundle, {
      path: `/v1/letters/${encodeURIComponent(letterId)}`, skipThrowForStatus: true,
    });
    if (response.status === 404) return [];
    if (response.status >= 400) throw toError(z, response.status, response.data);
    return [withDocument(z, response.data)];
  }
  if (!reference) {
    throw new z.errors.Error('Give the letter ID or your reference.', 'missing_search_input', 400);
  }
  const response = await call(z, bundle, { path: '/v1/letters', params: { reference, limit: 1 } });
  return response.data.data.map((letter) => withDocument(z, letter));
};

const listTemplates = async (z, bundle) => {
  const response = await call(z, bundle, { path: '/v1/templates' });
  return response.data.data.map((t) => ({ ...t, id: t.name, name: t.title || t.name }));
};

const isBlankUrl = (value) => value === undefined || value === null || String(value).trim() === '';

// A batch: the line items are the rows as they are (their keys are the bridge's column names);
// the attachments come as file URLs, which the bridge downloads once for every letter.
// Line-item keys arrive prefixed with their group's (`rows__email`: Zapier wants every key of an
// action unique); the bridge's columns are the bare names.
const unprefixed = (row, group) => Object.fromEntries(
  Object.entries(row || {}).map(([key, value]) => [key.startsWith(`${group}__`) ? key.slice(group.length + 2) : key, value]),
);

const sendBatch = async (z, bundle) => {
  const inputData = { ...bundle.inputData, rows: [].concat(bundle.inputData.rows || []).map((row) => rowColumns(unprefixed(row, 'rows'))) };
  const request = buildRequest(spec('send_batch'), inputData);
  const attachments = [].concat(bundle.inputData.attachments || []).filter((url) => !isBlankUrl(url));
  if (attachments.length) {
    request.body.attachments = attachments.map((url, i) => ({ filename: `piece-jointe-${i + 1}.pdf`, url }));
  }
  const headers = {
    'Idempotency-Key': request.header['Idempotency-Key'] || idempotencyKey(bundle, 'send_batch', request.body),
  };
  const response = await call(z, bundle, { method: 'POST', path: '/v1/batches', body: request.body, headers });
  return response.data;
};

// A plain create: the catalogue says where the inputs go and which endpoint takes them; a retried
// Zap run reuses its idempotency key, so it never creates twice.
const createFromCatalogue = (key) => async (z, bundle) => {
  const operation = spec(key);
  const request = buildRequest(operation, bundle.inputData);
  const headers = {
    'Idempotency-Key': request.header['Idempotency-Key'] || idempotencyKey(bundle, key, request.body),
  };
  const response = await call(z, bundle, { method: operation.method, path: operation.path, body: request.body, headers });
  return response.data;
};

const PERFORMS = {
  send_letter_from_template: { perform: sendLetter('send_letter_from_template') },
  send_letter_with_pdf: { perform: sendLetter('send_letter_with_pdf') },
  render_letter: { perform: renderLetter },
  find_letter: { perform: findLetter },
  template_list: { perform: listTemplates },
  send_batch: { perform: sendBatch },
  invite_consent: { perform: createFromCatalogue('invite_consent') },
};

// The operation's behaviour: a fixed perform, or the REST hook set for status triggers.
const behaviour = (key) => PERFORMS[key] || hooks.hookTrigger(spec(key));

const DYNAMIC_INPUTS = { template_fields: templateFields };

module.exports = { DYNAMIC_INPUTS, behaviour, withTemplateChildren };
