"""Peak memory of a 19 MB document going into the archive and back out, streamed, per backend.

Each measurement runs in a fresh child process (peak RSS is per process): import the bridge, open
the archive, ``put_stream`` a 19 MB file, then read it back through ``open`` in 1 MB pieces (the
read re-hashes it). Baseline = the same child only importing, opening the archive and asking it one
question (for S3: boto3 and a connection), so the difference is what the transfer itself adds.
The S3 backend talks to moto's S3 server (started here on loopback, in its own process, so its
memory is not counted).

Usage: .venv/bin/python benchmarks/archive_memory.py [--mb 19]
Prints peak RSS per backend, the transfer's own share, and S3/filesystem (target: S3 peak < 150 MB).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, os, resource, sys, tempfile
from pathlib import Path
from connector.config import load_settings
from connector.services import open_archive
settings = json.loads(sys.argv[1])
megabytes, transfer = int(sys.argv[2]), sys.argv[3] == "1"
store = open_archive(load_settings({"data_dir": Path(tempfile.mkdtemp()), **settings}))
store.exists("sha256:" + "0" * 64)  # the S3 client and its connection are part of the baseline
if transfer:
    source = Path(tempfile.mkdtemp()) / "big.pdf"
    with source.open("wb") as out:
        for _ in range(megabytes):
            out.write(os.urandom(1024 * 1024))
    with source.open("rb") as handle:
        key = store.put_stream(handle)
    size = 0
    with store.open(key) as reader:
        while chunk := reader.read(1024 * 1024):
            size += len(chunk)
    assert size == megabytes * 1024 * 1024
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def peak_mb(settings: dict[str, str], megabytes: int, transfer: bool) -> int:
    command = [sys.executable, "-c", CHILD, json.dumps(settings), str(megabytes), "1" if transfer else "0"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return int(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=19)
    args = parser.parse_args()
    from tests.s3_server import new_bucket, s3_settings, serve_s3

    with serve_s3() as endpoint:
        s3 = {name: str(value) for name, value in s3_settings(endpoint, new_bucket(endpoint)).items()}
        figures = {}
        for name, settings in (("filesystem", {}), ("s3", s3)):
            base = peak_mb(settings, args.mb, transfer=False)
            peak = peak_mb(settings, args.mb, transfer=True)
            figures[name] = (base, peak)
            print(f"{name:>10}: peak RSS {peak} MB with a {args.mb} MB document in and out "
                  f"(baseline {base} MB, transfer adds {peak - base} MB)")
    ratio = figures["s3"][1] / figures["filesystem"][1]
    print(f"s3/filesystem peak ratio: {ratio:.2f}; target S3 peak < 150 MB: "
          f"{'met' if figures['s3'][1] < 150 else 'NOT met'}")


if __name__ == "__main__":
    main()
