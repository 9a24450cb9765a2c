it('gives the same key for the same inputs, another for other inputs', () => {
    const first = idempotencyKey('sendLetterFromTemplate', { template: 'mise_en_demeure', data: { a: '1', b: '2' } });
    const again = idempotencyKey('sendLetterFromTemplate', { data: { b: '2', a: '1' }, template: 'mise_en_demeure' });
    const other = idempotencyKey('sendLetterFromTemplate', { template: 'mise_en_demeure', data: { a: '1', b: '3' } });
    assert.strictEqual(first, again);
    assert.notStrictEqual(first, other);
    assert.ok(/^make-sendLetterFromTemplate-[0-9a-f]{64}$/.test(first));
});
