'use strict';
const fs = require('fs');
const { clearState, loadState } = require('./bridge');

module.exports = async () => {
  const state = loadState();
  try {
    process.kill(state.pid, 'SIGTERM');
  } catch (e) {
    // already gone
  }
  clearState();
  fs.rmSync(state.dataDir, { recursive: true, force: true });
};
