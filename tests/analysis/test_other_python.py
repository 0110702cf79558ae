"""Asking another interpreter about itself (bloat --python): its JSON answer, or None."""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

from build.analysis import other_python
from build.analysis.debug_copies import python_dirs
from build.analysis.dist_metadata import python_site_packages


def test_an_interpreter_answers_in_json() -> None:
    assert other_python.ask(sys.executable, "import json, sys; print(json.dumps(sys.prefix))") == sys.prefix


def test_no_answer_from_what_cannot_run_fails_or_prints_no_json(tmp_path: Path) -> None:
    assert other_python.ask(str(tmp_path / "missing"), "print(1)") is None
    assert other_python.ask(sys.executable, "raise SystemExit(3)") is None
    assert other_python.ask(sys.executable, "print('not json')") is None


def test_another_pythons_folders_are_the_ones_it_reports_itself() -> None:
    # -I: the answer is the interpreter's own, independent of this process's sys.path
    assert Path(sysconfig.get_config_var("LIBDIR")) in python_dirs(sys.executable)
    assert sysconfig.get_paths()["purelib"] in python_site_packages(sys.executable)
