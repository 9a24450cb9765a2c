"""``benchmarks/memory.py`` with the archive in S3-compatible storage: the same 19 MB PDF sent,
submitted and packaged, with every document and proof going to a bucket of moto's S3 server
(started here on loopback, in its own process: its memory is not the bridge's).

Usage: .venv/bin/python benchmarks/memory_s3.py [--megabytes 19]
Goal: peak < 150 MB in every bridge process, as with the filesystem archive.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import memory  # noqa: E402
from benchmarks.bridge import Bridge  # noqa: E402
from tests.s3_server import new_bucket, s3_settings, serve_s3  # noqa: E402


def main() -> None:
    with serve_s3() as endpoint:
        settings = s3_settings(endpoint, new_bucket(endpoint))
        storage = {f"LRE_{name.upper()}": str(value) for name, value in settings.items()}
        print(f"archive: {storage['LRE_STORAGE_URL']} on {endpoint} (moto, Object Lock on)")

        class S3Bridge(Bridge):
            def __init__(self, data_dir: Path, **kwargs: Any) -> None:
                env = {**storage, **(kwargs.pop("env", None) or {})}
                super().__init__(data_dir, env=env, **kwargs)

        memory.Bridge = S3Bridge  # type: ignore[misc] - the same benchmark, another archive
        memory.main()


if __name__ == "__main__":
    main()
