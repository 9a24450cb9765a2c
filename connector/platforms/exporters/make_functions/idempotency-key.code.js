function idempotencyKey(moduleName, parameters) {
    // The same module with the same inputs gives the same key, so a run Make retries (an
    // incomplete execution re-runs the failed module with the bundle it had) never sends twice.
    const stable = (value) => {
        if (value === undefined || value === null || value === '') return 'null';
        if (Buffer.isBuffer(value)) return JSON.stringify(value.toString('base64'));
        if (Array.isArray(value)) return '[' + value.map(stable).join(',') + ']';
        if (value instanceof Date) return JSON.stringify(value.toISOString());
        if (typeof value === 'object') {
            return '{' + Object.keys(value).sort()
                .filter((key) => key !== 'idempotency_key')
                .map((key) => JSON.stringify(key) + ':' + stable(value[key]))
                .join(',') + '}';
        }
        return JSON.stringify(value);
    };
    return 'make-' + moduleName + '-' + iml.sha256(stable(parameters || {}));
}
