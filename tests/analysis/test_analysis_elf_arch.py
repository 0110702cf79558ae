"""The architecture an ELF file is for, from its header: real files where the machine has them,
headers as the ELF specification lays them out for the others."""

from __future__ import annotations

import struct
import sys
import sysconfig
from pathlib import Path

import pytest

from build.analysis.elf import architecture


def header(*, bits: int, little: bool, machine: int, flags: int = 0) -> bytes:
    """An ELF header (ELF spec, figure 1-3): e_ident, then e_type, e_machine, e_version, entry/phoff/
    shoff (4 or 8 bytes each), e_flags."""
    order = "<" if little else ">"
    ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1 if little else 2, 1]) + bytes(9)
    word = "I" if bits == 32 else "Q"
    return ident + struct.pack(f"{order}HHI{word}{word}{word}I", 2, machine, 1, 0, 0, 0, flags) + bytes(16)


@pytest.mark.parametrize("bits, little, machine, flags, expected", [
    (64, True, 62, 0, "x86_64"), (64, True, 183, 0, "aarch64"), (32, True, 40, 0x05000400, "armv7"),
    (32, True, 40, 0x05000200, "arm"), (32, True, 3, 0, "i386"), (64, True, 243, 0, "riscv64"),
    (64, False, 22, 0, "s390x"), (64, True, 9999, 0, "e_machine 9999"),
])
def test_the_header_names_the_architecture(bits, little, machine, flags, expected):
    assert architecture(header(bits=bits, little=little, machine=machine, flags=flags)) == expected


@pytest.mark.parametrize("data", [b"", b"\x7fELF", b"MZ" + bytes(100), b"\x7fELF\x02\x07" + bytes(60)])
def test_what_is_not_a_whole_elf_header_has_no_architecture(data):
    assert architecture(data) is None


def test_this_machines_python_is_this_machines_architecture():
    # Python's own build says which machine it is for, independently of the ELF header.
    expected = {"x86_64-linux-gnu": "x86_64", "aarch64-linux-gnu": "aarch64",
                "arm-linux-gnueabihf": "armv7"}[sysconfig.get_config_var("MULTIARCH")]
    assert architecture(Path(sys.executable).resolve().read_bytes()[:64]) == expected
