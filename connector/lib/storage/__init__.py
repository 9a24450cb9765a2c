"""Archive storage for documents, proofs and evidence: content-addressed blobs behind one interface.

Two backends implement ``BlobStore``: ``FileSystemStore`` (the embedded default, under
``LRE_DATA_DIR/archive``) and ``S3Store`` (any S3-compatible object store: AWS, OVHcloud,
Scaleway, Cloudflare R2, MinIO, Ceph), chosen by ``LRE_STORAGE_URL``. Keys are ``sha256:<hex>``
of the bytes, so an object is written once and every read can prove it is still those bytes:
``get`` and ``open`` raise ``BlobCorrupted`` rather than hand out changed bytes. Blobs are
written before the database row that references them, so a crash leaves at worst an orphan blob,
never a row pointing at nothing.

On S3 with Object Lock, each object is written with a retention date (``retain_until``, else
``LRE_STORAGE_LOCK_DAYS`` from now) that the storage itself enforces: ``delete`` before that date
raises ``RetentionLocked``, whoever asks. A letter's documents and proofs are written with the
account's retention counted from the letter's creation (``retention.write_lock_until``), and raised
to the letter's exact retention end when it ends (the ``lock_retention`` job,
``connector.archive.jobs``).
"""

from connector.lib.storage.base import (
    CHUNK_BYTES,
    S3_PART_BYTES,
    BlobCorrupted,
    BlobStore,
    RetentionLocked,
    VerifyingReader,
    digest_of,
    key_for,
    parse_storage_url,
    submit_write,
)
from connector.lib.storage.filesystem import FileSystemStore
from connector.lib.storage.s3 import LOCK_MODES, S3Store

__all__ = [
    "CHUNK_BYTES", "LOCK_MODES", "S3_PART_BYTES", "BlobCorrupted", "BlobStore", "FileSystemStore",
    "RetentionLocked", "S3Store", "VerifyingReader", "digest_of", "key_for", "parse_storage_url",
    "submit_write",
]
