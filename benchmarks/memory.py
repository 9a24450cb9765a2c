"""Peak memory (RSS) of every bridge process while a 19 MB PDF is sent, submitted and its evidence
package downloaded, once by multipart, once as base64 JSON, once as base64 JSON through the signed
intake (Standard Webhooks, verified as read), then four sends at once.

The bridge runs as ``lre-bridge serve`` (embedded default: SQLite, in-process worker; see
``benchmarks/bridge.py``). Each process's peak comes from the kernel (``VmHWM`` in /proc), which
misses no short spike. The baseline, measured in the same run, is each process's resident size
once started and idle (after one small letter went through the whole path).

Usage: .venv/bin/python benchmarks/memory.py [--megabytes 19] [--steps multipart,base64,intake,4]
Goal: peak < 150 MB in every process.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from pypdf import PdfWriter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bridge import Bridge  # noqa: E402
from connector.lib import signing  # noqa: E402
from tests.helpers import letter_payload, make_pdf  # noqa: E402

LIMIT_MB = 150.0


def big_pdf(megabytes: float) -> bytes:
    """A valid one-page PDF of about ``megabytes`` MB (an incompressible attachment inside)."""
    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    writer.add_attachment("annexe.bin", os.urandom(int(megabytes * 1024 * 1024) - 4096))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def intake_secret(bridge: Bridge) -> tuple[str, str]:
    """The bridge account's signed intake URL and secret (created, or rotated, once per run)."""
    answer = requests.post(f"{bridge.url}/v1/account/intake-secret", headers=bridge.headers, timeout=60)
    answer.raise_for_status()
    account_id = answer.json()["intake_url"].rsplit("/", 1)[1]
    return f"{bridge.url}/v1/intake/{account_id}", answer.json()["secret"]


def one_letter(bridge: Bridge, pdf: bytes, how: str, reference: str,
               intake: tuple[str, str] | None = None) -> None:
    """Send, wait for the provider's acceptance, download the evidence package. ``how``: multipart,
    json, or intake (``intake`` = the URL and secret from ``intake_secret``)."""
    session = requests.Session()
    base = letter_payload(reference=reference)
    if how == "intake":
        assert intake is not None
        base["documents"] = [{"filename": "annexe.pdf", "content_base64": base64.b64encode(pdf).decode()}]
        body = json.dumps(base).encode()
        key = signing.decode_secret(intake[1])
        headers = {**signing.sign_headers([key], f"msg_{reference}", int(time.time()), body),
                   "Content-Type": "application/json"}
        response = session.post(intake[0], data=body, headers=headers, timeout=300)
    elif how == "multipart":
        form = {"recipient": (None, '{"type": "professional", "email": "compta@exemple.fr", '
                                    '"company": "Exemple SARL"}'),
                "message": (None, base["message"]), "reference": (None, reference)}
        response = session.post(f"{bridge.url}/v1/letters", headers=bridge.headers, timeout=300,
                                files={**form, "documents": ("annexe.pdf", pdf, "application/pdf")})
    else:
        base["documents"] = [{"filename": "annexe.pdf", "content_base64": base64.b64encode(pdf).decode()}]
        response = session.post(f"{bridge.url}/v1/letters", json=base, headers=bridge.headers, timeout=300)
    if response.status_code != 201:
        raise RuntimeError(f"{how}: {response.status_code} {response.text[:300]}")
    letter_id = response.json()["id"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = session.get(f"{bridge.url}/v1/letters/{letter_id}", headers=bridge.headers, timeout=60).json()
        if status["status"] == "accepted":
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"{how}: letter {letter_id} not accepted in time")
    with session.get(f"{bridge.url}/v1/letters/{letter_id}/evidence", headers=bridge.headers, timeout=300,
                     stream=True) as package:
        package.raise_for_status()
        for _chunk in package.iter_content(64 * 1024):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=19.0)
    parser.add_argument("--steps", default="multipart,base64,intake,4",
                        help="which steps, in order (one alone shows its own peak: VmHWM only grows)")
    args = parser.parse_args()
    wanted = args.steps.split(",")
    pdf = big_pdf(args.megabytes)
    with Bridge(Path(tempfile.mkdtemp(prefix="lre-memory-"))) as bridge:
        one_letter(bridge, make_pdf(), "json", "warm-up")
        pids = bridge.pids()
        idle = {pid: status_kb(pid, "VmRSS") / 1024 for pid in pids}
        intake = intake_secret(bridge)
        steps = [("multipart", lambda: one_letter(bridge, pdf, "multipart", "MEM-multipart")),
                 ("base64", lambda: one_letter(bridge, pdf, "json", "MEM-base64")),
                 ("intake", lambda: one_letter(bridge, pdf, "intake", "MEM-intake", intake))]

        def four_at_once() -> None:
            threads = [threading.Thread(target=one_letter, args=(bridge, pdf, how, f"MEM-4-{i}"))
                       for i, how in enumerate(("multipart", "json", "multipart", "json"))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        steps.append(("4", four_at_once))
        steps = [step for step in steps if step[0] in wanted]
        print(f"PDF: {len(pdf) / 1024 / 1024:.1f} MB; processes: {len(pids)} (serve's gunicorn master and worker)")
        worst = 0.0
        for name, step in steps:
            step()
            # VmHWM is the peak since the process started: a later step can only raise it.
            peaks = {pid: status_kb(pid, "VmHWM") / 1024 for pid in pids}
            worst = max(worst, *peaks.values())
            shown = ", ".join(f"pid {pid}: {peaks[pid]:.0f} MB (idle {idle[pid]:.0f}, x{peaks[pid] / idle[pid]:.2f})"
                              for pid in pids)
            print(f"after {name if name != '4' else '4 at once':10s} peak RSS so far: {shown}")
    print(f"worst peak: {worst:.0f} MB; goal < {LIMIT_MB:.0f} MB per process -> "
          f"{'met' if worst < LIMIT_MB else 'NOT met'}")


if __name__ == "__main__":
    main()
