"""models.rows.InsertBatch: the INSERTs of several tables in one round trip, all or nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, ForeignKey, create_engine, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from models.rows import InsertBatch, JsonText
from tests.support import recorded_statements


class _Base(DeclarativeBase):
    pass


class _Parent(_Base):
    __tablename__ = "test_batch_parents"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    doc: Mapped[dict[str, Any]] = mapped_column(JSONB)


class _Child(_Base):
    __tablename__ = "test_batch_children"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    parent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("test_batch_parents.id"))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    _Base.metadata.create_all(engine)
    yield engine
    _Base.metadata.drop_all(engine)
    engine.dispose()


def test_rows_of_several_tables_go_in_one_round_trip(engine: Engine) -> None:
    parents = [uuid.uuid4(), uuid.uuid4()]
    batch = InsertBatch()
    batch.add(_Parent, [{"id": p, "doc": {"n": i}} for i, p in enumerate(parents)])
    batch.add(_Child, [{"parent_id": p} for p in parents], returning=("id", "parent_id"))
    with Session(engine) as session:
        with recorded_statements(engine) as sent:
            returned = batch.send(session)
        session.commit()
        assert len(sent) == 1
        children = session.execute(select(_Child.id, _Child.parent_id)).all()
        docs = session.execute(select(_Parent.doc).order_by(_Parent.doc["n"])).scalars().all()

    assert sorted(returned) == sorted(tuple(row) for row in children)
    assert {parent for _, parent in returned} == set(parents)
    assert docs == [{"n": 0}, {"n": 1}]
    assert not batch  # sent batches are empty


def test_a_failing_first_insert_writes_none_of_the_later_rows(engine: Engine) -> None:
    taken = uuid.uuid4()
    with Session(engine) as session:
        session.add(_Parent(id=taken, doc={}))
        session.commit()
    batch = InsertBatch()
    batch.add(_Parent, [{"id": taken, "doc": {}}])
    batch.add(_Child, [{"parent_id": taken}])

    with Session(engine) as session, pytest.raises(IntegrityError):
        batch.send(session)
    with Session(engine) as session:
        assert session.execute(select(_Child)).first() is None


def test_json_text_is_stored_as_it_is(engine: Engine) -> None:
    batch = InsertBatch()
    batch.add(_Parent, [{"id": uuid.uuid4(), "doc": JsonText('{"already": ["json"]}')}])
    with Session(engine) as session:
        batch.send(session)
        assert session.execute(select(_Parent.doc)).scalar_one() == {"already": ["json"]}


def test_only_the_last_insert_may_return_rows() -> None:
    batch = InsertBatch()
    batch.add(_Parent, [{"id": uuid.uuid4(), "doc": {}}], returning=("id",))

    with pytest.raises(ValueError, match="last INSERT"):
        batch.add(_Child, [{"parent_id": uuid.uuid4()}])


def test_on_an_autocommit_connection_the_batch_is_its_own_transaction(
    engine: Engine, database_url: str
) -> None:
    """The events API sends an event's rows this way: a later INSERT that fails (here
    the children's foreign key) leaves none of the earlier rows behind."""
    autocommit = create_engine(database_url, isolation_level="AUTOCOMMIT")
    parent = uuid.uuid4()
    batch = InsertBatch()
    batch.add(_Parent, [{"id": parent, "doc": {}}])
    batch.add(_Child, [{"parent_id": parent}, {"parent_id": uuid.uuid4()}])
    try:
        with (
            autocommit.connect() as connection,
            Session(bind=connection) as session,
            pytest.raises(IntegrityError),
        ):
            batch.send(session)
        with Session(engine) as session:
            assert session.execute(select(_Parent)).first() is None
            assert session.execute(select(_Child)).first() is None

        batch.add(_Parent, [{"id": parent, "doc": {}}])
        batch.add(_Child, [{"parent_id": parent}])
        with autocommit.connect() as connection, Session(bind=connection) as session:
            batch.send(session)  # no commit: each query commits on its own
        with Session(engine) as session:
            assert session.execute(select(_Child.parent_id)).scalar_one() == parent
    finally:
        autocommit.dispose()
