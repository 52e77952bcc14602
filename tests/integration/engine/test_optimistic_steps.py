"""Steps run on an unlocked read and written only if their execution row is unchanged.

Each test changes the row while the step runs (between the optimistic read and
its write, inside the step's work) and checks that the change wins or the step
is run again under the lock: never applied twice, never lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import text

from tests.integration.engine.conftest import (
    API,
    create_workflow,
    drive,
    execution,
    send_event,
    set_then_allow,
)
from tests.integration.engine.test_delivery_guarantees import (
    count_step_runs,
    run_ticket,
    tickets_of,
)
from tests.support import recorded_statements, unique


def start(admin: Any, rt: Any, first_items: list[dict[str, Any]] | None = None) -> tuple[str, Any]:
    """An execution of set_then_allow (its first step's execute items replaced by
    `first_items`, if given) and the ticket of its first step."""
    event_type = f"opt.{unique('e')}"
    workflow = set_then_allow(event_type)
    if first_items is not None:
        workflow["definition"]["steps"][0]["execute"] = first_items
    create_workflow(admin, workflow)
    [execution_id] = send_event(admin, event_type, {})["execution_ids"]
    [ticket] = tickets_of(rt, execution_id)
    return execution_id, ticket


def touch_heartbeat(rt: Any, execution_id: str) -> None:
    """A write to the execution row that does not bump `version` (its xmin changes)."""
    with rt.db_engine.begin() as connection:
        connection.execute(
            text("UPDATE executions SET heartbeat_at = now() WHERE id = :id"),
            {"id": execution_id},
        )


@pytest.fixture
def during_first_work(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], None]], list[int]]:
    """Run `change` inside the first run of a step's work (after the optimistic read,
    before its write); returns a list that counts the step's runs."""
    import tasks.steprun as steprun

    def install(change: Callable[[], None]) -> list[int]:
        runs: list[int] = []
        real_work = steprun._work

        def work(*args: Any, **kwargs: Any) -> Any:
            runs.append(1)
            if len(runs) == 1:
                change()
            return real_work(*args, **kwargs)

        monkeypatch.setattr(steprun, "_work", work)
        return runs

    return install


@pytest.fixture
def statements(rt: Any) -> Iterator[list[str]]:
    with recorded_statements(rt.db_engine, rt.autocommit_engine) as sent:
        yield sent


def version_of(rt: Any, execution_id: str) -> int:
    with rt.db_engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT version FROM executions WHERE id = :id"), {"id": execution_id}
            ).scalar_one()
        )


def test_a_plain_step_is_read_and_written_without_the_row_lock(
    admin: Any, rt: Any, statements: list[str]
) -> None:
    execution_id, ticket = start(admin, rt)
    assert run_ticket(rt, ticket) == "completed"
    sent = " ".join(statements)
    assert "EXECUTE iw_read_step(" in sent
    assert "EXECUTE iw_transition_" in sent
    assert "EXECUTE iw_lock_step(" not in sent  # no SELECT ... FOR UPDATE
    assert execution(admin, execution_id)["current_step_id"] == "b"
    drive(rt)
    done = execution(admin, execution_id)
    assert (done["status"], done["result"]) == ("completed", "allowed")
    assert "EXECUTE iw_transition_" in " ".join(statements)
    assert count_step_runs(rt, execution_id) == 2


def test_any_write_to_the_row_meanwhile_sends_the_step_to_the_locked_path(
    admin: Any, rt: Any, during_first_work: Any
) -> None:
    execution_id, ticket = start(admin, rt)
    before = version_of(rt, execution_id)

    runs = during_first_work(lambda: touch_heartbeat(rt, execution_id))
    assert run_ticket(rt, ticket) == "completed"
    assert len(runs) == 2  # the optimistic run's write was refused, the locked run applied
    assert version_of(rt, execution_id) == before + 1
    assert count_step_runs(rt, execution_id) == 1
    assert tickets_of(rt, execution_id)[0].step_id == "b"
    drive(rt)
    assert execution(admin, execution_id)["status"] == "completed"
    assert count_step_runs(rt, execution_id) == 2


def test_a_pause_while_the_step_runs_wins_and_resume_runs_the_step_once(
    admin: Any, rt: Any, during_first_work: Any
) -> None:
    execution_id, ticket = start(admin, rt)

    def pause() -> None:
        assert admin.post(f"{API}/executions/{execution_id}/pause").status_code == 200

    during_first_work(pause)
    assert run_ticket(rt, ticket) == "execution_paused"
    paused = execution(admin, execution_id)
    assert (paused["status"], paused["current_step_id"]) == ("paused", "a")
    assert count_step_runs(rt, execution_id) == 0
    assert tickets_of(rt, execution_id) == []  # spent: resume issues a new one
    assert admin.post(f"{API}/executions/{execution_id}/resume").status_code == 200
    drive(rt)
    done = execution(admin, execution_id)
    assert (done["status"], done["result"]) == ("completed", "allowed")
    assert count_step_runs(rt, execution_id) == 2


def test_a_step_run_recorded_meanwhile_makes_the_delivery_a_duplicate(
    admin: Any, rt: Any, during_first_work: Any
) -> None:
    """The step-run key conflicts (no write to the execution row): the statement fails
    as a whole, and the locked path finds the attempt recorded."""
    execution_id, ticket = start(admin, rt)
    before = version_of(rt, execution_id)

    def record_attempt() -> None:
        with rt.db_engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO step_runs (id, organization_id, execution_id, step_id,"
                    " step_type, branch_key, attempt_group, attempt, status)"
                    " SELECT gen_random_uuid(), organization_id, id, 'a', 'execute', '', 1, 1,"
                    " 'completed' FROM executions WHERE id = :id"
                ),
                {"id": execution_id},
            )

    during_first_work(record_attempt)
    assert run_ticket(rt, ticket) == "duplicate"
    assert version_of(rt, execution_id) == before
    assert count_step_runs(rt, execution_id) == 1
    assert tickets_of(rt, execution_id) == []


def test_a_log_step_logs_its_message_once(
    admin: Any, rt: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `log` step cannot be written fast (its lines go into the step-run row), so it
    must not run optimistically first: its message would be logged twice."""
    import tasks.ports

    logged: list[str] = []

    class Recorder:
        def info(self, event: str, **fields: Any) -> None:
            if event == "workflow_log":
                logged.append(fields["message"])

    monkeypatch.setattr(tasks.ports, "log", Recorder())
    _, ticket = start(admin, rt, [{"type": "log", "message": "hello once"}])

    assert run_ticket(rt, ticket) == "completed"
    assert logged == ["hello once"]


def test_a_step_that_cannot_end_fast_is_not_read_first(
    admin: Any, rt: Any, statements: list[str]
) -> None:
    """Its ticket says so (tasks.dispatch.ticket_payload): straight to the locked path."""
    _, ticket = start(admin, rt, [{"type": "log", "message": "m"}])
    statements.clear()

    assert run_ticket(rt, ticket) == "completed"
    assert "EXECUTE iw_read_step(" not in " ".join(statements)
    assert "EXECUTE iw_lock_step(" in " ".join(statements)


def test_a_step_that_writes_records_runs_once(admin: Any, rt: Any, during_first_work: Any) -> None:
    """Record writes go through the general path: the step is not run optimistically
    first (it would run twice)."""
    record = {"type": "create_record", "entity": "note", "entity_id": "n-1", "data": {"x": 1}}
    execution_id, ticket = start(admin, rt, [record])
    runs = during_first_work(lambda: None)

    assert run_ticket(rt, ticket) == "completed"
    assert len(runs) == 1
    drive(rt)
    assert execution(admin, execution_id)["status"] == "completed"
    records = admin.get(f"{API}/records", query_string={"entity": "note"}).json
    assert [record["entity_id"] for record in records["records"]] == ["n-1"]


@pytest.fixture
def published(rt: Any, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The tickets the steps publish, as the broker gets them (the stored ones carry no
    snapshot: tests.integration.engine.test_delivery_guarantees.tickets_of)."""
    sent: list[Any] = []
    real = rt.publisher.publish

    def publish(tickets: Any) -> int:
        items = list(tickets)
        sent.extend(items)
        return int(real(items))

    monkeypatch.setattr(rt.publisher, "publish", publish)
    return sent


def run_first_step(admin: Any, rt: Any, published: list[Any]) -> tuple[str, Any]:
    """Run step `a` and return the published ticket of step `b`, with its snapshot."""
    execution_id, ticket = start(admin, rt)
    assert run_ticket(rt, ticket) == "completed"
    [next_ticket] = published
    assert next_ticket.step_id == "b"
    assert next_ticket.snapshot is not None
    [stored] = tickets_of(rt, execution_id)
    assert stored.snapshot is None  # only the message carries it
    return execution_id, next_ticket


def test_the_next_step_runs_on_the_row_its_message_carries_without_reading_it(
    admin: Any, rt: Any, published: list[Any], statements: list[str]
) -> None:
    execution_id, next_ticket = run_first_step(admin, rt, published)
    carried = next_ticket.snapshot
    assert carried["current_step_id"] == "b"
    assert carried["version"] == version_of(rt, execution_id)
    assert json.loads(carried["context"])["x"] == 1
    statements.clear()
    assert run_ticket(rt, next_ticket) == "completed"
    # One statement: the compare-and-set write; no read of the row first.
    assert len(statements) == 1
    assert "EXECUTE iw_transition_" in statements[0]
    done = execution(admin, execution_id)
    assert (done["status"], done["result"]) == ("completed", "allowed")
    assert done["context"]["x"] == 1
    assert count_step_runs(rt, execution_id) == 2


def test_a_carried_row_that_changed_since_sends_the_step_to_the_locked_path(
    admin: Any, rt: Any, published: list[Any], statements: list[str]
) -> None:
    execution_id, next_ticket = run_first_step(admin, rt, published)
    touch_heartbeat(rt, execution_id)
    statements.clear()
    assert run_ticket(rt, next_ticket) == "completed"
    assert "EXECUTE iw_lock_step(" in " ".join(statements)
    done = execution(admin, execution_id)
    assert (done["status"], done["result"]) == ("completed", "allowed")
    assert count_step_runs(rt, execution_id) == 2


def test_a_carried_row_whose_definition_the_process_does_not_know_is_read(
    admin: Any, rt: Any, published: list[Any], statements: list[str]
) -> None:
    execution_id, next_ticket = run_first_step(admin, rt, published)
    unknown = replace(next_ticket, snapshot={**next_ticket.snapshot, "definition": "0" * 32})
    statements.clear()
    assert run_ticket(rt, unknown) == "completed"
    sent = " ".join(statements)
    assert "EXECUTE iw_read_step(" in sent
    assert "EXECUTE iw_lock_step(" not in sent
    assert execution(admin, execution_id)["status"] == "completed"


def test_a_duplicate_delivery_of_a_carried_step_changes_nothing(
    admin: Any, rt: Any, published: list[Any]
) -> None:
    execution_id, next_ticket = run_first_step(admin, rt, published)
    assert run_ticket(rt, next_ticket) == "completed"
    version = version_of(rt, execution_id)
    assert run_ticket(rt, next_ticket) == "duplicate"
    assert version_of(rt, execution_id) == version
    assert count_step_runs(rt, execution_id) == 2


@pytest.fixture
def sent_by_api(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The tickets the API publishes, as the broker gets them."""
    import api.dispatch
    from tests.integration.engine.conftest import RecordingPublisher

    recording = RecordingPublisher()
    monkeypatch.setattr(api.dispatch, "publisher", lambda: recording)
    return recording.published


def test_the_first_step_runs_on_the_row_its_event_inserted_without_reading_it(
    admin: Any, rt: Any, sent_by_api: list[Any], statements: list[str]
) -> None:
    from tasks.locking import from_snapshot, lock_execution

    event_type = f"opt.{unique('e')}"
    create_workflow(admin, set_then_allow(event_type))
    [execution_id] = send_event(admin, event_type, {"n": 1})["execution_ids"]
    [first] = sent_by_api
    assert (str(first.execution_id), first.step_id) == (execution_id, "a")
    [stored] = tickets_of(rt, execution_id)
    assert stored.snapshot is None  # only the message carries it
    # The carried row is the row a step reads, column for column (the xmin included).
    with rt.autocommit_engine.connect() as connection:
        read = lock_execution(connection, **first.attempt_key, lock=False)
    assert read is not None
    assert from_snapshot(first.execution_id, first.snapshot) == read[0]
    statements.clear()
    assert run_ticket(rt, first) == "completed"
    assert len(statements) == 1  # the compare-and-set write; no read of the row first
    assert "EXECUTE iw_transition_" in statements[0]
    drive(rt)
    done = execution(admin, execution_id)
    assert (done["status"], done["result"]) == ("completed", "allowed")
    assert done["context"]["x"] == 1


def test_an_event_batch_carries_each_new_row_to_its_first_step(
    admin: Any, rt: Any, sent_by_api: list[Any]
) -> None:
    from tasks.locking import from_snapshot, lock_execution

    event_type = f"opt.{unique('e')}"
    create_workflow(admin, set_then_allow(event_type))
    events = [{"event_type": event_type, "payload": {"n": n}} for n in range(3)]
    response = admin.post(f"{API}/events/batch", {"events": events})
    assert response.status_code == 207, response.json
    assert len(sent_by_api) == 3
    with rt.autocommit_engine.connect() as connection:
        for ticket in sent_by_api:
            read = lock_execution(connection, **ticket.attempt_key, lock=False)
            assert read is not None
            assert from_snapshot(ticket.execution_id, ticket.snapshot) == read[0]
    # Each first step carries its own event's context.
    assert len({ticket.snapshot["context"] for ticket in sent_by_api}) == 3
