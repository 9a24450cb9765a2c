it('gives each row its template values as data.<key> columns, cells untouched', () => {
    const cell = 'Lot 12 : "le grand" appartement; cave\nÉté à Noël';
    const rows = rowList([
        { email: 'a@exemple.fr', values: [{ key: 'lots', value: cell }, { key: ' ', value: 'dropped' }] },
        { email: 'b@exemple.fr', data: '{"lots": ["Lot 3"]}' },
        { email: 'c@exemple.fr', values: [] },
    ]);
    assert.deepStrictEqual(rows, [
        { email: 'a@exemple.fr', 'data.lots': cell },
        { email: 'b@exemple.fr', data: '{"lots": ["Lot 3"]}' },
        { email: 'c@exemple.fr' },
    ]);
    assert.deepStrictEqual(rowList(undefined), []);
});
