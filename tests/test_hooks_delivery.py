"""Deliveries to a real subscriber on loopback: signed, ordered, retried, and stopped when asked.

Time is driven, not slept: ``clock`` is the bridge's clock (real time plus an offset the test moves),
and ``deliver_all`` runs the outbox, jumps to the next scheduled attempt, and runs it again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from connector.delivery.hook_delivery import DISABLE_AFTER, RETRY_SCHEDULE_SECONDS
from connector.delivery.hooks import JOB_KIND
from connector.lib import signing
from connector.models import Delivery, Hook, Job
from tests.helpers import letter_payload, server_thread
from tests.receiver import Receiver, running_receiver


class Clock:
    """Real time plus an offset, so rows stamped with the real time are never in its future."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def clock(services) -> Clock:
    services.clock = Clock()
    return services.clock


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def deliver_all(services, clock, drain):
    """Run jobs, then jump the clock to the next pending delivery attempt, until none is left."""

    def run(max_rounds: int = 400) -> None:
        for _ in range(max_rounds):
            drain()
            with services.db.transaction() as session:
                next_run = session.scalar(
                    select(Job.run_at)
                    .where(Job.kind == JOB_KIND, Job.status == "pending")
                    .order_by(Job.run_at)
                    .limit(1)
                )
            if next_run is None:
                return
            clock.advance(max((next_run - clock()).total_seconds(), 0) + 0.01)
        raise AssertionError("deliveries did not settle")

    return run


def subscribe(client, auth, url, **body):
    response = client.post("/v1/hooks", json={"target_url": url, **body}, headers=auth)
    assert response.status_code == 201, response.json
    return response.json


def send_letter(client, auth, **overrides):
    response = client.post("/v1/letters", json=letter_payload(**overrides), headers=auth)
    assert response.status_code == 201, response.json
    return response.json


def event_ids(client, auth, letter_id):
    """The letter's event ids, oldest first."""
    feed = client.get("/v1/events", query_string={"letter_id": letter_id}, headers=auth).json["data"]
    return [e["id"] for e in reversed(feed)]


def webhook_ids(requests):
    return [r.headers["webhook-id"] for r in requests]


def test_a_letters_lifecycle_reaches_the_subscriber_as_signed_events_in_order(client, auth, drain, receiver):
    hook = subscribe(client, auth, receiver.url)
    letter = send_letter(client, auth, sandbox_outcome="accepted")
    drain()
    received = receiver.requests
    bodies = [Webhook(hook["secret"]).verify(r.body, r.headers) for r in received]
    assert [b["type"] for b in bodies] == ["letter.queued", "letter.deposited", "letter.accepted"]
    assert webhook_ids(received) == event_ids(client, auth, letter["id"])
    assert [b["data"]["status"] for b in bodies] == ["queued", "deposited", "accepted"]
    assert bodies[-1]["data"]["id"] == letter["id"]
    assert bodies[-1]["data"]["reference"] == "DOSSIER-42"
    assert [p["kind"] for p in bodies[-1]["data"]["proofs"]] == ["deposit", "acceptance"]
    assert all(r.headers["content-type"] == "application/json" for r in received)


def test_the_body_is_type_timestamp_and_data_with_the_event_time(client, auth, drain, receiver, services):
    subscribe(client, auth, receiver.url, events=["letter.queued"])
    send_letter(client, auth)
    drain()
    (request,) = receiver.requests
    body = json.loads(request.body)
    assert list(body) == ["type", "timestamp", "data"]
    assert body["timestamp"] == body["data"]["created_at"]
    assert abs(int(request.headers["webhook-timestamp"]) - services.clock().timestamp()) < 60


def test_a_receiver_that_fails_then_recovers_gets_every_event_exactly_once_in_order(
    client, auth, receiver, deliver_all
):
    hook = subscribe(client, auth, receiver.url)
    receiver.fail_next(3, status=503)
    letter = send_letter(client, auth, sandbox_outcome="refused")
    deliver_all()
    expected = event_ids(client, auth, letter["id"])
    assert webhook_ids(receiver.delivered()) == expected
    assert len(receiver.requests) == len(expected) + 3
    # A retry is the same message: same id, same bytes, a fresh timestamp and signature.
    first_event = [r for r in receiver.requests if r.headers["webhook-id"] == expected[0]]
    assert len(first_event) == 4
    assert len({r.body for r in first_event}) == 1
    for request in receiver.requests:
        timestamp = int(request.headers["webhook-timestamp"])
        signing.verify([signing.decode_secret(hook["secret"])], request.headers, request.body, now=timestamp)


def test_later_events_wait_for_an_earlier_failing_one_instead_of_overtaking_it(client, auth, receiver, drain, services):
    subscribe(client, auth, receiver.url)
    receiver.fail_next(1)
    send_letter(client, auth)
    drain()
    assert [r.answered for r in receiver.requests] == [500]
    with services.db.transaction() as session:
        statuses = [d.status for d in session.scalars(select(Delivery).order_by(Delivery.event_seq))]
    assert statuses == ["pending", "pending", "pending"]


def test_retries_follow_the_schedule_and_honour_retry_after(client, auth, receiver, drain, services):
    subscribe(client, auth, receiver.url, events=["letter.queued"])
    receiver.fail_next(1, status=500)
    receiver.fail_next(1, status=429, headers={"Retry-After": "900"})
    send_letter(client, auth)
    drain()
    with services.db.transaction() as session:
        first_retry = session.scalar(select(Job.run_at).where(Job.kind == JOB_KIND))
    delay = (first_retry - services.clock()).total_seconds()
    assert RETRY_SCHEDULE_SECONDS[0] * 0.8 < delay <= RETRY_SCHEDULE_SECONDS[0] * 1.1
    services.clock = lambda: first_retry + timedelta(seconds=1)
    drain()
    with services.db.transaction() as session:
        second_retry = session.scalar(select(Job.run_at).where(Job.kind == JOB_KIND))
    assert (second_retry - services.clock()).total_seconds() >= 899  # schedule says 5 min; Retry-After 15


def test_a_410_gone_removes_the_subscription(client, auth, receiver, deliver_all, services):
    hook = subscribe(client, auth, receiver.url)
    receiver.always(410)
    send_letter(client, auth)
    deliver_all()
    assert len(receiver.requests) == 1
    assert client.get(f"/v1/hooks/{hook['id']}", headers=auth).status_code == 404
    with services.db.transaction() as session:
        statuses = sorted(d.status for d in session.scalars(select(Delivery)))
    assert statuses.count("failed") == 1
    assert set(statuses) <= {"failed", "cancelled"}
    send_letter(client, auth)
    deliver_all()
    assert len(receiver.requests) == 1


def test_redirects_are_failures_and_are_not_followed(client, auth, receiver, drain, services):
    subscribe(client, auth, receiver.url, events=["letter.queued"])
    receiver.fail_next(1, status=302, headers={"Location": receiver.url + "/elsewhere"})
    send_letter(client, auth)
    drain()
    assert [r.path for r in receiver.requests] == ["/hook"]
    with services.db.transaction() as session:
        assert session.scalar(select(Delivery.last_status_code)) == 302


def test_rotation_delivers_two_valid_signatures_during_the_grace_period(
    client, auth, receiver, drain, clock, deliver_all
):
    hook = subscribe(client, auth, receiver.url, events=["letter.queued"])
    new_secret = client.post(f"/v1/hooks/{hook['id']}/rotate", headers=auth).json["secret"]
    send_letter(client, auth)
    drain()
    (request,) = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(new_secret).verify(request.body, request.headers)
    assert Webhook(hook["secret"]).verify(request.body, request.headers)

    clock.advance(timedelta(hours=24, seconds=1).total_seconds())
    send_letter(client, auth)
    deliver_all()
    later = receiver.requests[-1]
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    timestamp = int(later.headers["webhook-timestamp"])
    assert signing.verify([signing.decode_secret(new_secret)], later.headers, later.body, now=timestamp)
    with pytest.raises(signing.NoMatchingSignature):
        signing.verify([signing.decode_secret(hook["secret"])], later.headers, later.body, now=timestamp)


def test_it_sends_only_the_subscribed_event_types_and_references(client, auth, receiver, drain):
    subscribe(client, auth, receiver.url, events=["letter.accepted"], filters={"reference": "DOSSIER-7"})
    send_letter(client, auth, reference="DOSSIER-7")
    send_letter(client, auth, reference="DOSSIER-8")
    drain()
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert [(b["type"], b["data"]["reference"]) for b in bodies] == [("letter.accepted", "DOSSIER-7")]


def test_another_accounts_letters_never_reach_the_hook(client, auth, other_auth, receiver, drain):
    subscribe(client, auth, receiver.url)
    send_letter(client, other_auth)
    drain()
    assert receiver.requests == []


def test_a_deleted_hook_receives_nothing_more(client, auth, receiver, drain, services):
    hook = subscribe(client, auth, receiver.url)
    receiver.fail_next(1)
    send_letter(client, auth)
    drain()
    client.delete(f"/v1/hooks/{hook['id']}", headers=auth)
    services.clock = lambda: datetime.now(UTC) + timedelta(days=1)
    drain()
    assert len(receiver.requests) == 1


def test_the_delivery_log_shows_each_attempt(client, auth, receiver, deliver_all):
    hook = subscribe(client, auth, receiver.url, events=["letter.queued"])
    receiver.fail_next(1, status=502)
    send_letter(client, auth)
    deliver_all()
    (delivery,) = client.get(f"/v1/hooks/{hook['id']}/deliveries", headers=auth).json["data"]
    assert delivery["status"] == "delivered"
    assert delivery["event_type"] == "letter.queued"
    assert delivery["attempts"] == 2
    assert [a["status_code"] for a in delivery["attempts_log"]] == [502, 200]
    assert delivery["next_attempt_at"] is None


def test_replay_sends_a_past_event_again_with_its_webhook_id(client, auth, receiver, drain):
    hook = subscribe(client, auth, receiver.url, events=["letter.queued"])
    letter = send_letter(client, auth)
    drain()
    event_id = receiver.requests[0].headers["webhook-id"]
    response = client.post(f"/v1/hooks/{hook['id']}/replay", json={"event_id": event_id}, headers=auth)
    assert response.status_code == 202, response.json
    drain()
    assert webhook_ids(receiver.requests) == [event_id, event_id]
    assert receiver.requests[0].body == receiver.requests[1].body
    deliveries = client.get(f"/v1/hooks/{hook['id']}/deliveries", headers=auth).json["data"]
    assert [d["status"] for d in deliveries] == ["delivered", "delivered"]
    assert letter["id"] in {d["letter_id"] for d in deliveries}


def test_replay_refuses_unknown_and_unsubscribed_events(client, auth, other_auth, receiver, drain):
    hook = subscribe(client, auth, receiver.url, events=["letter.accepted"])
    letter = send_letter(client, auth)
    other_letter = send_letter(client, other_auth)
    drain()
    queued = event_ids(client, auth, letter["id"])[0]
    foreign = event_ids(client, other_auth, other_letter["id"])[0]
    replay = f"/v1/hooks/{hook['id']}/replay"
    assert client.post(replay, json={"event_id": queued}, headers=auth).status_code == 422
    assert client.post(replay, json={"event_id": foreign}, headers=auth).status_code == 404
    assert client.post(replay, json={}, headers=auth).status_code == 422


def test_a_hook_failing_for_five_days_is_disabled_and_an_event_says_so(client, auth, receiver, deliver_all, clock):
    with running_receiver() as watcher:
        failing = subscribe(client, auth, receiver.url)
        subscribe(client, auth, watcher.url, events=["hook.disabled"])
        receiver.always(500)
        started = clock()
        send_letter(client, auth, sandbox_outcome="accepted")
        # Each event exhausts its retries (about 3.2 days) before the next one may start.
        deliver_all()

        disabled = client.get(f"/v1/hooks/{failing['id']}", headers=auth).json
        assert disabled["status"] == "disabled"
        assert "failed" in disabled["disabled_reason"]
        (notice,) = [json.loads(r.body) for r in watcher.requests]
        assert notice["type"] == "hook.disabled"
        assert notice["data"]["id"] == failing["id"]
        disabled_at = datetime.fromisoformat(notice["timestamp"].replace("Z", "+00:00"))
        assert disabled_at - started >= DISABLE_AFTER
        assert len(client.get("/v1/events", query_string={"type": "hook.disabled"}, headers=auth).json["data"]) == 1
        deliveries = client.get(f"/v1/hooks/{failing['id']}/deliveries", headers=auth).json["data"]
        assert "pending" not in {d["status"] for d in deliveries}

        count = len(receiver.requests)
        send_letter(client, auth)
        deliver_all()
        assert len(receiver.requests) == count


def test_one_success_resets_the_failure_clock(client, auth, receiver, deliver_all, services):
    hook = subscribe(client, auth, receiver.url)
    receiver.fail_next(5)
    send_letter(client, auth)
    deliver_all()
    with services.db.transaction() as session:
        assert session.get(Hook, hook["id"]).failing_since is None


@pytest.fixture
def trickling_refusal() -> Iterator[str]:
    """A receiver that answers 500, then sends its 400-byte body a byte every 100 ms (40 s)."""
    import http.server
    import threading

    stop = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(500)
            self.send_header("Content-Length", "400")
            self.end_headers()
            try:
                for _ in range(400):
                    if stop.wait(0.1):
                        return
                    self.wfile.write(b"e")
                    self.wfile.flush()
            except OSError:
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server_thread(server).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    stop.set()
    server.shutdown()
    server.server_close()


def test_a_refusal_whose_body_trickles_does_not_hold_the_delivery(client, auth, drain, trickling_refusal):
    # Each byte comes well within the read timeout: only reading once, not "200 bytes", bounds it.
    hook = subscribe(client, auth, trickling_refusal, events=["letter.queued"])
    send_letter(client, auth)
    started = time.monotonic()
    drain()
    assert time.monotonic() - started < 5.0
    (delivery,) = client.get(f"/v1/hooks/{hook['id']}/deliveries", headers=auth).json["data"]
    (attempt,) = delivery["attempts_log"]
    assert attempt["status_code"] == 500
    assert attempt["error"].startswith("HTTP 500")
    assert attempt["duration_ms"] < 5000
