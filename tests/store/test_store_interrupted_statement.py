"""Ctrl-C in the middle of a statement: SQLAlchemy takes the interrupt for a lost connection and
closes it, while SQLite keeps that connection's write lock until its statement is freed. The
clean-up after an interrupt writes to the store (a pull forgets the reconcile state, the run is
recorded as interrupted) with the interrupt still in flight: it must not wait on that lock
(30 s of busy timeout, then "database is locked"; a Ctrl-C'd demo hung so)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event

from sync.store import Store


def test_a_write_interrupted_mid_statement_leaves_no_lock_for_the_clean_up(
    tmp_path: Path,
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'crmsync.db'}")

    def ctrl_c(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT"):  # the statement has run
            raise KeyboardInterrupt

    event.listen(store.engine, "after_cursor_execute", ctrl_c)
    interrupted = False
    try:
        store.mark_pending("hubspot", ["1", "2"])
    except KeyboardInterrupt:
        interrupted = True
        event.remove(store.engine, "after_cursor_execute", ctrl_c)
        # as a `finally:` does, the interrupt in flight: the lock held, this fails after 30 s
        store.forget_reconcile_state()
    assert interrupted
    assert store.pending() == {}, "the interrupted write was rolled back"
    store.close()
