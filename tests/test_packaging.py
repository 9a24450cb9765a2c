"""The bridge as an integrator installs it from a wheel (``pip install .``, a Docker build): not the
editable checkout the tests otherwise run. The wheel must carry everything the bridge reads at run
time — the built-in letter templates, the fonts, the migrations — since no repository is beside it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Run from the installed copy: create the schema, an account and a key, then list the templates and
# preview a letter over the HTTP API, and say where the code was loaded from.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from cryptography.fernet import Fernet
    import connector
    from connector.app import create_app
    from connector.api.auth import create_api_key
    from connector.migrate import upgrade
    from connector.models import Account

    data = Path(sys.argv[1])
    app = create_app({"data_dir": data, "database_url": f"sqlite:///{data / 'db.sqlite3'}",
                      "encryption_keys": Fernet.generate_key().decode(), "worker_in_process": False})
    services = app.extensions["lre"]
    upgrade(services.db)
    with services.db.transaction() as session:
        account = Account(name="Wheel")
        session.add(account)
        session.flush()
        _, key = create_api_key(session, account)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    listed = client.get("/v1/templates", headers=headers)
    example = {f["key"]: f["example"] for f in
               client.get("/v1/templates/mise_en_demeure", headers=headers).json["fields"]
               if f.get("example") is not None}
    preview = client.post("/v1/templates/mise_en_demeure/render", json={"data": example}, headers=headers)
    print(json.dumps({
        "loaded_from": connector.__file__,
        "templates": sorted(t["name"] for t in listed.json["data"]),
        "preview_status": preview.status_code,
        "preview_is_pdf": preview.data[:5] == b"%PDF-",
    }))
    """
)


@pytest.mark.slow
def test_the_wheel_carries_templates_fonts_and_migrations_and_renders_from_its_own_files(tmp_path: Path) -> None:
    wheel_dir, target, data = tmp_path / "wheel", tmp_path / "site", tmp_path / "data"
    data.mkdir()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(wheel_dir)],
        check=True, capture_output=True, timeout=600,
    )
    (wheel,) = wheel_dir.glob("lre_bridge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("connector/assets/templates/base.html", "connector/assets/templates/mise_en_demeure.json",
                   "connector/assets/fonts/DejaVuSans.ttf", "connector/migrations/env.py"):
        assert needed in names, needed
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=600,
    )
    # The installed copy comes first on the path and the checkout is out of sight (cwd elsewhere).
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    import json

    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["loaded_from"].startswith(str(target)), seen["loaded_from"]
    assert seen["templates"] == [
        "convocation_ag_copropriete", "fin_periode_essai", "indexation_loyer", "mise_en_demeure",
        "resiliation_contrat",
    ]
    assert seen["preview_status"] == 200 and seen["preview_is_pdf"]
