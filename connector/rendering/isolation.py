"""Letters are rendered in child processes whose address space is limited.

A template is untrusted code and the sandbox bounds what it may *call*, not how much memory the
values it builds take: ``'a'|center(300000000)``, ``"%0300000000d" % 1`` or a string doubled with
``~`` in a loop each allocate hundreds of megabytes in one step. Inside the API process that
memory is every account's. So the template runs, and the PDF is laid out, in a small pool of
long-lived worker processes (``_worker_main``), each with
``RLIMIT_AS`` set to what it had after its imports plus ``RENDER_MEMORY_BYTES``. An allocation
past the limit raises MemoryError in the worker (or kills it): either way the render is refused as
the template's fault and the API process is untouched. A worker that hangs past
``RENDER_WALL_SECONDS`` is killed and replaced.

Workers are started with exec (never forked from the threaded API process), carry none of the
bridge's ``LRE_`` settings, and answer with a JSON header and the PDF's raw bytes (the parent never
unpickles what a template-running process wrote).

Cost: a round trip through the pipes is about 1 ms; what made isolated renders slower than
in-process ones was everything around it. A worker therefore warms up before it takes work (one
throw-away PDF: xhtml2pdf's default CSS, ReportLab's font tables), freezes what its imports built
out of the garbage collector's reach (``gc.freeze``: a full collection then walks one letter's
objects, not the 300,000 of xhtml2pdf and ReportLab) and collects after it has answered, while
the API process hashes and stores the PDF. The pool starts all its workers at the first render and
replaces a retired one at once, so no render waits for a Python start-up. A worker is retired
when its address space has grown ``RETIRE_GROWTH_BYTES`` past its size when it started taking work
(fragmentation stays bounded under its fixed limit), after any render it failed with MemoryError,
and after ``RENDERS_PER_WORKER`` renders as a backstop.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import pickle
import re
import resource
import select
import struct
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO

from connector.rendering.errors import TemplateSourceError

# What a render may allocate above a worker's baseline. A letter takes a few megabytes; xhtml2pdf
# laying out the longest allowed letter stays well under 100 MB.
RENDER_MEMORY_BYTES = 256 * 1024 * 1024
# The template's own deadline is 5 s and xhtml2pdf's is 30 s; this is the backstop for C code
# that checks neither.
RENDER_WALL_SECONDS = 60.0
MAX_PDF_BYTES = 10 * 1024 * 1024
MAX_PDF_PAGES = 60
WORKERS = max(1, min(2, os.cpu_count() or 1))
# A long-lived process under a fixed RLIMIT_AS could see its heap fragment until honest letters hit
# the limit. So a worker whose address space has grown this much past its size when it started
# taking work is replaced; honest letters do not grow it (1,000 AG convocations in a row: RSS flat
# at 98 MB), and a replacement costs a Python start-up (about 1 s of CPU), so count alone retires
# a worker only rarely, as a backstop.
RETIRE_GROWTH_BYTES = 64 * 1024 * 1024
RENDERS_PER_WORKER = 5000
MEMORY_MESSAGE = "The template needs more memory than a letter may use (about {mb} MB)."
_FRAME = struct.Struct(">Q")
_WORKER_COMMAND = ("import sys; from connector.rendering.isolation import _worker_main; "
                   "_worker_main(int(sys.argv[1]), int(sys.argv[2]))")


def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _limit_memory(budget: int) -> None:
    """Cap this process's address space at its current size plus ``budget``."""
    limit = _address_space() + budget
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _count_pages(pdf: bytes) -> int:
    # ReportLab writes one uncompressed "/Type /Page" dictionary per page.
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def _render(spec: Any, values: dict[str, Any], letter_date: date, title: str, author: str,
            created_at: datetime) -> tuple[dict[str, Any], bytes]:
    """In the worker: HTML, then PDF, then the size bounds. Returns the reply header and the PDF."""
    from connector.rendering.pdf import html_to_pdf
    from connector.rendering.render import render_html

    try:
        html = render_html(spec, values, letter_date)
        pdf = html_to_pdf(html, title=title, author=author, created_at=created_at)
    except TemplateSourceError as exc:
        return {"error": exc.message, "line": exc.line, "field": exc.field}, b""
    except MemoryError:
        return {"error": MEMORY_MESSAGE.format(mb=RENDER_MEMORY_BYTES // 2**20)}, b""
    if len(pdf) > MAX_PDF_BYTES:
        return {"error": f"The letter's PDF is larger than {MAX_PDF_BYTES // 2**20} MB."}, b""
    pages = _count_pages(pdf)
    if pages > MAX_PDF_PAGES:
        return {"error": f"The letter has {pages} pages; a letter may have at most {MAX_PDF_PAGES}."}, b""
    return {"error": None}, pdf


def _warm_up() -> None:
    """One throw-away PDF, so the first letter does not pay for the caches xhtml2pdf fills lazily."""
    from connector.rendering.pdf import html_to_pdf

    html_to_pdf("<html><body><p>warm-up <b>é</b> <i>1 234,56 €</i></p></body></html>", title="warm-up",
                author="LRE Bridge", created_at=datetime(2026, 1, 1, tzinfo=UTC))


def _worker_main(budget: int, retire_growth: int) -> None:
    """The worker's loop: one pickled request in, one JSON header and PDF out, until stdin closes."""
    from connector.rendering.pdf import register_fonts
    from connector.rendering.render import render_html  # noqa: F401 - imported before the limit

    register_fonts()
    requests_in: BinaryIO = sys.stdin.buffer
    replies: BinaryIO = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the replies
    _warm_up()
    gc.collect()
    gc.freeze()  # what the imports and the warm-up built lives as long as the worker: never walk it again
    _limit_memory(budget)
    baseline = _address_space()
    cpu_mark = time.process_time()
    while True:
        header = requests_in.read(_FRAME.size)
        if len(header) < _FRAME.size:
            return
        args = pickle.loads(requests_in.read(_FRAME.unpack(header)[0]))
        try:
            meta, pdf = _render(*args)
        except MemoryError:
            meta, pdf = {"error": MEMORY_MESSAGE.format(mb=budget // 2**20)}, b""
        # A MemoryError can leave a library's state half-built: this worker takes no more work;
        # nor does one whose heap has grown (fragmentation, or what a template left behind).
        retire = (meta.get("error") == MEMORY_MESSAGE.format(mb=budget // 2**20)
                  or _address_space() - baseline > retire_growth)
        # CPU since the last answer: this render, the request's unpickling and the last collection.
        cpu_now = time.process_time()
        encoded = json.dumps({**meta, "retire": retire, "cpu": cpu_now - cpu_mark}).encode()
        cpu_mark = cpu_now
        replies.write(_FRAME.pack(len(encoded)) + encoded + _FRAME.pack(len(pdf)) + pdf)
        replies.flush()
        del args, meta, pdf
        if retire:
            return
        # The letter's garbage is collected now, while the API process stores the PDF, rather than
        # in the middle of the next render.
        gc.collect()


class _WorkerGone(Exception):
    """The worker died or did not answer in time."""


class _Worker:
    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        env = {k: v for k, v in os.environ.items() if not k.startswith("LRE_")}
        env["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [env.get("PYTHONPATH")])])
        self.renders = 0
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER_COMMAND, str(RENDER_MEMORY_BYTES), str(RETIRE_GROWTH_BYTES)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True,
        )

    def _read(self, size: int, deadline: float) -> bytes:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        chunks: list[bytes] = []
        while size:
            remaining = deadline - _now()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise _WorkerGone("timeout")
            chunk = os.read(fd, min(size, 1 << 20))
            if not chunk:
                raise _WorkerGone("exited")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def call(self, args: tuple[Any, ...], timeout: float) -> tuple[dict[str, Any], bytes]:
        assert self.process.stdin is not None
        payload = pickle.dumps(args)
        deadline = _now() + timeout
        try:
            self.process.stdin.write(_FRAME.pack(len(payload)) + payload)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise _WorkerGone("exited") from None
        meta = json.loads(self._read(_FRAME.unpack(self._read(_FRAME.size, deadline))[0], deadline))
        pdf = self._read(_FRAME.unpack(self._read(_FRAME.size, deadline))[0], deadline)
        return meta, pdf

    def kill(self) -> None:
        self.process.kill()
        self._close()

    def retire(self) -> None:
        """Let the worker finish (end of its input), off the request's path."""
        threading.Thread(target=self._stop, name="lre-render-retire", daemon=True).start()

    def _stop(self) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
        self._close()

    def _close(self) -> None:
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


def _now() -> float:
    return time.monotonic()


class _Pool:
    """At most ``size`` workers; a render waits for an idle one. Dead, hung, worn-out or failed
    workers are replaced, and the replacement is started at once so that it is warm when needed."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._started = False
        self._cpu = 0.0

    def _take(self) -> _Worker:
        with self._lock:
            if not self._started:
                # First render: start every worker now; the others warm up during this render.
                self._started = True
                self._idle.extend(_Worker() for _ in range(self._size))
            worker = self._idle.pop() if self._idle else None
        if worker is None or worker.process.poll() is not None:
            if worker is not None:
                worker.kill()
            worker = _Worker()
        return worker

    def run(self, args: tuple[Any, ...], timeout: float) -> tuple[dict[str, Any], bytes]:
        with self._slots:
            worker = self._take()
            try:
                meta, pdf = worker.call(args, timeout)
            except BaseException:
                worker.kill()
                with self._lock:
                    self._idle.append(_Worker())
                raise
            worker.renders += 1
            with self._lock:
                self._cpu += float(meta.pop("cpu", 0.0))
            if meta.pop("retire", False) or worker.renders >= RENDERS_PER_WORKER:
                worker.retire()
                worker = _Worker()
            with self._lock:
                self._idle.append(worker)
            return meta, pdf

    def cpu_seconds(self) -> float:
        with self._lock:
            return self._cpu

    def close(self) -> None:
        """Stop the idle workers (each finishes when its input ends) and wait for them."""
        with self._lock:
            workers, self._idle = self._idle, []
        for worker in workers:
            worker._stop()


_pool = _Pool(WORKERS)


def use_workers(size: int) -> None:
    """Keep ``size`` render workers in this process instead of ``WORKERS`` (only before its first render).

    An outbox worker process renders as many letters at once as its render pool has threads (one by
    default): more render workers would each cost a Python start-up (about 1 s of CPU, and again
    each time one is replaced) and their memory, for renders that never overlap.
    """
    global _pool
    with _pool._lock:
        if not _pool._started:  # a pool in use keeps its size (its workers are running)
            _pool = _Pool(max(1, size))


def _new_pool_after_fork() -> None:
    # A forked child (gunicorn's worker) must not share its parent's workers: their pipes are shared.
    global _pool
    _pool = _Pool(_pool._size)


os.register_at_fork(after_in_child=_new_pool_after_fork)
# At exit the workers are ended and reaped, not left to the garbage collector.
atexit.register(lambda: _pool.close())


def render_workers_cpu_seconds() -> float:
    """CPU time the render workers have spent on this process's renders so far (for benchmarks)."""
    return _pool.cpu_seconds()


def render_pdf_isolated(
    spec: Any, values: dict[str, Any], letter_date: date, *, title: str, author: str, created_at: datetime
) -> bytes:
    """The letter's PDF, rendered in a memory-limited worker process. Raises TemplateSourceError."""
    try:
        meta, pdf = _pool.run((spec, values, letter_date, title, author, created_at), RENDER_WALL_SECONDS)
    except _WorkerGone as exc:
        if str(exc) == "timeout":
            raise TemplateSourceError("The letter took longer to render than a letter may take.") from None
        # Killed: by the address-space limit inside C code, or by the kernel's OOM killer.
        raise TemplateSourceError(MEMORY_MESSAGE.format(mb=RENDER_MEMORY_BYTES // 2**20)) from None
    if meta.get("error"):
        raise TemplateSourceError(str(meta["error"]), meta.get("line"), field=meta.get("field") or "source")
    return pdf

