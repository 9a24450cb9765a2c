'use strict';
// Talking to the bridge: URLs, auth, readable errors, and request bodies built from the
// catalogue's field targets ("body.recipient.email", "query.reference", "header.Idempotency-Key").

const crypto = require('crypto');

const TEMPLATE_FIELD_PREFIX = 'tpl_';

const baseUrl = (bundle) => String(bundle.authData.base_url || '').trim().replace(/\/+$/, '');

const addApiKey = (request, z, bundle) => {
  if (bundle.authData && bundle.authData.api_key) {
    request.headers = { ...request.headers, Authorization: `Bearer ${bundle.authData.api_key}` };
  }
  return request;
};

// The bridge's {"error": {"code", "message", "field"}} as a Zapier error; never a stack trace.
const toError = (z, status, body, retryAfter) => {
  const error = (body && body.error) || {};
  const message = error.message || `The LRE Bridge answered HTTP ${status}.`;
  if (status === 401) {
    return new z.errors.ExpiredAuthError(`The LRE Bridge refused the API key (${message}) Reconnect with a valid key.`);
  }
  if (status === 429) {
    return new z.errors.ThrottledError(message, Number(retryAfter) || 60);
  }
  const field = error.field ? ` (field: ${error.field})` : '';
  // A refused batch lists its bad rows (error.details): all of them (up to 20) after the message.
  // (Only row problems: other 422s give details too, already said by the message.)
  const details = (Array.isArray(error.details) ? error.details : []).filter((d) => d && 'row' in d);
  const rows = details.slice(0, 20).map((d) => `${d.row ? `row ${d.row}` : 'rows'}${d.column ? `, ${d.column}` : ''}: ${d.message}`);
  if (details.length > rows.length) rows.push(`and ${details.length - rows.length} more`);
  const listed = rows.length ? ` — ${rows.join('; ')}` : '';
  return new z.errors.Error(`${message}${field}${listed}`, error.code || `http_${status}`, status);
};

const readableErrors = async (response, z) => {
  if (response.status < 400 || response.skipThrowForStatus) {
    return response;
  }
  let body = response.data;
  if (response.request && response.request.raw) {
    try {
      body = JSON.parse(await response.text());
    } catch (e) {
      body = undefined;
    }
  }
  throw toError(z, response.status, body, response.headers.get('retry-after'));
};

const call = (z, bundle, { method = 'GET', path, params, body, headers, raw, skipThrowForStatus }) =>
  z.request({
    method,
    url: `${baseUrl(bundle)}${path}`,
    params,
    body,
    headers: { Accept: raw ? 'application/pdf' : 'application/json', ...headers },
    raw,
    skipThrowForStatus,
  });

const isBlank = (value) => value === undefined || value === null || value === '' ||
  (Array.isArray(value) && value.length === 0);

const setPath = (target, parts, value) => {
  let node = target;
  parts.slice(0, -1).forEach((part, i) => {
    if (node[part] === undefined) node[part] = /^\d+$/.test(parts[i + 1]) ? [] : {};
    node = node[part];
  });
  node[parts[parts.length - 1]] = value;
};

// The chosen template's fields, entered as tpl_<key> inputs.
const templateData = (inputData) => {
  const data = {};
  for (const [key, value] of Object.entries(inputData)) {
    if (key.startsWith(TEMPLATE_FIELD_PREFIX) && !isBlank(value)) {
      data[key.slice(TEMPLATE_FIELD_PREFIX.length)] = value;
    }
  }
  return data;
};

// A default, or a value mapped from an earlier step, is text: a number or a yes/no field goes to
// the bridge as JSON (which refuses "7" where it expects 7). Text that is not a clean number is
// sent as it is, so the bridge's error names the field instead of the app guessing.
const typed = (spec, value) => {
  if (typeof value !== 'string') return value;
  const text = value.trim();
  if ((spec.type === 'integer' && /^-?\d+$/.test(text)) ||
      (spec.type === 'number' && /^-?\d+(\.\d+)?$/.test(text))) return Number(text);
  if (spec.type === 'boolean' && /^(true|false)$/i.test(text)) return text.toLowerCase() === 'true';
  return value;
};

// {body, query, path, header} from bundle.inputData and the operation's field targets.
const buildRequest = (operation, inputData) => {
  const request = { body: {}, query: {}, path: {}, header: {} };
  for (const [key, spec] of Object.entries(operation.inputs)) {
    let value = isBlank(inputData[key]) ? spec.default : inputData[key];
    if (spec.dynamic === 'template_fields') value = templateData(inputData);
    if (!spec.to || isBlank(value)) continue;
    if (spec.to.startsWith('body.')) value = typed(spec, value);
    const [location, ...parts] = spec.to.split('.');
    const path = location === 'header' ? [parts.join('.')] : parts;
    setPath(request[location], path, value);
  }
  return request;
};

const canonical = (value) => {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical(value[k])]));
  }
  return value;
};

// Zapier gives no run id, but a replayed or retried run has the same Zap and the same inputs:
// their hash is the Idempotency-Key, so the bridge answers a retry with the first letter.
const idempotencyKey = (bundle, operationKey, body) => {
  const zapId = (bundle.meta && bundle.meta.zap && bundle.meta.zap.id) || '';
  const digest = crypto.createHash('sha256')
    .update(JSON.stringify(canonical({ zapId, operationKey, body })))
    .digest('hex');
  return `zapier-${digest.slice(0, 48)}`;
};

module.exports = {
  TEMPLATE_FIELD_PREFIX,
  addApiKey,
  baseUrl,
  buildRequest,
  call,
  idempotencyKey,
  readableErrors,
  templateData,
  toError,
};
