'use strict';
// Node >= 19 reuses idle connections by default, and `lre-bridge serve` (gunicorn) closes them after
// 2 s: a request sent just as the server closes fails with "socket hang up". The tests use fresh
// connections so they never race that; the bridge's keep-alive setting is tracked separately.
const http = require('http');

http.globalAgent = new http.Agent({ keepAlive: false });
