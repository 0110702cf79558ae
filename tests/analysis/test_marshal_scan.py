"""build.analysis.marshal_scan reads marshalled data as plain data: the same answers as marshal on
real code and real PYZ tables, and on damaged or random bytes a ValueError or None, never a crash,
a hang, or an object marshal would have built (bounded Hypothesis, derandomized)."""

from __future__ import annotations

import marshal
import signal
from contextlib import contextmanager
import sysconfig
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from build.analysis.marshal_scan import Code, code_filename, read_data

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SAMPLES = sorted(STDLIB.glob("*.py"))[:60] + sorted((STDLIB / "json").glob("*.py"))
BOUNDED = settings(max_examples=300, deadline=None, derandomize=True, database=None)


@pytest.mark.parametrize("source", SAMPLES, ids=lambda p: p.name)
def test_the_file_name_of_real_code_is_what_marshal_says(source: Path) -> None:
    code = compile(source.read_text(encoding="utf-8"), str(source), "exec")
    assert code_filename(marshal.dumps(code)) == marshal.loads(marshal.dumps(code)).co_filename == str(source)


plain = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**100, 2**100), st.floats(allow_nan=False),
              st.text(max_size=30), st.binary(max_size=30)),
    lambda inner: st.one_of(st.lists(inner, max_size=4).map(tuple), st.lists(inner, max_size=4)),
    max_leaves=12)


def as_read(value: object) -> object:
    """What read_data returns for a value: lists as tuples."""
    if isinstance(value, (list, tuple)):
        return tuple(as_read(v) for v in value)
    return value


@given(plain)
@BOUNDED
def test_plain_data_reads_back_as_marshal_wrote_it(value: object) -> None:
    assert read_data(marshal.dumps(value)) == as_read(value)


PLAIN_LEAVES = (type(None), bool, int, float, complex, str, bytes, Code)


def only_plain_data(value: object) -> bool:
    """True if `value` is built of what read_data may build: plain values, tuples, Code (whose
    fields are plain too), marshal's StopIteration and Ellipsis singletons; nothing else."""
    if value is StopIteration or value is Ellipsis:
        return True
    if isinstance(value, tuple):
        return all(only_plain_data(v) for v in value)
    if isinstance(value, Code):
        return all(only_plain_data(v) for v in value.fields)
    return type(value) in PLAIN_LEAVES


@contextmanager
def no_hang(seconds: float = 10.0):
    """A hang fails the example instead of stalling the run (a bound far above any real read)."""
    def stop(signum, frame):
        raise TimeoutError(f"read_data did not return within {seconds} s")
    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


REAL_CODE = marshal.dumps(compile("import os\ndef f(x):\n    return {x: [1, 2.5, 'a']}\n", "m.py", "exec"))


@given(st.binary(max_size=400))
@example(REAL_CODE)  # a code object must come back as Code, never as a code object
@example(b"(\x01\x00\x00\x00" * 5000)  # nested deeper than any real table: refused, not a RecursionError
@example(b"{" + b"s\xfb\xff\xff\xff" * 80)  # a size that would step backwards
@BOUNDED
def test_random_bytes_are_a_value_error_or_plain_data(data: bytes) -> None:
    try:
        with no_hang():
            value = read_data(data)
    except ValueError:
        return
    assert only_plain_data(value), f"read_data built {type(value).__name__}: {value!r:.100}"


@given(st.data())
@BOUNDED
def test_damaged_code_gives_none_or_a_string(data: st.DataObject) -> None:
    blob = bytearray(REAL_CODE)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] ^= data.draw(st.integers(1, 255))
    if data.draw(st.booleans()):
        blob = blob[:data.draw(st.integers(0, len(blob)))]
    name = code_filename(bytes(blob))
    assert name is None or isinstance(name, str)


def test_a_code_object_is_never_built() -> None:
    value = read_data(marshal.dumps(compile("x = 1", "c.py", "exec")))
    assert isinstance(value, Code) and "c.py" in value.fields
