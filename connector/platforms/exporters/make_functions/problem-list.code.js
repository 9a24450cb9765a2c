function problemList(details) {
    // The rows a refused batch names (the bridge's error.details), after its message: Make shows one
    // error text, and a user fixing a spreadsheet needs every bad row, not only the first.
    // At most 20 are listed (the bridge lists up to 100); nothing for errors without details.
    // Only row problems: other 422s give details too, already said by the message.
    const rows = (Array.isArray(details) ? details : []).filter((d) => d && typeof d === 'object' && 'row' in d);
    if (rows.length === 0) return '';
    const shown = rows.slice(0, 20).map((problem) => {
        const where = problem.row ? 'row ' + problem.row : 'rows';
        const column = problem.column ? ', ' + problem.column : '';
        return where + column + ': ' + problem.message;
    });
    const more = rows.length > shown.length ? '; and ' + (rows.length - shown.length) + ' more' : '';
    return ' — ' + shown.join('; ') + more;
}
