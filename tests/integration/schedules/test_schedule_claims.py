"""The scheduler's claim query: replicas never claim the same row; downtime fires one run.

Rows here are due in 2001, long before anything other tests create, and are
deleted afterwards, so the claim query (which spans every organization) only
sees them.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, event, text
from sqlalchemy.orm import Session, sessionmaker

from models.schedule_repository import advance, claim_due_schedules
from models.workflow import Schedule
from tests.integration.workflows.builders import create, wrapped
from tests.support import register

pytestmark = pytest.mark.integration

EPOCH = datetime(2001, 1, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    from models.db import make_db_engine, make_session_factory

    db_engine = make_db_engine(database_url, pool_size=6, application_name="iw-test-claims")
    yield make_session_factory(db_engine)
    db_engine.dispose()


@pytest.fixture
def make_schedule(client: Any, sessions: sessionmaker[Session]) -> Iterator[Any]:
    owner = register(client)
    workflow = create(owner, wrapped("nightly_report"))
    created: list[uuid.UUID] = []

    def make(cron: str = "*/5 * * * *", *, due: datetime = EPOCH, **columns: Any) -> uuid.UUID:
        with sessions() as session:
            schedule = Schedule(
                organization_id=uuid.UUID(owner.organization_id),
                workflow_row_id=uuid.UUID(workflow["id"]),
                workflow_id=workflow["workflow_id"],
                cron=cron,
                timezone=columns.pop("timezone", "UTC"),
                payload={},
                enabled=columns.pop("enabled", True),
                next_run_at=due,
                **columns,
            )
            session.add(schedule)
            session.commit()
            created.append(schedule.id)
            return schedule.id

    yield make
    with sessions() as session:
        session.execute(delete(Schedule).where(Schedule.id.in_(created)))
        session.commit()


def load(sessions: sessionmaker[Session], schedule_id: uuid.UUID) -> Schedule:
    with sessions() as session:
        schedule = session.get(Schedule, schedule_id)
        assert schedule is not None
        return schedule


def test_two_open_claims_never_share_a_row(
    sessions: sessionmaker[Session], make_schedule: Any
) -> None:
    ids = [make_schedule(due=EPOCH + timedelta(minutes=index)) for index in range(5)]
    now = EPOCH + timedelta(days=1)
    with sessions() as first, sessions() as second:
        claimed_first = claim_due_schedules(first, now, limit=3)
        # The second replica must not wait for the first one's locks: it skips them.
        second.execute(text("SET LOCAL lock_timeout = '1s'"))
        claimed_second = claim_due_schedules(second, now, limit=10)
        assert [s.id for s in claimed_first] == ids[:3]  # most overdue first
        assert [s.id for s in claimed_second] == ids[3:]
        with sessions() as third:
            third.execute(text("SET LOCAL lock_timeout = '1s'"))
            assert claim_due_schedules(third, now, limit=10) == []
        first.rollback()
        second.rollback()
    with sessions() as fourth:
        assert [s.id for s in claim_due_schedules(fourth, now, limit=10)] == ids


def test_racing_replicas_fire_each_due_time_exactly_once(
    sessions: sessionmaker[Session], make_schedule: Any
) -> None:
    ids = {make_schedule(due=EPOCH + timedelta(seconds=index)) for index in range(40)}
    now = EPOCH + timedelta(hours=2)
    fired: list[tuple[uuid.UUID, datetime]] = []
    lock = threading.Lock()
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def replica() -> None:
        try:
            start.wait(timeout=10)
            while True:
                with sessions() as session:
                    batch = claim_due_schedules(session, now, limit=3)
                    if not batch:
                        return
                    runs = [(s.id, advance(s, now)) for s in batch]
                    session.commit()
                with lock:
                    fired.extend((schedule_id, due) for schedule_id, due in runs if due)
        except BaseException as exc:  # surfaced in the main thread
            failures.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    assert Counter(schedule_id for schedule_id, _ in fired) == dict.fromkeys(ids, 1)
    assert {due for _, due in fired} == {EPOCH + timedelta(hours=2)}


def test_missed_runs_fire_once_after_downtime(
    sessions: sessionmaker[Session], make_schedule: Any
) -> None:
    schedule_id = make_schedule("*/5 * * * *", due=EPOCH)  # 09:00, then down until 10:02:30
    now = EPOCH + timedelta(hours=1, minutes=2, seconds=30)
    with sessions() as session:
        (claimed,) = claim_due_schedules(session, now, limit=10)
        assert advance(claimed, now) == EPOCH + timedelta(hours=1)  # 10:00, the latest missed
        session.commit()
    stored = load(sessions, schedule_id)
    assert stored.last_run_at == EPOCH + timedelta(hours=1)
    assert stored.next_run_at == EPOCH + timedelta(hours=1, minutes=5)
    with sessions() as session:
        assert claim_due_schedules(session, now, limit=10) == []
        later = EPOCH + timedelta(hours=1, minutes=5)
        (claimed,) = claim_due_schedules(session, later, limit=10)
        assert advance(claimed, later) == later  # due exactly now counts
        assert claimed.next_run_at == later + timedelta(minutes=5)
        session.commit()


def test_a_run_due_on_time_fires_its_own_due_time(
    sessions: sessionmaker[Session], make_schedule: Any
) -> None:
    make_schedule("0 9 * * *", due=EPOCH + timedelta(hours=-1), timezone="Europe/Berlin")
    now = EPOCH + timedelta(seconds=3)  # the beat tick just after 08:00 UTC = 09:00 Berlin
    with sessions() as session:
        (claimed,) = claim_due_schedules(session, now, limit=10)
        assert advance(claimed, now) == EPOCH + timedelta(hours=-1)
        assert claimed.next_run_at == EPOCH + timedelta(days=1, hours=-1)
        session.rollback()


def test_catch_up_uses_the_schedule_timezone(
    sessions: sessionmaker[Session], make_schedule: Any
) -> None:
    make_schedule("0 9 * * *", due=EPOCH - timedelta(hours=1), timezone="Europe/Berlin")
    now = datetime(2001, 1, 5, 12, 0, tzinfo=UTC)  # four days down
    with sessions() as session:
        (claimed,) = claim_due_schedules(session, now, limit=10)
        assert advance(claimed, now) == datetime(2001, 1, 5, 8, 0, tzinfo=UTC)
        assert claimed.next_run_at == datetime(2001, 1, 6, 8, 0, tzinfo=UTC)
        session.rollback()


def test_disabled_unscheduled_and_future_rows_are_not_claimed(
    sessions: sessionmaker[Session], make_schedule: Any
) -> None:
    make_schedule(enabled=False)
    make_schedule(due=None)  # type: ignore[arg-type]
    make_schedule(due=EPOCH + timedelta(days=30))
    due = make_schedule(due=EPOCH)
    with sessions() as session:
        claimed = claim_due_schedules(session, EPOCH + timedelta(days=1), limit=10)
        assert [schedule.id for schedule in claimed] == [due]
        session.rollback()


def test_a_schedule_whose_cron_no_longer_parses_is_disabled_not_fired(
    sessions: sessionmaker[Session], make_schedule: Any
) -> None:
    schedule_id = make_schedule("not a cron")
    with sessions() as session:
        (claimed,) = claim_due_schedules(session, EPOCH + timedelta(days=1), limit=10)
        assert advance(claimed, EPOCH + timedelta(days=1)) is None
        session.commit()
    stored = load(sessions, schedule_id)
    assert (stored.enabled, stored.next_run_at, stored.last_run_at) == (False, None, None)


def test_the_claim_uses_skip_locked(sessions: sessionmaker[Session]) -> None:
    captured: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        captured.append(statement)

    with sessions() as session:
        bind = session.get_bind()
        event.listen(bind, "before_cursor_execute", capture)
        try:
            claim_due_schedules(session, EPOCH - timedelta(days=365), limit=1)
        finally:
            event.remove(bind, "before_cursor_execute", capture)
        session.rollback()
    (statement,) = [s for s in captured if "FROM schedules" in s]
    assert "ORDER BY schedules.next_run_at" in statement
    assert statement.rstrip().endswith("FOR UPDATE SKIP LOCKED")
