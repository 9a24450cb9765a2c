function problemList(details) {
    // The rows a refused batch names (the bridge's error.details), after its message: Make shows one
    // error text, and a user fixing a spreadsheet needs every bad row, not only the first.
    // At most 20 are listed (the bridge lists up to 100); nothing for errors without details.
    if (!Array.isArray(details) || details.length === 0) return '';
    const shown = details.slice(0, 20).map((problem) => {
        const where = problem.row ? 'row ' + problem.row : 'rows';
        const column = problem.column ? ', ' + problem.column : '';
        return where + column + ': ' + problem.message;
    });
    const more = details.length > shown.length ? '; and ' + (details.length - shown.length) + ' more' : '';
    return ' — ' + shown.join('; ') + more;
}
