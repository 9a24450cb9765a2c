function rowList(rows) {
    // A batch's rows as Make gives them (an array of collections), each row's template values, an
    // array of {key, value}, as the row's data.<key> columns: the cell reaches the letter as it is
    // (quotes, semicolons, new lines), never inside JSON the user writes. The former `data` (one
    // JSON text) is passed on untouched for the scenarios that still fill it; empty keys are dropped.
    return (rows || []).map((row) => {
        const out = {};
        Object.keys(row || {}).forEach((key) => {
            if (key !== 'values') out[key] = row[key];
        });
        ((row && row.values) || []).forEach((pair) => {
            const key = pair && pair.key !== undefined && pair.key !== null ? String(pair.key).trim() : '';
            if (key) out['data.' + key] = pair.value;
        });
        return out;
    });
}
