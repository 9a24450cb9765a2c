"""``lre-bridge``: run the bridge and its workers, migrate, manage accounts and API keys."""

from __future__ import annotations

import importlib
import logging
import signal
import subprocess
import sys
import threading
from typing import Any

import click
from sqlalchemy import func, select

from connector import migrate as migrations
from connector.config import ConfigError, generate_fernet_key, load_settings
from connector.services import Services, build_services

# Command groups contributed by other modules, registered explicitly (module, attribute).
EXTRA_COMMANDS: list[tuple[str, str]] = [
    ("connector.platforms.exporters.cli", "export"),
    ("connector.evidence.cli", "evidence_cli"),
    ("connector.batches.cli", "batch_cli"),
    ("connector.archive.cli", "archive_cli"),
]


def _services() -> Services:
    try:
        services = build_services(load_settings())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    context = click.get_current_context(silent=True)
    if context is not None:
        # The database's connections close when the command ends: a command run in-process (as the
        # tests run them) must not leave them to the garbage collector.
        context.call_on_close(services.db.dispose)
    return services


@click.group()
def main() -> None:
    """LRE Bridge: qualified electronic registered letters for Zapier, Make and n8n."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    services = _services()
    migrations.upgrade(services.db)
    click.echo(f"database is up to date ({_safe_url(services.db.url)})")


def _safe_url(url: str) -> str:
    """The database URL without its password (never print secrets)."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _ensure_demo_key(services: Services) -> str | None:
    """On a brand-new installation, create a first account and return its API key."""
    from connector.api.auth import create_api_key
    from connector.models import Account

    with services.db.transaction() as session:
        if session.scalar(select(func.count()).select_from(Account)):
            return None
        account = Account(name="Demo")
        session.add(account)
        session.flush()
        _, clear = create_api_key(session, account, name="first key")
        return clear


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--no-worker", is_flag=True, help="Do not run an outbox worker in this process.")
def serve(host: str, port: int, threads: int, no_worker: bool) -> None:
    """Run the HTTP API (gunicorn) with an outbox worker inside, unless told otherwise."""
    from gunicorn.app.base import BaseApplication

    from connector.app import create_app
    from connector.delivery.worker import start_in_process

    services = _services()
    migrations.upgrade(services.db)
    demo_key = _ensure_demo_key(services)
    run_worker = services.settings.worker_in_process and not no_worker

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", 1)
            # gthread, receiving each request head and small body before it takes a thread (slow
            # clients cannot hold the threads), and answering its own errors as JSON.
            self.cfg.set("worker_class", "connector.serving.GuardedThreadWorker")
            self.cfg.set("threads", threads)
            # Longer than clients' idle reuse (Node 19+ and Zapier keep sockets 5 s): otherwise a
            # request sent as gunicorn closes an idle connection fails with "socket hang up".
            self.cfg.set("keepalive", 75)
            self.cfg.set("accesslog", "-")
            # Never log query strings' secrets: only method, path and status.
            self.cfg.set("access_log_format", '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(L)ss')
            self.cfg.set("logger_class", "connector.api.accesslog.RedactingLogger")
            self.cfg.set("post_worker_init", lambda _worker: start_in_process(services) if run_worker else None)

        def load(self) -> Any:
            return create_app(services=services)

    click.echo(f"LRE Bridge on http://{host}:{port}  (database: {_safe_url(services.db.url)}, "
               f"worker: {'in-process' if run_worker else 'external'})")
    if demo_key:
        click.echo("A first account was created. Its API key (shown once, keep it):")
        click.echo(demo_key)
    Server().run()


@main.command()
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes to run (each with its own thread pools per job kind): one per core.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Multiplies each process's thread pools per job kind.")
@click.option("--no-migrate", is_flag=True, hidden=True,
              help="Do not upgrade the schema (the extra processes of --concurrency: their parent does).")
def worker(concurrency: int, threads: int, no_migrate: bool) -> None:
    """Run standalone outbox workers (any number of processes or machines on one PostgreSQL).

    ``--concurrency N`` runs N processes: Python runs one thread at a time per process, so threads
    alone (``--threads``) overlap waiting (provider and webhook calls) but never use a second core.
    The extra processes die with this one (even SIGKILLed) and stop when it is told to stop.
    """
    # Started first, so that they load the bridge while this process does (a worker that finds the
    # schema not upgraded yet logs it and polls again; the database refuses nothing half-done).
    children = [_spawn_worker_process(threads) for _ in range(concurrency - 1)]
    from connector.delivery.worker import POOL_SIZES, run_worker
    from connector.rendering import isolation

    # Letters are rendered in this process's render pool only (batch rows): as many render workers
    # as it has threads, not the API server's default.
    isolation.use_workers(POOL_SIZES["render"] * threads)
    services = _services()
    if not no_migrate:
        migrations.upgrade(services.db)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=run_worker, args=(services, stop), kwargs={"scale": threads}, daemon=True)
    thread.start()
    click.echo(f"worker running ({concurrency} process(es), pools x{threads}); Ctrl-C to stop", err=True)
    while thread.is_alive():
        thread.join(timeout=0.5)
    for child in children:
        child.wait()


def _die_with_parent() -> None:
    """In a worker child before exec: the kernel kills it when its parent dies (Linux)."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the child stops on its parent's signals only
        pass


def _spawn_worker_process(threads: int) -> subprocess.Popen[bytes]:
    # Spawned before this process starts any thread (preexec_fn is only safe then).
    return subprocess.Popen(
        [sys.executable, "-m", "connector.cli", "worker", "--concurrency", "1", "--threads", str(threads),
         "--no-migrate"],
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
    )


@main.group()
def keys() -> None:
    """API keys (stored hashed; shown once)."""


@keys.command("create")
@click.option("--account", "account_name", required=True, help="Account name (created if new).")
@click.option("--name", default="", help="A label for the key.")
def keys_create(account_name: str, name: str) -> None:
    """Create an API key; the key is printed alone on the last line."""
    from connector.api.auth import create_api_key
    from connector.models import Account

    services = _services()
    migrations.upgrade(services.db)
    with services.db.transaction() as session:
        account = session.scalar(select(Account).where(Account.name == account_name))
        if account is None:
            account = Account(name=account_name)
            session.add(account)
            session.flush()
            click.echo(f"created account {account.name} ({account.id})")
        row, clear = create_api_key(session, account, name=name)
        click.echo(f"created key {row.id} for account {account.name} ({account.id}); it is shown once:")
    click.echo(clear)


@keys.command("list")
@click.option("--account", "account_name", default=None)
def keys_list(account_name: str | None) -> None:
    """List keys (prefix only, never the key)."""
    from connector.models import Account, ApiKey

    services = _services()
    with services.db.transaction() as session:
        query = select(ApiKey, Account).join(Account, Account.id == ApiKey.account_id).order_by(ApiKey.created_at)
        if account_name:
            query = query.where(Account.name == account_name)
        for key, account in session.execute(query):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            click.echo(f"{key.id}  {key.prefix}…  {account.name}  {key.name or '-'}  {state}")


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (key_…)."""
    from connector.models import ApiKey, utcnow

    services = _services()
    with services.db.transaction() as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise click.ClickException(f"no key {key_id}")
        key.revoked_at = key.revoked_at or utcnow()
    click.echo(f"revoked {key_id}")


@main.group()
def secrets() -> None:
    """Encryption keys for credentials and webhook secrets."""


@secrets.command("generate")
def secrets_generate() -> None:
    """Print a new key for LRE_ENCRYPTION_KEYS (put it first to rotate: new,old)."""
    click.echo(generate_fernet_key())


@secrets.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every stored secret under the first key of LRE_ENCRYPTION_KEYS."""
    from connector.models import Account, Hook, Letter, ProviderSettings

    services = _services()
    count = 0
    with services.db.transaction() as session:
        for model, column in ((ProviderSettings, "settings_encrypted"), (Hook, "secrets_encrypted"),
                              (Account, "intake_secret_encrypted"), (Letter, "submit_context_encrypted")):
            for row in session.scalars(select(model).where(getattr(model, column).is_not(None))):
                setattr(row, column, services.encryptor.rotate(getattr(row, column)))
                count += 1
    click.echo(f"re-encrypted {count} secret(s); the old keys can now be removed")


@main.group()
def jobs() -> None:
    """The outbox: inspect and retry jobs."""


@jobs.command("list")
@click.option("--status", default="dead", show_default=True)
def jobs_list(status: str) -> None:
    from connector.models import Job

    services = _services()
    with services.db.transaction() as session:
        for job in session.scalars(select(Job).where(Job.status == status).order_by(Job.id)):
            click.echo(f"{job.id}  {job.kind}  {job.letter_id or '-'}  attempts={job.attempts}  {job.last_error or ''}")


@jobs.command("retry")
@click.argument("job_id", type=int)
def jobs_retry(job_id: int) -> None:
    """Put a dead job back in the queue."""
    from connector.letters.vocabulary import JobStatus
    from connector.models import Job, utcnow

    services = _services()
    with services.db.transaction() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise click.ClickException(f"no job {job_id}")
        job.status, job.attempts, job.run_at = JobStatus.PENDING, 0, utcnow()
    click.echo(f"job {job_id} queued again")


@jobs.command("run")
def jobs_run() -> None:
    """Run every due job now, then exit."""
    import connector.delivery.jobs  # noqa: F401
    from connector.delivery import outbox

    services = _services()
    click.echo(f"ran {outbox.drain(services)} job(s)")


for _module, _attr in EXTRA_COMMANDS:
    main.add_command(getattr(importlib.import_module(_module), _attr))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


@main.group()
def kpis() -> None:
    """The KPI rollups (kpi_daily, kpi_delay_daily) behind GET /v1/kpis."""


@kpis.command("rebuild")
@click.option("--account", "account_id", default=None, help="only this account's rollups")
def kpis_rebuild(account_id: str | None) -> None:
    """Recompute the rollups from the letters (after a bulk SQL import, which the flush hooks do not see)."""
    from connector.monitoring.rollups import rebuild

    services = _services()
    with services.db.engine.begin() as conn:
        counted = rebuild(conn, account_id)
    click.echo(f"rollups rebuilt from {counted} letter(s)")
