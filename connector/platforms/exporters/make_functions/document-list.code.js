function documentList(files) {
    // Make's array of file collections ({filename, data (a buffer from a previous module), url}) as
    // the bridge's documents: the bytes inline (content_base64), else the URL the bridge downloads.
    // Rows left empty are dropped; a file without a name is called piece-jointe-<n>.pdf.
    return (files || [])
        .filter((file) => file && (file.data || file.url))
        .map((file, index) => {
            const filename = file.filename || 'piece-jointe-' + (index + 1) + '.pdf';
            if (file.data) {
                const bytes = Buffer.isBuffer(file.data) ? file.data : Buffer.from(String(file.data));
                return { filename: filename, content_base64: bytes.toString('base64') };
            }
            return { filename: filename, url: file.url };
        });
}
