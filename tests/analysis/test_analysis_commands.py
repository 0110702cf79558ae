"""What each command loads: rows attributed to the commands whose traced runs loaded them."""

from __future__ import annotations

from build.analysis.commands import command_costs, library_key
from build.analysis.model import Row


def row(name: str, kind: str, stored: int, module: str) -> Row:
    return Row(name=name, kind=kind, stored=stored, raw=stored, module=module, package=module.split(".")[0],
               distribution="x", guess=False, estimate=False)


ROWS = (
    row("PYZ/json", "module", 100, "json"),
    row("PYZ/sqlite3.dbapi2", "module", 40, "sqlite3.dbapi2"),
    row("lib-dynload/_sqlite3.cpython-311-x86_64-linux-gnu.so", "extension", 300, "_sqlite3"),
    row("libsqlite3.so.0", "library", 5000, "libsqlite3.so.0"),
    row("PYZ/app.commands.hello", "module", 7, "app.commands.hello"),
    row("[bootloader]", "bootloader", 900, "[bootloader]"),
)
MODULES = {"store": {"json", "sqlite3.dbapi2", "_sqlite3"}, "telemetry": {"json"}, "hello": {"app.commands.hello"}}
LIBRARIES = {"store": {"/usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6", "/lib/x86_64-linux-gnu/libc.so.6"},
             "telemetry": {"/lib/x86_64-linux-gnu/libc.so.6"}, "hello": set()}


def test_a_commands_own_rows_are_those_no_other_command_loads():
    costs = {c.command: c for c in command_costs(ROWS, MODULES, LIBRARIES)}
    # the shared library it maps and the extension it imports are store's alone; json is shared
    assert (costs["store"].loaded, costs["store"].own) == (5440, 5340)
    assert costs["store"].own_rows == ("libsqlite3.so.0", "lib-dynload/_sqlite3.cpython-311-x86_64-linux-gnu.so",
                                       "PYZ/sqlite3.dbapi2")
    assert (costs["telemetry"].loaded, costs["telemetry"].own) == (100, 0)
    assert (costs["hello"].loaded, costs["hello"].own) == (7, 7)
    # what no command loads (the bootloader) is nobody's; largest own bytes first
    assert [c.command for c in command_costs(ROWS, MODULES, LIBRARIES)] == ["store", "hello", "telemetry"]


def test_library_names_match_without_folder_or_version():
    assert library_key("/usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6") == library_key("libsqlite3.so.0") == "libsqlite3"
    assert library_key("_internal/libpython3.11.so.1.0") == "libpython3.11"
    assert library_key("libssl.so.3") != library_key("libcrypto.so.3")


def test_a_supervisors_loads_leave_its_workers_rows_their_own():
    modules = {**MODULES, "boss": {"json", "sqlite3.dbapi2", "_sqlite3"}}
    libraries = {**LIBRARIES, "boss": {"/usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6"}}
    shared = {c.command: c for c in command_costs(ROWS, modules, libraries)}
    assert shared["store"].own == 0  # boss loads the same as a worker would
    costs = {c.command: c for c in command_costs(ROWS, modules, libraries, bystanders=("boss",))}
    assert costs["store"].own == 5340 and costs["boss"].loaded == 5440 and costs["boss"].own == 0
