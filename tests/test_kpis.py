"""KPIs (``GET /v1/kpis``) over letters in every status, with a driven clock, against figures
computed by hand below."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connector.models import Account, Letter, new_id
from connector.services import Services

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def add_letter(services: Services, account_id: str, status: str, created: datetime, *,
               deposited: datetime | None = None, completed: datetime | None = None,
               template: str | None = None) -> str:
    """One letter row as the lifecycle would have left it (the KPIs only read rows)."""
    with services.db.transaction() as session:
        letter = Letter(id=new_id("let"), account_id=account_id, status=status, recipient_type="professional",
                        recipient_email="compta@exemple.fr", recipient_company="Exemple SARL", provider="sandbox",
                        created_at=created, updated_at=completed or deposited or created, deposited_at=deposited,
                        completed_at=completed, template_name=template, metadata_={})
        session.add(letter)
    return letter.id


@pytest.fixture
def letters(services: Services, account: tuple[str, dict[str, str]]) -> dict[str, str]:
    """Letters in every status; the comment on each line is what the hand computation uses."""
    account_id = account[0]
    services.clock = lambda: NOW
    ids = {}
    # accepted after 2 h, deposited 20 days ago: acceptance window closed
    ids["accepted_2h"] = add_letter(services, account_id, "accepted", NOW - 20 * DAY, deposited=NOW - 20 * DAY,
                                    completed=NOW - 20 * DAY + 2 * HOUR, template="mise_en_demeure")
    # accepted after 1 day (deposited 10 minutes after it was created)
    deposited = NOW - 10 * DAY + timedelta(minutes=10)
    ids["accepted_1d"] = add_letter(services, account_id, "accepted", NOW - 10 * DAY, deposited=deposited,
                                    completed=deposited + DAY, template="mise_en_demeure")
    ids["accepted_30m"] = add_letter(services, account_id, "accepted", NOW - 3 * DAY, deposited=NOW - 3 * DAY,
                                     completed=NOW - 3 * DAY + timedelta(minutes=30))
    ids["accepted_4h"] = add_letter(services, account_id, "accepted", NOW - 2 * DAY, deposited=NOW - 2 * DAY,
                                    completed=NOW - 2 * DAY + 4 * HOUR)
    ids["refused"] = add_letter(services, account_id, "refused", NOW - 18 * DAY, deposited=NOW - 18 * DAY,
                                completed=NOW - 17 * DAY)
    ids["neglected"] = add_letter(services, account_id, "neglected", NOW - 17 * DAY, deposited=NOW - 17 * DAY,
                                  completed=NOW - 2 * DAY)
    ids["bounced"] = add_letter(services, account_id, "bounced", NOW - 5 * DAY, deposited=NOW - 5 * DAY,
                                completed=NOW - 5 * DAY + HOUR)
    # still open, deposited 14 days ago: its window is not over, so it is not counted for neglect
    ids["deposited_14d"] = add_letter(services, account_id, "deposited", NOW - 14 * DAY, deposited=NOW - 14 * DAY)
    # still open (the provider has not reported yet), deposited 16 days ago: counted, not neglected
    ids["deposited_16d"] = add_letter(services, account_id, "deposited", NOW - 16 * DAY, deposited=NOW - 16 * DAY)
    ids["failed"] = add_letter(services, account_id, "failed", NOW - DAY)
    ids["queued"] = add_letter(services, account_id, "queued", NOW - HOUR)
    # outside the 30-day window
    add_letter(services, account_id, "accepted", NOW - 40 * DAY, deposited=NOW - 40 * DAY,
               completed=NOW - 40 * DAY + HOUR)
    # another account's letter
    with services.db.transaction() as session:
        other = Account(name="Autre cabinet")
        session.add(other)
        session.flush()
        other_id = other.id
    add_letter(services, other_id, "failed", NOW - DAY)
    return ids


def test_it_computes_every_kpi_over_30_days_as_by_hand(client, auth, letters):
    body = client.get("/v1/kpis?preset=30d", headers=auth).json
    assert body["from"] == "2026-11-01T12:00:00Z" and body["to"] == "2026-12-01T12:00:00Z"
    totals = body["totals"]
    assert totals["by_status"] == {"queued": 1, "deposited": 2, "accepted": 4, "refused": 1, "neglected": 1,
                                   "bounced": 1, "failed": 1}
    assert totals["letters"] == 11
    assert totals["submitted"] == 10  # everything but the queued letter
    assert totals["deposited"] == 9  # 2 open + 4 accepted + refused + neglected + bounced
    assert totals["deliverability"] == round(8 / 9, 6)
    # delays 1800, 7200, 14400, 86400 s
    assert totals["acceptance_delay_seconds"] == {"count": 4, "mean": 27450.0, "median": 10800.0, "p90": 86400.0}
    assert totals["refusal_rate"] == round(1 / 6, 6)  # refused / (4 accepted + refused + neglected)
    # closed windows: accepted 20 d, refused 18 d, neglected 17 d, open 16 d (not the open 14 d one)
    assert totals["neglect"] == {"eligible": 4, "neglected": 1, "rate": 0.25}
    assert totals["technical_failure_rate"] == 0.1
    assert [b["count"] for b in totals["acceptance_delay_distribution"]] == [1, 2, 0, 1, 0, 0, 0]


def test_a_letter_deposited_14_days_ago_counts_for_neglect_once_its_window_closes(client, auth, services,
                                                                                   letters):
    assert client.get("/v1/kpis?preset=30d", headers=auth).json["totals"]["neglect"]["eligible"] == 4
    services.clock = lambda: NOW + DAY
    neglect = client.get("/v1/kpis?preset=30d", headers=auth).json["totals"]["neglect"]
    assert neglect == {"eligible": 5, "neglected": 1, "rate": 0.2}


def test_it_groups_by_day_with_empty_days_as_zeros(client, auth, letters):
    body = client.get("/v1/kpis?preset=7d&group_by=day", headers=auth).json
    days = {g["key"]: g for g in body["groups"]}
    assert list(days) == [f"2026-11-{d:02d}" for d in range(24, 31)] + ["2026-12-01"]
    assert days["2026-11-30"]["by_status"]["failed"] == 1
    assert days["2026-11-30"]["technical_failure_rate"] == 1.0
    assert days["2026-11-29"]["acceptance_delay_seconds"]["mean"] == 14400.0
    assert days["2026-11-25"]["letters"] == 0 and days["2026-11-25"]["deliverability"] is None
    assert days["2026-12-01"]["by_status"]["queued"] == 1
    assert sum(g["letters"] for g in body["groups"]) == body["totals"]["letters"] == 5


def test_it_groups_by_template(client, auth, letters):
    groups = client.get("/v1/kpis?preset=30d&group_by=template", headers=auth).json["groups"]
    assert [g["key"] for g in groups] == ["mise_en_demeure", None]
    assert groups[0]["letters"] == 2 and groups[0]["acceptance_delay_seconds"]["median"] == (7200 + 86400) / 2
    assert groups[1]["letters"] == 9


def test_it_takes_an_explicit_window(client, auth, letters):
    body = client.get("/v1/kpis?from=2026-11-13&to=2026-11-16", headers=auth).json
    # created 18, 17 and 16 days before NOW: the refused, neglected and open 16-day letters
    assert body["totals"]["by_status"]["refused"] == 1
    assert body["totals"]["by_status"]["neglected"] == 1
    assert body["totals"]["by_status"]["deposited"] == 1
    assert body["totals"]["letters"] == 3


def test_group_by_batch_follows_the_batch_items(client, auth, services, account, letters):
    batches = pytest.importorskip("connector.batches.models")
    with services.db.transaction() as session:
        batch = batches.Batch(id=new_id("bat"), account_id=account[0], total=2, created_at=NOW, updated_at=NOW)
        session.add(batch)
        session.flush()
        for row, key in enumerate(("accepted_30m", "failed"), start=1):
            session.add(batches.BatchItem(batch_id=batch.id, row_number=row, status="created",
                                          recipient_type="professional", recipient_email=f"r{row}@exemple.fr",
                                          letter_id=letters[key], created_at=NOW, updated_at=NOW))
        batch_id = batch.id
    groups = {g["key"]: g for g in client.get("/v1/kpis?preset=30d&group_by=batch", headers=auth).json["groups"]}
    assert groups[batch_id]["letters"] == 2 and groups[batch_id]["technical_failure_rate"] == 0.5
    assert groups[None]["letters"] == 9


@pytest.mark.parametrize("query, field", [
    ("preset=1y", "preset"),
    ("preset=7d&from=2026-11-01", "preset"),
    ("from=2026-11-10&to=2026-11-01", "from"),
    ("from=2024-01-01&to=2026-01-01", "from"),
    ("from=hier", "from"),
    ("group_by=recipient", "group_by"),
])
def test_it_refuses_a_window_or_grouping_it_cannot_read(client, auth, query, field):
    response = client.get(f"/v1/kpis?{query}", headers=auth)
    assert response.status_code == 400
    assert response.json["error"]["field"] == field


def test_kpis_need_an_api_key(client):
    assert client.get("/v1/kpis").status_code == 401


def test_an_account_without_letters_has_null_rates(client, other_auth):
    totals = client.get("/v1/kpis?preset=24h", headers=other_auth).json["totals"]
    assert totals["letters"] == 0
    assert totals["deliverability"] is None and totals["technical_failure_rate"] is None
    assert totals["acceptance_delay_seconds"]["mean"] is None


@pytest.fixture
def through_the_histogram(monkeypatch):
    """Every median and p90 located in the fine histogram then read from the delay index, as for a
    big account (by default a window of few letters reads its delays directly)."""
    import connector.monitoring.kpis as kpis

    monkeypatch.setattr(kpis, "DIRECT_PERCENTILES_MAX", 0)


def test_the_histogram_path_gives_the_same_exact_percentiles(client, auth, letters, through_the_histogram):
    totals = client.get("/v1/kpis?preset=30d", headers=auth).json["totals"]
    assert totals["acceptance_delay_seconds"] == {"count": 4, "mean": 27450.0, "median": 10800.0, "p90": 86400.0}
    groups = client.get("/v1/kpis?preset=30d&group_by=template", headers=auth).json["groups"]
    assert groups[0]["acceptance_delay_seconds"]["median"] == (7200 + 86400) / 2
    assert groups[1]["acceptance_delay_seconds"] == {"count": 2, "mean": 8100.0, "median": 8100.0, "p90": 14400.0}
    days = {g["key"]: g for g in client.get("/v1/kpis?preset=7d&group_by=day", headers=auth).json["groups"]}
    assert days["2026-11-29"]["acceptance_delay_seconds"]["median"] == 14400.0


def test_the_rollups_follow_status_changes_and_equal_a_rebuild(client, auth, services, letters):
    """A status change through record_event moves the letter in the rollups in its own transaction;
    the incremental rollups then equal the ones rebuilt from the letters."""
    from connector.letters.service import record_event
    from connector.letters.vocabulary import LetterStatus
    from connector.monitoring.rollups import rebuild

    with services.db.transaction() as session:
        letter = session.get(Letter, letters["deposited_14d"])
        assert record_event(session, letter, LetterStatus.ACCEPTED, occurred_at=NOW - 13 * DAY, provider="sandbox",
                            provider_event_id=None, raw={}) is not None
    with services.db.transaction() as session:  # rolled back: the rollups do not move
        letter = session.get(Letter, letters["deposited_16d"])
        record_event(session, letter, LetterStatus.REFUSED, occurred_at=NOW - DAY, provider="sandbox",
                     provider_event_id=None, raw={})
        session.rollback()
    incremental = client.get("/v1/kpis?preset=30d&group_by=day", headers=auth).json
    totals = incremental["totals"]
    assert totals["by_status"]["accepted"] == 5 and totals["by_status"]["deposited"] == 1
    assert totals["by_status"]["refused"] == 1
    # delays 1800, 7200, 14400, 86400 and now 86400 s
    assert totals["acceptance_delay_seconds"] == {"count": 5, "mean": 39240.0, "median": 14400.0, "p90": 86400.0}
    assert totals["neglect"] == {"eligible": 4, "neglected": 1, "rate": 0.25}
    with services.db.engine.begin() as conn:
        assert rebuild(conn) == 13
    assert client.get("/v1/kpis?preset=30d&group_by=day", headers=auth).json == incremental


def test_a_savepoint_rolled_back_takes_its_letters_out_of_the_rollups(client, auth, services, account):
    """The rollups are written as a transaction commits: a letter added in a savepoint that is rolled
    back is not counted, the ones around it are, and a transaction rolled back counts nothing."""
    account_id = account[0]
    services.clock = lambda: NOW

    def letter(status: str) -> Letter:
        return Letter(id=new_id("let"), account_id=account_id, status=status, recipient_type="professional",
                      recipient_email="compta@exemple.fr", provider="sandbox", created_at=NOW - HOUR,
                      updated_at=NOW - HOUR, metadata_={})

    with services.db.transaction() as session:
        session.add(letter("queued"))
        session.flush()
        savepoint = session.begin_nested()
        session.add(letter("failed"))
        session.flush()
        savepoint.rollback()
        with session.begin_nested():  # a savepoint that commits keeps its letter
            session.add(letter("queued"))
        session.add(letter("queued"))  # left for the commit's own flush
    with pytest.raises(RuntimeError), services.db.transaction() as session:
        session.add(letter("failed"))
        session.flush()
        raise RuntimeError("rolled back")
    by_status = client.get("/v1/kpis?preset=30d", headers=auth).json["totals"]["by_status"]
    assert by_status["queued"] == 3 and by_status["failed"] == 0


def test_a_writer_does_not_wait_for_another_transaction_of_the_same_account(client, auth, services, account):
    """The rollup rows every letter of an account shares are locked at the commit only: a second
    writer of the same account commits while the first is still open (PostgreSQL; SQLite has one
    write lock for the whole database anyway)."""
    import threading

    if services.db.engine.dialect.name != "postgresql":
        pytest.skip("row locks: SQLite serialises every writer on its one database lock")
    account_id = account[0]
    add_letter(services, account_id, "queued", NOW - HOUR)  # the shared rollup row exists
    committed = threading.Event()
    with services.db.transaction() as first:
        first.add(Letter(id=new_id("let"), account_id=account_id, status="queued", recipient_type="professional",
                         recipient_email="a@exemple.fr", provider="sandbox", created_at=NOW - HOUR,
                         updated_at=NOW - HOUR, metadata_={}))
        first.flush()
        second = threading.Thread(target=lambda: (add_letter(services, account_id, "queued", NOW - HOUR),
                                                  committed.set()), daemon=True)
        second.start()
        # Before the change, the second writer waited here on the first one's row lock until its commit.
        assert committed.wait(10), "the second writer waited for the first transaction to end"
    second.join(10)
    services.clock = lambda: NOW
    assert client.get("/v1/kpis?preset=30d", headers=auth).json["totals"]["by_status"]["queued"] == 3


def test_neglect_on_the_cutoff_day_counts_to_the_exact_time(client, auth, services, account):
    """The 15-day window closes at deposit + 15 days to the second, not at midnight."""
    account_id = account[0]
    services.clock = lambda: NOW
    closed = NOW - 15 * DAY - HOUR  # same UTC day as the cutoff (NOW - 15 days), before it
    add_letter(services, account_id, "deposited", closed - HOUR, deposited=closed)
    still_open = NOW - 15 * DAY + HOUR  # same day, after the cutoff
    add_letter(services, account_id, "deposited", still_open - HOUR, deposited=still_open)
    assert client.get("/v1/kpis?preset=30d", headers=auth).json["totals"]["neglect"]["eligible"] == 1
    services.clock = lambda: NOW + 2 * HOUR
    assert client.get("/v1/kpis?preset=30d", headers=auth).json["totals"]["neglect"]["eligible"] == 2


def test_letters_written_by_bulk_sql_count_after_lre_bridge_kpis_rebuild(client, auth, services, account, letters,
                                                                        settings_overrides, monkeypatch):
    """The flush hooks do not see a bulk SQL import; the rebuild command recomputes the rollups."""
    from click.testing import CliRunner
    from sqlalchemy import insert

    from connector.cli import main

    created = NOW - 6 * DAY
    with services.db.engine.begin() as conn:
        conn.execute(insert(Letter.__table__).values(
            id=new_id("let"), account_id=account[0], status="accepted", recipient_type="professional",
            recipient_email="import@exemple.fr", provider="sandbox", metadata={}, created_at=created,
            updated_at=created, deposited_at=created, completed_at=created + 6 * HOUR))
    assert client.get("/v1/kpis?preset=30d", headers=auth).json["totals"]["letters"] == 11  # not seen yet
    for name in ("database_url", "data_dir", "encryption_keys"):  # the command reads the environment
        monkeypatch.setenv(f"LRE_{name.upper()}", str(settings_overrides[name]))
    result = CliRunner().invoke(main, ["kpis", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "rollups rebuilt from 14 letter(s)" in result.output
    totals = client.get("/v1/kpis?preset=30d", headers=auth).json["totals"]
    assert totals["letters"] == 12 and totals["by_status"]["accepted"] == 5
    # delays 1800, 7200, 14400, 21600, 86400 s
    assert totals["acceptance_delay_seconds"] == {"count": 5, "mean": 26280.0, "median": 14400.0, "p90": 86400.0}


def test_the_published_kpis_shape_is_closed_and_has_the_answer_s_fields(client, auth, letters):
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    answer = client.get("/v1/kpis?group_by=day", headers=auth).get_json()
    for name, value in (("Kpis", answer), ("KpiTotals", answer["totals"]), ("KpiGroup", answer["groups"][0]),
                        ("KpiDelay", answer["totals"]["acceptance_delay_seconds"]),
                        ("KpiNeglect", answer["totals"]["neglect"]),
                        ("KpiDelayBucket", answer["totals"]["acceptance_delay_distribution"][0])):
        schema = schemas[name]
        assert schema["additionalProperties"] is False, name
        assert set(value) == set(schema["properties"]), name  # a renamed field fails here
    assert list(answer["groups"][0])[0] == "key"
