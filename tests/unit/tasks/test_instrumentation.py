"""Statement labels of db_query_duration_seconds, prepared statements included."""

from __future__ import annotations

from models.prepared import PreparedStatement
from tasks.instrumentation import classify

_COUNT_RUNS = PreparedStatement(
    "iw_test_count_runs", "SELECT count(*) FROM step_runs WHERE execution_id = %(id)s"
)


def test_a_plain_statement_is_labelled_by_its_verb_and_table() -> None:
    assert classify("DELETE FROM dispatch_outbox WHERE id = 1") == ("delete", "dispatch_outbox")


def test_an_execute_is_labelled_like_the_statement_it_runs() -> None:
    assert classify(_COUNT_RUNS.execute_sql) == ("select", "step_runs")


def test_an_execute_of_an_unknown_statement_is_other() -> None:
    assert classify("EXECUTE nobody_prepared_this(1)") == ("other", "other")
