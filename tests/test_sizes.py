"""One rounding for byte counts: flash's messages and bloat's tables say the same size the same way."""

from build.sizes import fmt_size, format_bytes


def test_format_bytes_gives_the_exact_count_and_the_table_rounding() -> None:
    assert format_bytes(1023) == "1,023 bytes"
    assert format_bytes(1536) == "1,536 bytes (1.5KiB)"
    assert format_bytes(1_310_720) == f"1,310,720 bytes ({fmt_size(1_310_720)})" == "1,310,720 bytes (1.2MiB)"
