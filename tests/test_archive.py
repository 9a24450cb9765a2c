"""The long-term archive: S3-compatible storage with Object Lock shared by several bridge machines,
damage caught by reads and by ``archive verify``, early deletes refused twice, ``archive migrate``
resumed after a crash, and evidence records whose renewed time-stamps verify offline."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask.testing import FlaskClient
from sqlalchemy import select

from connector.app import create_app
from connector.archive.models import ArchivedPackage
from connector.cli import main as lre_bridge
from connector.config import load_settings
from connector.delivery import outbox
from connector.evidence.timestamp import make_request, read_response
from connector.evidence.verify import read_package, verify_package
from connector.lib.storage import BlobCorrupted, RetentionLocked, S3Store
from connector.models import Document, Job, Letter, Proof
from connector.services import Services
from tests import s3_server, tsa_server
from tests.helpers import letter_payload, make_pdf
from tests.tsa_server import serve_tsa

ROOT = Path(__file__).resolve().parent.parent


def send(client: FlaskClient, auth: dict[str, str], services: Services, text: str = "Lettre de test",
         outcome: str = "accepted") -> dict[str, Any]:
    """A letter sent and driven to its final status by the worker (sandbox provider)."""
    pdf = make_pdf(text)
    payload = letter_payload(sandbox_outcome=outcome,
                             documents=[{"filename": "facture.pdf", "content_base64": base64.b64encode(pdf).decode()}])
    response = client.post("/v1/letters", json=payload, headers=auth)
    assert response.status_code == 201, response.json
    outbox.drain(services)
    return client.get(f"/v1/letters/{response.json['id']}", headers=auth).json


def env_of(settings: dict[str, Any]) -> dict[str, str]:
    """The settings as the ``LRE_*`` environment a command on the same machine would have."""
    env = {}
    for name, value in settings.items():
        if value is None:
            continue
        env[f"LRE_{name.upper()}"] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return env


def run_cli(args: list[str], settings: dict[str, Any]) -> tuple[int, str]:
    result = CliRunner().invoke(lre_bridge, args, env=env_of(settings))
    return result.exit_code, result.output


def new_account(services: Services) -> dict[str, str]:
    """An account with an API key, made through ``services``' database; the request headers."""
    from connector.api.auth import create_api_key
    from connector.models import Account

    with services.db.transaction() as session:
        account = Account(name="Cabinet Durand")
        session.add(account)
        session.flush()
        _, api_key = create_api_key(session, account, name="test")
    return {"Authorization": f"Bearer {api_key}"}


def keys_of(services: Services, letter_id: str) -> list[str]:
    with services.db.transaction() as session:
        documents = session.scalars(select(Document.storage_key).where(Document.letter_id == letter_id))
        proofs = session.scalars(select(Proof.storage_key).where(Proof.letter_id == letter_id))
        return [*documents, *proofs]


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    return s3_server.new_bucket(s3_endpoint)


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    return s3_server.client(s3_endpoint)


def _fs_path(services: Services, key: str) -> Path:
    digest = key[7:]
    return services.settings.data_dir / "archive" / digest[:2] / digest[2:4] / digest


# ---------------------------------------------------------------------------------------------
# Damage is caught, on the filesystem and on S3
# ---------------------------------------------------------------------------------------------


class TestDamage:
    @pytest.fixture(params=["filesystem", "s3"])
    def storage(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    def settings_overrides(self, settings_overrides, storage, request):
        if storage == "filesystem":
            return {key: value for key, value in settings_overrides.items() if not key.startswith("storage_")}
        endpoint = request.getfixturevalue("s3_endpoint")
        return {**settings_overrides, **s3_server.s3_settings(endpoint, s3_server.new_bucket(endpoint))}

    def _change(self, services: Services, key: str, content: bytes) -> None:
        blobs = services.blobs
        if isinstance(blobs, S3Store):
            # Someone with the bucket's keys writes over the object (a new version on top).
            s3_server.client(services.settings.storage_endpoint_url).put_object(
                Bucket=blobs.bucket, Key=blobs.object_name(key), Body=content, ChecksumAlgorithm="SHA256")
        else:
            path = _fs_path(services, key)
            path.chmod(0o640)
            path.write_bytes(content)

    def _remove(self, services: Services, key: str) -> None:
        blobs = services.blobs
        if isinstance(blobs, S3Store):
            s3_server.client(services.settings.storage_endpoint_url).delete_object(
                Bucket=blobs.bucket, Key=blobs.object_name(key))  # a delete marker: the object disappears
        else:
            _fs_path(services, key).unlink()

    def test_a_changed_object_is_refused_by_a_read_and_reported_by_archive_verify(
        self, client, auth, services, settings_overrides
    ):
        letter = send(client, auth, services)
        code, output = run_cli(["archive", "verify"], settings_overrides)
        assert code == 0, output
        assert "0 missing, 0 changed" in output
        document_key = next(k for k in keys_of(services, letter["id"]) if k[7:] == letter["documents"][0]["sha256"])

        self._change(services, document_key, b"%PDF-1.4 a forged invoice")
        read = client.get(f"/v1/letters/{letter['id']}/document", headers=auth)
        assert read.status_code == 500
        assert read.json["error"]["code"] == "archive_object_damaged"
        assert b"forged" not in read.data
        package = client.get(f"/v1/letters/{letter['id']}/evidence", headers=auth)
        assert package.json["error"]["code"] == "archive_object_damaged"

        code, output = run_cli(["archive", "verify"], settings_overrides)
        assert code == 1
        assert f"CHANGED  {document_key}" in output and "documents.storage_key" in output
        assert "0 missing, 1 changed" in output

    def test_streams_go_in_and_out_in_pieces_and_the_same_bytes_are_one_object(self, services):
        blobs = services.blobs
        content = os.urandom(9 * 1024 * 1024 + 17)  # above the 8 MB part size: a multipart upload on S3
        key = blobs.put_stream(io.BytesIO(content))
        assert key == blobs.key_for(content) and blobs.get(key) == content
        with blobs.open(key) as reader:
            assert reader.read(1000) == content[:1000]
            assert reader.read() == content[1000:]
        assert blobs.put(content) == key  # written once: the same bytes are the same object
        self._change(services, key, content[:-1])  # truncated in place
        with pytest.raises(BlobCorrupted), blobs.open(key) as reader:
            reader.read()

    def test_a_missing_object_is_reported_by_archive_verify(self, client, auth, services, settings_overrides):
        letter = send(client, auth, services, outcome="refused")
        proof_key = keys_of(services, letter["id"])[-1]
        self._remove(services, proof_key)
        code, output = run_cli(["archive", "verify"], settings_overrides)
        assert code == 1
        assert f"MISSING  {proof_key}  (referenced by proofs.storage_key)" in output
        assert "1 missing, 0 changed" in output


# ---------------------------------------------------------------------------------------------
# S3: retention the storage enforces; two machines on one archive
# ---------------------------------------------------------------------------------------------


class TestOnS3:
    @pytest.fixture
    def settings_overrides(self, settings_overrides, s3_endpoint, bucket):
        return {**settings_overrides, **s3_server.s3_settings(s3_endpoint, bucket)}

    def test_an_early_delete_is_refused_by_the_bridge_and_by_the_storage(
        self, client, auth, services, settings_overrides, s3, bucket
    ):
        letter = send(client, auth, services)
        refused = client.delete(f"/v1/letters/{letter['id']}", headers=auth)
        assert refused.status_code == 409
        assert refused.json["error"]["code"] == "retention_period_not_over"

        blobs = services.blobs
        assert isinstance(blobs, S3Store)
        keys = keys_of(services, letter["id"])
        # Written with the default lock, then raised to the letter's own retention end.
        for key in keys:
            assert blobs.retained_until(key) > datetime.now(UTC) + timedelta(days=3600)
        code, output = run_cli(["archive", "lock"], settings_overrides)
        assert code == 0, output
        with services.db.transaction() as session:
            retain_until = session.get(Letter, letter["id"]).retain_until
        for key in keys:
            assert blobs.retained_until(key) == retain_until.replace(microsecond=0) or \
                abs(blobs.retained_until(key) - retain_until) < timedelta(seconds=1)
        blobs.retain(keys[0], datetime.now(UTC) + timedelta(days=400))  # never shortened
        assert abs(blobs.retained_until(keys[0]) - retain_until) < timedelta(seconds=1)

        # The storage itself: deleting the object's version is refused, whoever asks.
        document_key = keys[0]
        name = blobs.object_name(document_key)
        version = s3.list_object_versions(Bucket=bucket, Prefix=name)["Versions"][0]["VersionId"]
        with pytest.raises(ClientError) as refused_by_storage:
            s3.delete_object(Bucket=bucket, Key=name, VersionId=version)
        assert refused_by_storage.value.response["Error"]["Code"] == "AccessDenied"
        with pytest.raises(RetentionLocked):
            blobs.delete(document_key)
        kept = s3.get_object(Bucket=bucket, Key=name, VersionId=version)["Body"].read()
        assert kept == make_pdf()

    def test_an_ended_letters_objects_are_locked_until_its_retention_end_without_archive_lock(
        self, client, auth, services
    ):
        """Documents are written locked for the account's retention from the letter's creation
        (not LRE_STORAGE_LOCK_DAYS); when the letter ends, the job committed with its final event
        raises every document and proof to the exact retention end. ``archive lock`` never runs."""
        assert client.put("/v1/account/retention", json={"retention_days": 400}, headers=auth).status_code == 200
        blobs = services.blobs
        assert isinstance(blobs, S3Store)
        payload = letter_payload(sandbox_outcome="accepted", documents=[
            {"filename": "facture.pdf", "content_base64": base64.b64encode(make_pdf("verrou")).decode()}])
        before = datetime.now(UTC)
        response = client.post("/v1/letters", json=payload, headers=auth)
        assert response.status_code == 201, response.json
        letter_id = response.json["id"]
        (document_key,) = keys_of(services, letter_id)
        written = blobs.retained_until(document_key)
        # The account's 400 days from the letter's creation: neither the 3650-day default nor less.
        assert before + timedelta(days=400) - timedelta(seconds=1) <= written
        assert written <= datetime.now(UTC) + timedelta(days=400) + timedelta(seconds=1)

        outbox.drain(services)
        with services.db.transaction() as session:
            letter = session.get(Letter, letter_id)
            assert letter.status == "accepted"
            retain_until = letter.retain_until.replace(tzinfo=UTC)
            completed_at = letter.completed_at.replace(tzinfo=UTC)
            lock_jobs = session.scalars(select(Job).where(Job.kind == "lock_retention",
                                                          Job.letter_id == letter_id)).all()
        assert retain_until == completed_at + timedelta(days=400)
        assert [job.status for job in lock_jobs] == ["done"]
        keys = keys_of(services, letter_id)
        assert len(keys) >= 3  # the document, the deposit proof and the acceptance proof
        for key in keys:
            assert abs(blobs.retained_until(key) - retain_until) < timedelta(seconds=1), key

    def test_the_lock_job_is_idempotent_and_never_shortens_a_lock(self, client, auth, services, s3, bucket):
        letter = send(client, auth, services)
        blobs = services.blobs
        assert isinstance(blobs, S3Store)
        keys = keys_of(services, letter["id"])
        locks = {key: blobs.retained_until(key) for key in keys}
        later = datetime.now(UTC) + timedelta(days=5000)
        blobs.retain(keys[0], later)  # someone locked one object longer (e.g. a litigation hold)

        with services.db.transaction() as session:  # the job again, as after a lost lease
            outbox.enqueue(session, "lock_retention", letter_id=letter["id"], dedupe_key=f"lock:{letter['id']}")
        assert outbox.drain(services) == 1
        assert abs(blobs.retained_until(keys[0]) - later) < timedelta(seconds=1)  # not shortened
        for key in keys[1:]:
            assert blobs.retained_until(key) == locks[key]
        for key in keys:  # no new object versions: only the retention of the one there changed
            versions = s3.list_object_versions(Bucket=bucket, Prefix=blobs.object_name(key))["Versions"]
            assert len(versions) == 1
        with services.db.transaction() as session:
            job = session.scalar(select(Job).where(Job.dedupe_key == f"lock:{letter['id']}"))
            assert job.status == "done"

    def test_the_lock_job_raises_the_letters_evidence_package_too(
        self, client, auth, services, settings_overrides, short_tsa
    ):
        letter = send(client, auth, services)
        code, output = run_cli(["archive", "renew"], {**settings_overrides, "tsa_url": short_tsa[0]})
        assert code == 0 and "1 package(s) archived" in output, output
        with services.db.transaction() as session:
            package_key = session.scalar(select(ArchivedPackage.storage_key)
                                         .where(ArchivedPackage.letter_id == letter["id"]))
            completed_at = session.get(Letter, letter["id"]).completed_at.replace(tzinfo=UTC)
        assert package_key is not None
        # The account keeps evidence longer from now on: this letter too (retention_ends_at).
        assert client.put("/v1/account/retention", json={"retention_days": 4000}, headers=auth).status_code == 200
        # The raise itself queued the account-wide job, which queued this letter's lock job again.
        assert outbox.drain(services) == 2
        blobs = services.blobs
        for key in [*keys_of(services, letter["id"]), package_key]:
            assert abs(blobs.retained_until(key) - (completed_at + timedelta(days=4000))) < timedelta(seconds=1), key

    def test_a_retention_raise_relocks_every_ended_letter_page_by_page(self, client, auth, services, monkeypatch):
        from connector.archive import jobs as archive_jobs

        monkeypatch.setattr(archive_jobs, "LETTERS_PER_RUN", 1)  # two letters: three pages (the last empty)
        letters = [send(client, auth, services, text=f"Lettre {n}") for n in (1, 2)]
        assert client.put("/v1/account/retention", json={"retention_days": 5000}, headers=auth).status_code == 200
        assert outbox.drain(services) == 3 + 2  # three account pages, a lock job per letter
        for letter in letters:
            with services.db.transaction() as session:
                completed_at = session.get(Letter, letter["id"]).completed_at.replace(tzinfo=UTC)
            for key in keys_of(services, letter["id"]):
                until = services.blobs.retained_until(key)
                assert abs(until - (completed_at + timedelta(days=5000))) < timedelta(seconds=1), key
        # Lowering it changes no lock and queues nothing (storage locks are never shortened).
        assert client.put("/v1/account/retention", json={"retention_days": 400}, headers=auth).status_code == 200
        assert outbox.drain(services) == 0

    def test_the_lock_job_is_retried_when_the_storage_fails(self, client, auth, services, settings_overrides, tmp_path):
        """A machine that cannot reach the bucket runs the job: it stays pending with the reason,
        nothing is lost, and the next run (another machine here) raises the locks."""
        response = client.post("/v1/letters", json=letter_payload(sandbox_outcome="accepted"), headers=auth)
        assert response.status_code == 201
        letter_id = response.json["id"]
        not_lock = outbox.Exclusions(kinds=frozenset({"lock_retention"}))
        while (job := outbox.claim(services, "healthy", exclude=not_lock)) is not None:
            outbox.run_job(services, job, "healthy")
        with services.db.transaction() as session:
            letter = session.get(Letter, letter_id)
            assert letter.status == "accepted"
            completed_at = letter.completed_at.replace(tzinfo=UTC)
        # Raised since the letter ended: its objects are to be kept until its end + 4000 days.
        assert client.put("/v1/account/retention", json={"retention_days": 4000}, headers=auth).status_code == 200
        retain_until = completed_at + timedelta(days=4000)
        blobs = services.blobs
        keys = keys_of(services, letter_id)
        written = {key: blobs.retained_until(key) for key in keys}
        assert all(until < retain_until - timedelta(days=300) for until in written.values())

        missing = f"lre-gone-{tmp_path.name[-8:].lower().replace('_', '-')}"
        broken = create_app({**settings_overrides, "data_dir": tmp_path / "broken",
                             "storage_url": f"s3://{missing}/archive"})
        try:
            broken_services = broken.extensions["lre"]
            job = outbox.claim(broken_services, "broken", kinds=("lock_retention",))
            assert job is not None and job.letter_id == letter_id
            assert outbox.run_job(broken_services, job, "broken") == "pending"
        finally:
            broken_services.db.dispose()
        with services.db.transaction() as session:
            job = session.scalar(select(Job).where(Job.dedupe_key == f"lock:{letter_id}"))
            assert job.status == "pending" and job.attempts == 1
            assert "could not lock" in job.last_error and "NoSuchBucket" in job.last_error
        for key in keys:
            assert blobs.retained_until(key) == written[key]

        later = datetime.now(UTC) + timedelta(hours=2)  # past the backoff
        job = outbox.claim(services, "healthy", kinds=("lock_retention",), now=later)
        assert job is not None
        assert outbox.run_job(services, job, "healthy") == "done"
        for key in keys:
            assert abs(blobs.retained_until(key) - retain_until) < timedelta(seconds=1), key

    @pytest.mark.parametrize("mode", ["compliance", "governance"])
    def test_only_governance_mode_lets_a_bypassing_user_delete_early(self, settings_overrides, mode, s3, bucket):
        from connector.services import open_archive

        store = open_archive(load_settings({**settings_overrides, "storage_lock_mode": mode}))
        key = store.put(b"proof kept for ten years")
        name = store.object_name(key)
        version = s3.list_object_versions(Bucket=bucket, Prefix=name)["Versions"][0]["VersionId"]
        with pytest.raises(ClientError):
            s3.delete_object(Bucket=bucket, Key=name, VersionId=version)  # no bypass asked: refused in both modes
        if mode == "compliance":
            with pytest.raises(ClientError):
                s3.delete_object(Bucket=bucket, Key=name, VersionId=version, BypassGovernanceRetention=True)
            assert store.get(key) == b"proof kept for ten years"
        else:
            s3.delete_object(Bucket=bucket, Key=name, VersionId=version, BypassGovernanceRetention=True)
            assert not store.exists(key)

    def test_a_bucket_without_object_lock_needs_lock_mode_off(self, settings_overrides, s3_endpoint):
        from connector.services import open_archive

        plain = s3_server.new_bucket(s3_endpoint, object_lock=False)
        settings = {**settings_overrides, "storage_url": f"s3://{plain}/archive"}
        with pytest.raises(ValueError, match="has no Object Lock"):
            open_archive(load_settings(settings)).check()
        store = open_archive(load_settings({**settings, "storage_lock_mode": "off"}))
        store.check()
        key = store.put(b"no lock here")
        assert store.retained_until(key) is None
        store.delete(key)
        assert not store.exists(key)

    def test_a_letter_whose_document_cannot_be_archived_is_not_accepted(self, settings_overrides, tmp_path, s3):
        """The bucket is unreachable for this request (here: it does not exist yet): nothing is
        stored, and the same request succeeds once it is back."""
        missing = f"lre-missing-{tmp_path.name[-8:].lower().replace('_', '-')}"
        app = create_app({**settings_overrides, "storage_url": f"s3://{missing}/archive"})
        try:
            services = app.extensions["lre"]
            client = app.test_client()
            from connector.models import Job

            auth = new_account(services)
            body = letter_payload()
            response = client.post("/v1/letters", json=body, headers=auth)
            assert response.status_code == 500 and response.json["error"]["code"] == "internal_error"
            with services.db.transaction() as session:
                counts = [session.query(model).count() for model in (Letter, Document, Job)]
            assert counts == [0, 0, 0]

            s3.create_bucket(Bucket=missing, ObjectLockEnabledForBucket=True)
            response = client.post("/v1/letters", json=body, headers=auth)
            assert response.status_code == 201
            stored = client.get(f"/v1/letters/{response.json['id']}/document", headers=auth)
            assert stored.data == make_pdf()
        finally:
            app.extensions["lre"].db.dispose()

    def test_two_machines_share_one_archive_and_one_database(self, settings_overrides, tmp_path):
        signing_key = tmp_path / "seal.pem"
        signing_key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        machines = []
        for name in ("machine-a", "machine-b"):
            app = create_app({**settings_overrides, "data_dir": tmp_path / name, "signing_key_file": signing_key})
            machines.append(app)
        try:
            a, b = (app.test_client() for app in machines)
            services_a, services_b = (app.extensions["lre"] for app in machines)
            auth = new_account(services_a)

            accepted = a.post("/v1/letters", json=letter_payload(sandbox_outcome="accepted"), headers=auth)
            assert accepted.status_code == 201
            assert outbox.drain(services_b) > 0  # machine B's worker submits it and records the proofs
            letter = b.get(f"/v1/letters/{accepted.json['id']}", headers=auth).json
            assert letter["status"] == "accepted"

            document = b.get(f"/v1/letters/{letter['id']}/document", headers=auth)
            assert document.status_code == 200 and document.data == make_pdf()
            proof = a.get(f"/v1/letters/{letter['id']}/proofs/acceptance", headers=auth)
            assert proof.status_code == 200  # stored by B, served by A
            package = b.get(f"/v1/letters/{letter['id']}/evidence", headers=auth)
            assert package.status_code == 200
            key_pem = a.get("/.well-known/lre-bridge/seal-key.pem").data
            report = verify_package(read_package(package.data), key_pem)
            assert report.ok, report.problems
            for machine in ("machine-a", "machine-b"):  # nothing archived on either machine's disk
                assert not (tmp_path / machine / "archive").exists()
        finally:
            for app in machines:
                app.extensions["lre"].db.dispose()


# ---------------------------------------------------------------------------------------------
# archive migrate: killed mid-way, run again, nothing lost
# ---------------------------------------------------------------------------------------------


def _migrate(
    settings: dict[str, Any], target: str, endpoint: str, *extra_env: tuple[str, str]
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_of(settings), "LRE_STORAGE_ENDPOINT_URL": endpoint,
           **env_of(s3_server.CREDENTIALS), **dict(extra_env)}
    env.pop("LRE_STORAGE_URL", None)  # the machine still runs on its local archive
    return subprocess.run([sys.executable, "-m", "connector.cli", "archive", "migrate", "--to", target],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_archive_migrate_interrupted_and_resumed_loses_nothing(
    client, auth, services, settings_overrides, s3_endpoint, bucket, s3
):
    settings = {k: v for k, v in settings_overrides.items() if not k.startswith("storage_")}
    if services.settings.storage_url:
        pytest.skip("this test migrates a filesystem archive")
    letters = [send(client, auth, services, text=f"Lettre {n}") for n in range(2)]
    keys = sorted({k for letter in letters for k in keys_of(services, letter["id"])})
    assert len(keys) >= 4
    target = f"s3://{bucket}/archive"

    crashed = _migrate(settings, target, s3_endpoint, ("LRE_FAILPOINTS", "archive.migrate.after_copy"))
    assert crashed.returncode == -9, crashed.stderr  # killed right after its first copy
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 1

    resumed = _migrate(settings, target, s3_endpoint)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(keys) - 1} copied" in resumed.stdout and "1 already there, 0 failed" in resumed.stdout

    # A letter the old machine archived locally after the copy: caught by one more pass after the switch.
    late = send(client, auth, services, text="Lettre tardive")
    late_keys = set(keys_of(services, late["id"])) - set(keys)
    moved = {**settings, **s3_server.s3_settings(s3_endpoint, bucket)}
    code, output = run_cli(["archive", "verify"], moved)
    assert code == 1 and f"{len(late_keys)} missing" in output, output
    old_archive = str(services.settings.data_dir / "archive")
    code, output = run_cli(["archive", "migrate", "--from", old_archive, "--to", target], moved)
    assert code == 0 and f"{len(late_keys)} copied" in output, output
    code, output = run_cli(["archive", "verify"], moved)
    assert code == 0 and f"{len(keys) + len(late_keys)} object(s)" in output, output
    app = create_app({**moved, "data_dir": settings["data_dir"].parent / "new-machine"})
    try:
        on_s3 = app.test_client()
        for n, letter in enumerate(letters):
            document = on_s3.get(f"/v1/letters/{letter['id']}/document", headers=auth)
            assert document.data == make_pdf(f"Lettre {n}")
        store = app.extensions["lre"].blobs
        with services.db.transaction() as session:
            retain_until = session.get(Letter, letters[0]["id"]).retain_until
        assert abs(store.retained_until(keys_of(services, letters[0]["id"])[0]) - retain_until) < timedelta(seconds=1)
    finally:
        app.extensions["lre"].db.dispose()


# ---------------------------------------------------------------------------------------------
# archive renew: evidence records, renewed before the TSA certificate expires, verified offline
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def short_tsa() -> Iterator[tuple[str, tsa_server.TestTSA]]:
    """A TSA whose certificate expires in 30 days."""
    with serve_tsa(tsa_server.TestTSA.create(valid_days=30)) as served:
        yield served


@pytest.fixture
def long_tsa() -> Iterator[tuple[str, tsa_server.TestTSA]]:
    """The TSA that takes over: its certificate runs past 2036."""
    with serve_tsa(tsa_server.TestTSA.create(valid_days=4500)) as served:
        yield served


class TestEvidenceRecords:
    @pytest.fixture
    def settings_overrides(self, settings_overrides, short_tsa):
        return {**settings_overrides, "tsa_url": short_tsa[0]}

    @pytest.fixture
    def renewed(self, client, auth, services, settings_overrides, short_tsa, long_tsa, tmp_path):
        letters = [send(client, auth, services, text=f"Lettre {n}") for n in range(3)]
        code, output = run_cli(["archive", "renew"], settings_overrides)
        assert code == 0, output
        assert "3 package(s) archived, 1 record(s) created, 0 record(s) renewed" in output
        code, output = run_cli(["archive", "renew"], {**settings_overrides, "tsa_url": long_tsa[0]})
        assert code == 0, output  # the first certificate ends within the margin: renewed by the new TSA
        assert "0 package(s) archived, 0 record(s) created, 1 record(s) renewed" in output
        code, output = run_cli(["archive", "renew"], {**settings_overrides, "tsa_url": long_tsa[0]})
        assert "0 record(s) renewed" in output  # nothing due any more
        out = tmp_path / "record"
        code, output = run_cli(["archive", "record", letters[1]["id"], "--out", str(out)], settings_overrides)
        assert code == 0, output
        key = tmp_path / "seal-key.pem"
        key.write_bytes(client.get("/.well-known/lre-bridge/seal-key.pem").data)
        cas = []
        for name, (_, tsa) in (("short", short_tsa), ("long", long_tsa)):
            cas += ["--tsa-ca", str(tmp_path / f"{name}-ca.pem")]
            (tmp_path / f"{name}-ca.pem").write_bytes(tsa.ca_pem)
        return {"package": out / f"{letters[1]['id']}.zip", "record": out / f"{letters[1]['id']}.evidence-record.json",
                "key": key, "cas": cas, "letters": letters, "out": out}

    def verify(
        self, renewed: dict[str, Any], record: Path, *extra: str, package: Path | None = None
    ) -> tuple[int, str]:
        args = ["evidence", "verify", str(package or renewed["package"]), "--public-key", str(renewed["key"]),
                "--evidence-record", str(record), *renewed["cas"], *extra]
        result = CliRunner().invoke(lre_bridge, args)
        return result.exit_code, result.output

    def test_a_renewed_record_still_verifies_in_2036(self, renewed):
        code, output = self.verify(renewed, renewed["record"], "--at", "2036-06-01")
        assert code == 0, output
        assert "renewed 1 time(s), each before the previous certificate expired" in output
        assert "VALID" in output

    def test_a_record_left_unrenewed_fails_once_its_certificate_has_expired(self, renewed, tmp_path):
        record = json.loads(renewed["record"].read_text())
        record["archive_timestamps"] = record["archive_timestamps"][:1]
        unrenewed = tmp_path / "unrenewed.json"
        unrenewed.write_text(json.dumps(record))
        assert self.verify(renewed, unrenewed)[0] == 0  # fine today
        code, output = self.verify(renewed, unrenewed, "--at", "2036-06-01")
        assert code == 1 and "was not renewed before" in output

    @pytest.mark.parametrize("damage", ["token", "path", "root", "order"])
    def test_a_tampered_record_is_caught(self, renewed, tmp_path, damage):
        record = json.loads(renewed["record"].read_text())
        stamps = record["archive_timestamps"]
        if damage == "token":
            token = bytearray(base64.b64decode(stamps[0]["token"]))
            token[len(token) // 2] ^= 0x01
            stamps[0]["token"] = base64.b64encode(bytes(token)).decode()
        elif damage == "path":
            record["path"][0]["sha256"] = "00" * 32
        elif damage == "root":
            record["root_sha256"] = "11" * 32
        else:
            stamps.reverse()
        tampered = tmp_path / "tampered.json"
        tampered.write_text(json.dumps(record))
        code, output = self.verify(renewed, tampered)
        assert code == 1, output
        assert "evidence record:" in output and "NOT VALID" in output

    def test_a_renewal_made_after_the_certificate_expired_breaks_the_chain(self, renewed, tmp_path):
        record = json.loads(renewed["record"].read_text())
        first = base64.b64decode(record["archive_timestamps"][0]["token"])
        late = tsa_server.TestTSA.create(valid_days=4500, clock=lambda: datetime.now(UTC) + timedelta(days=60))
        request, nonce = make_request(first)
        token = read_response(late.respond(request), first, nonce)
        record["archive_timestamps"] = [record["archive_timestamps"][0],
                                        {"token": base64.b64encode(token).decode(), "over": "previous"}]
        late_ca = tmp_path / "late-ca.pem"
        late_ca.write_bytes(late.ca_pem)
        broken = tmp_path / "late.json"
        broken.write_text(json.dumps(record))
        code, output = self.verify(renewed, broken, "--tsa-ca", str(late_ca))
        assert code == 1 and "chain broken" in output

    def test_the_record_of_one_letter_does_not_vouch_for_another_package(self, renewed, client, auth):
        other = renewed["letters"][0]["id"]
        other_package = renewed["out"] / "other.zip"
        other_package.write_bytes(client.get(f"/v1/letters/{other}/evidence", headers=auth).data)
        code, output = self.verify(renewed, renewed["record"], package=other_package)
        assert code == 1 and "for another package" in output
