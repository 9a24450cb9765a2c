it('lists every bad row of a refused batch after the message, and nothing for other errors', () => {
    const text = problemList([
        { row: 2, column: 'email', message: 'not an e-mail address.' },
        { row: 3, column: null, message: 'duplicate recipient.' },
    ]);
    assert.strictEqual(text, ' — row 2, email: not an e-mail address.; row 3: duplicate recipient.');
    assert.strictEqual(problemList(undefined), '');
    assert.strictEqual(problemList([]), '');
    assert.strictEqual(problemList([{ field: 'recipient.email', message: 'not an e-mail address.' }]), '');
    const many = problemList(Array.from({ length: 25 }, (_, i) => ({ row: i + 1, column: 'email', message: 'x' })));
    assert.ok(many.endsWith('; and 5 more'));
});
