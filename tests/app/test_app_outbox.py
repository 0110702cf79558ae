"""app.outbox, the SQLite queue behind `store`, in-process: order, bounds, resumption, and files it
must refuse without touching them."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from app.outbox import APPLICATION_ID, Outbox, OutboxError, open_outbox
from conftest import ROOT


def payload(seq: int) -> str:
    return json.dumps({"seq": seq})


def sql(path: Path, statement: str) -> list[tuple]:
    """Run one statement as an independent program would, and close the file again (in WAL mode
    an open connection keeps a lock that store's exclusive one must wait for)."""
    with closing(sqlite3.connect(path)) as db, db:
        return db.execute(statement).fetchall()


def rows_of(path: Path) -> list[tuple[int, str, str]]:
    return sql(path, "SELECT seq, topic, payload FROM outbox ORDER BY seq")


def test_messages_come_back_oldest_first_and_acknowledged_ones_are_deleted(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    box = open_outbox(str(path), max_rows=100)
    seqs = [box.append(f"t/{i}", payload)[0] for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    assert box.after(0, 3) == [(1, "t/0", payload(1)), (2, "t/1", payload(2)), (3, "t/2", payload(3))]
    assert [seq for seq, _t, _p in box.after(3, 10)] == [4, 5]
    box.delete_through(2)
    assert (box.rows, [seq for seq, _t, _p in box.after(0, 10)]) == (3, [3, 4, 5])
    box.close()
    assert [seq for seq, _t, _p in rows_of(path)] == [3, 4, 5]
    assert sql(path, "PRAGMA application_id") == [(APPLICATION_ID,)]


def test_reopening_resumes_the_rows_and_the_sequence_even_when_all_were_deleted(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    box = open_outbox(path, max_rows=100)
    for _ in range(3):
        box.append("t", payload)
    box.delete_through(3)
    box.close()
    box = open_outbox(path, max_rows=100)
    assert (box.rows, box.last_seq) == (0, 3)
    assert box.append("t", payload)[0] == 4  # never 1 again: receivers would take it for a repeat
    box.close()


def test_max_rows_drops_the_oldest_in_the_same_commit(tmp_path: Path) -> None:
    box = open_outbox(str(tmp_path / "s.db"), max_rows=3)
    dropped = [box.append("t", payload)[1] for _ in range(6)]
    assert dropped == [[], [], [], [1], [2], [3]]
    assert box.rows == 3
    assert [seq for seq, _t, _p in box.after(0, 10)] == [4, 5, 6]
    box.close()
    # A smaller bound on an existing file: the next append makes room for itself and more.
    box = open_outbox(str(tmp_path / "s.db"), max_rows=2)
    assert box.append("t", payload) == (7, [4, 5])
    box.close()


def test_a_failing_payload_leaves_nothing_behind(tmp_path: Path) -> None:
    box = open_outbox(str(tmp_path / "s.db"), max_rows=100)
    box.append("t", payload)

    def broken(seq: int) -> str:
        raise RuntimeError("no reading")

    with pytest.raises(RuntimeError):
        box.append("t", broken)
    assert (box.rows, box.last_seq, box.append("t", payload)[0]) == (1, 1, 2)
    box.close()


def test_a_second_process_is_refused_while_the_first_holds_the_file(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    box = open_outbox(path, max_rows=10)
    box.append("t", payload)
    probe = ("import sys\nsys.path.insert(0, %r)\nfrom app.outbox import open_outbox, OutboxError\n"
             "try:\n    open_outbox(%r, 10)\nexcept OutboxError as exc:\n    print(exc)\n" % (str(ROOT), path))
    other = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert other.stdout.strip() == "is in use by another process (SQLite: database is locked)", other.stderr
    box.close()
    again = open_outbox(path, max_rows=10)  # the lock went with the first owner
    assert again.rows == 1
    again.close()


def _sqlite_of_another_program(path: Path) -> None:
    sql(path, "CREATE TABLE readings (x)")


@pytest.mark.parametrize("make, target, reason", [
    (lambda d: d.mkdir(), "x", "is a folder; give the path of a file in it"),
    (lambda d: None, "missing/s.db", "folder {tmp}/missing does not exist"),
    (lambda d: d.write_text("sensor,value\n1,2\n" * 200), "x", "is not an SQLite database (SQLite: file is not a database)"),
    (_sqlite_of_another_program, "x", "is an SQLite database of another program (not made by store); "
                                       "give a new file or one store made"),
    (lambda d: d.symlink_to("/dev/null"), "x", "is not a regular file"),
])
def test_unusable_files_are_refused_and_left_as_they_were(tmp_path: Path, make, target: str, reason: str) -> None:
    path = tmp_path / target
    if target == "x":
        make(path)
    before = sorted((p.name, p.read_bytes() if p.is_file() else None) for p in tmp_path.iterdir())
    with pytest.raises(OutboxError) as caught:
        open_outbox(str(path), max_rows=10)
    assert str(caught.value) == reason.format(tmp=tmp_path)
    after = sorted((p.name, p.read_bytes() if p.is_file() else None) for p in tmp_path.iterdir())
    assert after == before  # not written to, no -wal or empty file left behind


def test_a_store_file_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    open_outbox(str(path), max_rows=10).close()
    sql(path, "PRAGMA user_version = 99")
    with pytest.raises(OutboxError, match=r"is a store database of another version \(99, expected 1\)"):
        open_outbox(str(path), max_rows=10)


def test_an_empty_existing_file_becomes_an_outbox(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.touch()  # e.g. made by an installer
    box = open_outbox(str(path), max_rows=10)
    assert isinstance(box, Outbox) and box.append("t", payload)[0] == 1
    box.close()
    assert len(rows_of(path)) == 1


def test_a_write_that_fails_is_an_outbox_error_and_changes_nothing(tmp_path: Path) -> None:
    """A full disk, seen through SQLite's own limit on the file's size (max_page_count)."""
    box = open_outbox(str(tmp_path / "s.db"), max_rows=1000)
    box.append("t", payload)
    pages = box._db.execute("PRAGMA page_count").fetchone()[0]  # noqa: SLF001 - no public way to fill a disk
    box._db.execute(f"PRAGMA max_page_count = {pages}")  # noqa: SLF001
    with pytest.raises(OutboxError, match=r"^cannot store message 2: SQLite: database or disk is full$"):
        box.append("t", lambda seq: "x" * 100_000)
    assert (box.rows, box.last_seq, [seq for seq, _t, _p in box.after(0, 10)]) == (1, 1, [1])
    box.close()
