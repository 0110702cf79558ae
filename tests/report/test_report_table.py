"""Golden terminal tables (cargo-bloat style) rendered from a fixed model at a fixed width."""

from __future__ import annotations

from dataclasses import replace

from build.analysis.model import Link, Row, Section, SizeReport
from build.analysis.ops import diff_reports
from build.report.table import crates_table, diff_table, fmt_size, render, rows_table


def sample_report(name: str = "slimfreeze", extra: tuple[Row, ...] = ()) -> SizeReport:
    rows = (
        Row(name="libpython3.11.so.1.0", kind="library", stored=1_800_000, raw=5_700_000, module="libpython3.11.so.1.0",
            package="libpython3.11", distribution="python-runtime",
            children=(Section(name="code", stored=900_000, raw=2_300_000), Section(name="rodata", stored=500_000, raw=1_900_000),
                      Section(name="data", stored=300_000, raw=1_400_000), Section(name="other", stored=100_000, raw=100_000))),
        Row(name="[bootloader]", kind="bootloader", stored=72_530, raw=72_530, module="[bootloader]", package="[bootloader]",
            distribution="pyinstaller"),
        Row(name="PYZ.pyz/paho.mqtt.client", kind="module", stored=65_536, raw=178_700, module="paho.mqtt.client",
            package="paho", distribution="paho-mqtt"),
        Row(name="base_library.zip/enum.pyc", kind="module", stored=32_600, raw=77_800, module="enum", package="enum",
            distribution="python-runtime", estimate=True),
        Row(name="PYZ.pyz/mystery", kind="module", stored=1_000, raw=2_000, module="mystery", package="mystery",
            distribution="app", guess=True),
        Row(name="<script>alert(1)</script>", kind="data", stored=290, raw=290, module="<script>alert(1)</script>",
            package="<script>alert(1)</script>", distribution="unknown", guess=True),
        Row(name="[archive index]", kind="index", stored=4_664, raw=4_664, module="[archive index]",
            package="[archive index]", distribution="pyinstaller"),
        *extra,
    )
    return SizeReport(artifact=name, format="pyinstaller-onefile", total_stored=sum(r.stored for r in rows),
                      total_raw=sum(r.raw for r in rows), rows=rows, links=(Link(path="telemetry", target="slimfreeze"),),
                      notes=("Stored sizes marked ~ are estimates.",), manifest=None)


ROWS_GOLDEN = """\
  File    Stored       Raw  Distribution    Name
 91.1%    1.7MiB    5.4MiB  python-runtime  libpython3.11.so.1.0
  3.7%   70.8KiB   70.8KiB  pyinstaller     [bootloader]
  3.3%   64.0KiB  174.5KiB  paho-mqtt       PYZ.pyz/paho.mqtt.client
  1.6%  ~31.8KiB   76.0KiB  python-runtime  base_library.zip/enum.pyc
  0.3%    5.8KiB    6.8KiB                  And 3 more rows. Use -n N to show more.
100.0%    1.9MiB    5.8MiB                  Total: 1,976,620 bytes (slimfreeze, pyinstaller-onefile)
Links (0 bytes each): telemetry -> slimfreeze
Note: Stored sizes marked ~ are estimates.
"""

CRATES_GOLDEN = """\
  File   Stored       Raw  Distribution    Rows
 92.7%  ~1.7MiB    5.5MiB  python-runtime     2
  3.9%  75.4KiB   75.4KiB  pyinstaller        2
  3.3%  64.0KiB  174.5KiB  paho-mqtt          1
  0.1%    1000B    2.0KiB  app?               1
  0.0%     290B      290B  unknown?           1
100.0%   1.9MiB    5.8MiB  Total              7
Links (0 bytes each): telemetry -> slimfreeze
Note: Stored sizes marked ~ are estimates.
"""

FILTERED_GOLDEN = """\
  File    Stored       Raw  Distribution    Name
 91.1%    1.7MiB    5.4MiB  python-runtime  libpython3.11.so.1.0
        878.9KiB    2.2MiB                    code
        488.3KiB    1.8MiB                    read-only data
        293.0KiB    1.3MiB                    data
         97.7KiB   97.7KiB                    headers, notes, gaps
  3.3%   64.0KiB  174.5KiB  paho-mqtt       PYZ.pyz/paho.mqtt.client
  1.6%  ~31.8KiB   76.0KiB  python-runtime  base_library.zip/enum.pyc
  4.0%   76.6KiB   77.6KiB                  4 rows not matching --filter paho|python-runtime
100.0%    1.9MiB    5.8MiB                  Total: 1,976,620 bytes (slimfreeze, pyinstaller-onefile)
Links (0 bytes each): telemetry -> slimfreeze
Note: Stored sizes marked ~ are estimates.
"""

DIFF_GOLDEN = """\
Change      Delta      Old      New  Distribution   Name
grew      +4.9KiB  64.0KiB  68.9KiB  paho-mqtt      PYZ.pyz/paho.mqtt.client
appeared  +2.9KiB       0B   2.9KiB  python-stdlib  PYZ.pyz/json
vanished   -1000B    1000B       0B  app            PYZ.pyz/mystery
total     +6.8KiB   1.9MiB   1.9MiB                 +7,000 bytes (slimfreeze -> new)
1 grew, 0 shrank, 1 appeared, 1 vanished, 5 unchanged
"""


def test_rows_table_golden() -> None:
    assert render(rows_table(sample_report(), n=4), width=100) == ROWS_GOLDEN


def test_crates_table_golden() -> None:
    assert render(crates_table(sample_report()), width=100) == CRATES_GOLDEN


def test_filtered_table_with_sections_golden() -> None:
    table = rows_table(sample_report(), n=0, pattern="paho|python-runtime", sections=True, sort="raw")
    assert render(table, width=100) == FILTERED_GOLDEN


def test_diff_table_golden() -> None:
    old = sample_report()
    rows = tuple(replace(r, stored=r.stored + 5000) if r.name == "PYZ.pyz/paho.mqtt.client" else r
                 for r in old.rows if r.name != "PYZ.pyz/mystery")
    rows += (Row(name="PYZ.pyz/json", kind="module", stored=3000, raw=9000, module="json", package="json",
                 distribution="python-stdlib"),)
    new = replace(old, artifact="new", rows=rows, total_stored=sum(r.stored for r in rows),
                  total_raw=sum(r.raw for r in rows))
    assert render(diff_table(diff_reports(old, new)), width=100) == DIFF_GOLDEN


def test_total_line_is_the_artifact_size_and_shares_add_up() -> None:
    report = sample_report()
    text = render(rows_table(report, n=2), width=100)
    assert f"Total: {report.total_stored:,} bytes" in text
    shares = [float(line.split("%")[0]) for line in text.splitlines()[1:4]]
    assert abs(sum(shares) - 100.0) < 0.2  # two rows + "And N more" = the whole file


def test_hostile_names_are_printed_verbatim() -> None:
    text = render(rows_table(sample_report(), n=0), width=100)
    assert "<script>alert(1)</script>" in text  # as text; rich markup is not interpreted in names
    tricky = sample_report(extra=(Row(name="[bold red]x[/]", kind="data", stored=1, raw=1, module="m", package="p",
                                      distribution="lib[red]y"),))
    text = render(rows_table(tricky, n=0), width=100)
    assert "[bold red]x[/]" in text and "lib[red]y" in text
    assert "lib[red]y" in render(crates_table(tricky), width=100)


def test_fmt_size() -> None:
    assert [fmt_size(n) for n in (0, 1023, 1024, 1536, 1048576, 5 * 1048576 + 1)] == [
        "0B", "1023B", "1.0KiB", "1.5KiB", "1.0MiB", "5.0MiB"]
    assert fmt_size(-2048, signed=True) == "-2.0KiB" and fmt_size(10, signed=True) == "+10B"


CONTROLS = [*range(0x20), 0x7F, *range(0x80, 0xA0)]


def test_every_control_character_in_a_name_is_shown_as_one_escape_in_every_table() -> None:
    """rich drops some control characters (BEL, backspace, CR) and passes others (ESC) through;
    every one must reach the terminal as the same kind of escape, in rows, diffs, links and notes."""
    from build.analysis.model import Link
    from build.report.table import visible

    for code in CONTROLS:
        char = chr(code)
        name = f"a{char}b"
        shown = "a" + {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}.get(code, f"\\x{code:02x}") + "b"
        assert visible(name) == shown
        extra = (Row(name=name, kind="data", stored=10**7, raw=10**7, module="m", package="p", distribution="d"),)
        report = replace(sample_report(extra=extra), links=(Link(path=name, target="slimfreeze"),), notes=(name,))
        old = sample_report()
        texts = [render(rows_table(report, n=1), width=200),
                 render(diff_table(diff_reports(old, report), n=50), width=200)]
        for text in texts:
            assert shown in text, (code, text)
            assert not any(c in text.replace("\n", "") for c in map(chr, CONTROLS)), code
        assert f"Links (0 bytes each): {shown} -> slimfreeze" in texts[0]
        assert f"Note: {shown}" in texts[0]
