'use strict';
const { saveState, startBridge } = require('./bridge');

module.exports = async () => {
  saveState(await startBridge());
};
