'use strict';
// Fake n8n contexts for the built nodes (dist/), whose HTTP calls go to a real bridge on loopback.
// The bridge is started by the pytest suite (tests/test_n8n_package.py), which passes its URL and an
// API key in LRE_TEST_BRIDGE_URL and LRE_TEST_API_KEY. What the fake cannot prove — that n8n
// applies the credential the same way — the end-to-end tests with the real engine do.

const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const http = require('node:http');

const baseUrl = process.env.LRE_TEST_BRIDGE_URL;
const apiKey = process.env.LRE_TEST_API_KEY;
if (!baseUrl || !apiKey) {
	throw new Error('LRE_TEST_BRIDGE_URL and LRE_TEST_API_KEY must name a running bridge (pytest sets them)');
}

const MISE_EN_DEMEURE = {
	expediteur_nom: 'SARL Dupont Rénovation',
	expediteur_adresse: '12 rue des Lilas\n69003 Lyon',
	destinataire_nom: 'Exemple SARL',
	destinataire_adresse: '5 avenue Jean-Jaurès\n75019 Paris',
	lieu: 'Lyon',
	numero_facture: 'F-2026-0412',
	montant_du: '1250.50',
	date_echeance: '2026-10-15',
	date_limite: '2026-12-11',
};

/** The bridge, called directly as the test's own eyes. */
async function api(method, path, body) {
	const response = await fetch(`${baseUrl}${path}`, {
		method,
		headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	const type = response.headers.get('content-type') || '';
	const content = type.includes('json') ? await response.json() : Buffer.from(await response.arrayBuffer());
	return { status: response.status, headers: response.headers, data: content };
}

/** The text of a PDF, read by the test suite's Python (pypdf; pytest passes LRE_TEST_PYTHON). */
function pdfText(pdf) {
	const python = process.env.LRE_TEST_PYTHON || 'python3';
	const script = 'import io, sys\nfrom pypdf import PdfReader\n' +
		'print(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(sys.stdin.buffer.read())).pages))';
	return execFileSync(python, ['-c', script], { input: pdf, encoding: 'utf8' });
}

async function waitFor(check, what, timeoutMs = 20000) {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await check();
		if (value) return value;
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 150));
	}
}

/** n8n's httpRequestWithAuthentication, as far as these nodes use it, over fetch. */
function makeHttp(calls, credentials) {
	return async function httpRequestWithAuthentication(credentialName, options) {
		if (credentialName !== 'lreBridgeApi') throw new Error(`unexpected credential ${credentialName}`);
		const url = new URL(options.url);
		for (const [key, value] of Object.entries(options.qs || {})) {
			if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
		}
		const headers = { ...(options.headers || {}), Authorization: `Bearer ${credentials.apiKey}` };
		let body;
		if (options.body !== undefined) {
			body = JSON.stringify(options.body);
			headers['Content-Type'] = 'application/json';
		}
		calls.push({ method: options.method, url: url.toString(), headers, body: options.body });
		const response = await fetch(url, { method: options.method, headers, body });
		const raw = Buffer.from(await response.arrayBuffer());
		let content = raw;
		if (options.encoding !== 'arraybuffer') {
			const text = raw.toString('utf8');
			try {
				content = text ? JSON.parse(text) : '';
			} catch {
				content = text;
			}
		}
		if (response.status >= 400 && !options.ignoreHttpStatusErrors) {
			throw new Error(`HTTP ${response.status}`);
		}
		const responseHeaders = Object.fromEntries(response.headers.entries());
		return options.returnFullResponse
			? { statusCode: response.status, headers: responseHeaders, body: content }
			: content;
	};
}

function helpers(calls, credentials, binaries) {
	return {
		httpRequestWithAuthentication: makeHttp(calls, credentials),
		assertBinaryData(itemIndex, property) {
			const binary = (binaries[itemIndex] || {})[property];
			if (!binary) throw new Error(`This operation expects the node's input data to contain a binary file '${property}'`);
			return binary;
		},
		async getBinaryDataBuffer(itemIndex, property) {
			return Buffer.from(binaries[itemIndex][property].data, 'base64');
		},
		async prepareBinaryData(buffer, fileName, mimeType) {
			return { data: buffer.toString('base64'), fileName, mimeType, fileSize: String(buffer.length) };
		},
		returnJsonArray(data) {
			return [].concat(data).map((json) => ({ json }));
		},
	};
}

function parameterReader(params) {
	return (name, itemIndex, fallback, options) => {
		const values = typeof params === 'function' ? params(itemIndex) : params;
		let value = values[name];
		if (value === undefined) return fallback;
		if (options && options.extractValue && value && typeof value === 'object' && 'value' in value) {
			value = value.value;
		}
		return value;
	};
}

const NODE = { id: 'a1b2c3d4-0000-4000-8000-000000000001', name: 'LRE Bridge', type: 'n8n-nodes-lre-bridge.lreBridge', typeVersion: 1, position: [0, 0], parameters: {} };

/** IExecuteFunctions for `execute.call(context)`. */
function executeContext({ params, items = [{ json: {} }], binaries = [], executionId = `exec-${crypto.randomUUID()}`, continueOnFail = false, credentials = { baseUrl, apiKey } } = {}) {
	const calls = [];
	const context = {
		calls,
		getInputData: () => items,
		getNodeParameter: parameterReader(params),
		getCredentials: async () => credentials,
		getExecutionId: () => executionId,
		getNode: () => NODE,
		continueOnFail: () => continueOnFail,
		helpers: helpers(calls, credentials, binaries),
	};
	return context;
}

/** ILoadOptionsFunctions for listSearch / resourceMapping methods. */
function loadOptionsContext(params) {
	const calls = [];
	return {
		calls,
		// ILoadOptionsFunctions.getNodeParameter(name, fallback?, options?) has no item index.
		getNodeParameter: (name, fallback, options) => parameterReader(params)(name, 0, fallback, options),
		getCredentials: async () => ({ baseUrl, apiKey }),
		getNode: () => NODE,
		helpers: helpers(calls, { baseUrl, apiKey }, []),
	};
}

/** IHookFunctions / IWebhookFunctions of the trigger, sharing one static data object. */
function triggerContext({ params = {}, staticData = {}, webhookUrl, request } = {}) {
	const calls = [];
	const response = { statusCode: 200, body: undefined };
	return {
		calls,
		staticData,
		response,
		getNodeParameter: (name, fallback) => (params[name] === undefined ? fallback : params[name]),
		getNodeWebhookUrl: () => webhookUrl,
		getWorkflowStaticData: () => staticData,
		getCredentials: async () => ({ baseUrl, apiKey }),
		getNode: () => ({ ...NODE, name: 'LRE Bridge Trigger', type: 'n8n-nodes-lre-bridge.lreBridgeTrigger' }),
		getRequestObject: () => request,
		getResponseObject: () => ({
			status(code) {
				response.statusCode = code;
				return this;
			},
			json(body) {
				response.body = body;
				return this;
			},
		}),
		helpers: helpers(calls, { baseUrl, apiKey }, []),
	};
}

/** A request as n8n hands it to a webhook: raw body bytes and an express-like header(). */
function webhookRequest(rawBody, headers) {
	const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
	return { rawBody, body: JSON.parse(rawBody.toString('utf8')), headers: lower, header: (name) => lower[name.toLowerCase()] };
}

/** A Standard Webhooks signature of `rawBody` with a whsec_ secret. */
function sign(secret, id, timestamp, rawBody) {
	const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
	const digest = crypto.createHmac('sha256', key).update(`${id}.${timestamp}.`).update(rawBody).digest('base64');
	return `v1,${digest}`;
}

/** A loopback server; `handler(req, body)` returns [status, headers, body]; `requests` keeps every call. */
async function startServer(handler) {
	const requests = [];
	const server = http.createServer((req, res) => {
		const chunks = [];
		req.on('data', (c) => chunks.push(c));
		req.on('end', () => {
			const body = Buffer.concat(chunks);
			requests.push({ method: req.method, url: req.url, headers: req.headers, body });
			const [status, headers, payload] = handler(req, body);
			res.writeHead(status, headers);
			res.end(payload);
		});
	});
	await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
	return { url: `http://127.0.0.1:${server.address().port}`, requests, close: () => new Promise((r) => server.close(r)) };
}

const sha256 = (buffer) => crypto.createHash('sha256').update(buffer).digest('hex');

/** A real PDF: the bridge's own preview of the template. */
async function samplePdf() {
	const rendered = await api('POST', '/v1/templates/mise_en_demeure/render', { data: MISE_EN_DEMEURE });
	if (rendered.status !== 200) throw new Error(`render failed: ${rendered.status}`);
	return rendered.data;
}

module.exports = {
	MISE_EN_DEMEURE, api, baseUrl, apiKey, executeContext, loadOptionsContext, triggerContext, webhookRequest,
	pdfText, sign, startServer, sha256, samplePdf, waitFor,
};
