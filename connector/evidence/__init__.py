"""Evidence and archive: the per-letter journal, the sealed evidence package and its verifier.

Nothing here trusts the database once a package is built: ``verify`` checks a package with only
its own bytes and the bridge's public key.
"""
