it('gives the bridge its documents: bytes inline, else the URL, empty rows dropped', () => {
    const documents = documentList([
        { filename: 'ordre-du-jour.pdf', data: Buffer.from('%PDF-1.7') },
        { url: 'https://exemple.fr/comptes.pdf' },
        { filename: 'vide.pdf' },
    ]);
    assert.deepStrictEqual(documents, [
        { filename: 'ordre-du-jour.pdf', content_base64: Buffer.from('%PDF-1.7').toString('base64') },
        { filename: 'piece-jointe-2.pdf', url: 'https://exemple.fr/comptes.pdf' },
    ]);
    assert.deepStrictEqual(documentList(undefined), []);
});
