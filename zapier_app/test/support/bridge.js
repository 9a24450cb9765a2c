'use strict';
// A real LRE Bridge on loopback for the tests (sandbox provider, lifecycle steps without delay),
// plus small loopback servers: one serving a PDF, one receiving webhook deliveries.

const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');

const REPO = path.resolve(__dirname, '../../..');
const STATE_VARIABLE = 'LRE_ZAPIER_TEST_BRIDGE';

const bridgeCommand = () => {
  const bin = process.env.LRE_BRIDGE_BIN || path.join(REPO, '.venv/bin/lre-bridge');
  if (!fs.existsSync(bin)) {
    throw new Error(`lre-bridge not found at ${bin}: install the bridge (README) or set LRE_BRIDGE_BIN.`);
  }
  return bin;
};

const freePort = () => new Promise((resolve, reject) => {
  const server = net.createServer();
  server.on('error', reject);
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    server.close(() => resolve(port));
  });
});

const waitFor = async (check, what, timeoutMs = 30000) => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

/** Start a bridge; returns {baseUrl, apiKey, pid, dataDir}. */
const startBridge = async () => {
  const bin = bridgeCommand();
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lre-zapier-'));
  const baseUrl = `http://127.0.0.1:${port}`;
  // Only these settings: an LRE_DATABASE_URL (or any other) from the caller's shell must not leak in.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('LRE_')));
  const env = {
    ...inherited,
    LRE_DATA_DIR: dataDir,
    LRE_ALLOW_PRIVATE_URLS: '1',
    LRE_SANDBOX_STEP_SECONDS: '0',
    LRE_PUBLIC_URL: baseUrl,
  };
  const output = execFileSync(bin, ['keys', 'create', '--account', 'Cabinet Zapier Test'], {
    cwd: dataDir, env, encoding: 'utf8',
  });
  const apiKey = output.trim().split('\n').pop().trim();
  const log = fs.openSync(path.join(dataDir, 'bridge.log'), 'a');
  const child = spawn(bin, ['serve', '--host', '127.0.0.1', '--port', String(port)], {
    cwd: dataDir, env, stdio: ['ignore', log, log],
  });
  child.unref();
  await waitFor(async () => (await httpRequest(`${baseUrl}/healthz`)).status === 200, `the bridge on ${baseUrl}`)
    .catch((error) => {
      child.kill();
      const tail = fs.readFileSync(path.join(dataDir, 'bridge.log'), 'utf8').split('\n').slice(-15).join('\n');
      throw new Error(`${error.message}; bridge log:\n${tail}`);
    });
  return { baseUrl, apiKey, pid: child.pid, dataDir };
};

// Jest's global setup shares the bridge with the test files through the environment.
const saveState = (state) => { process.env[STATE_VARIABLE] = JSON.stringify(state); };
const loadState = () => JSON.parse(process.env[STATE_VARIABLE]);
const clearState = () => { delete process.env[STATE_VARIABLE]; };

/**
 * A plain HTTP request on a fresh connection (node:http with the test agent, see no-keepalive.js;
 * the global fetch would reuse idle connections). Resolves {status, headers, content: Buffer}.
 */
const httpRequest = (url, { method = 'GET', headers = {}, body } = {}) => new Promise((resolve, reject) => {
  const length = body === undefined ? {} : { 'Content-Length': Buffer.byteLength(body) };
  const { hostname, port, pathname, search } = new URL(url);
  // One options argument: zapier-platform-core's http patch (installed by createAppTester) takes
  // only (options, callback).
  const options = { hostname, port, path: `${pathname}${search}`, method, headers: { ...headers, ...length } };
  const request = http.request(options, (response) => {
    const chunks = [];
    response.on('data', (chunk) => chunks.push(chunk));
    response.on('end', () => resolve({
      status: response.statusCode, headers: response.headers, content: Buffer.concat(chunks),
    }));
  });
  request.on('error', reject);
  request.end(body);
});

/** Call the bridge directly (not through Zapier), as a test's own eyes. */
const api = async (state, method, pathname, body) => {
  const response = await httpRequest(`${state.baseUrl}${pathname}`, {
    method,
    headers: { Authorization: `Bearer ${state.apiKey}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const isJson = (response.headers['content-type'] || '').includes('json');
  return { status: response.status, data: isJson ? JSON.parse(response.content) : response.content };
};

/** The text of a PDF, read by the bridge's own Python (pypdf, installed with its tests). */
const pdfText = (pdf) => {
  const python = process.env.LRE_BRIDGE_PYTHON || path.join(REPO, '.venv/bin/python');
  const script = 'import io, sys\nfrom pypdf import PdfReader\n'
    + 'print(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(sys.stdin.buffer.read())).pages))';
  return execFileSync(python, ['-c', script], { input: pdf, encoding: 'utf8' });
};

/** A loopback server; `handler(req, body)` returns [status, headers, body]; `requests` keeps every call. */
const startServer = async (handler) => {
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
  const url = `http://127.0.0.1:${server.address().port}`;
  return { url, requests, close: () => new Promise((resolve) => server.close(resolve)) };
};

module.exports = {
  api, clearState, httpRequest, loadState, pdfText, saveState, startBridge, startServer, waitFor,
};
