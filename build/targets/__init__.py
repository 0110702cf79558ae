"""Debian roots of other architectures and the proot + qemu launcher that runs them (issue 10).

arch (what each target is called where) -> sources (the machine's own Debian entry, for the root)
-> root (mmdebstrap, once per architecture, package set and sources, under the cache) -> emulation
(the proot argv: the root, the host folders bound at the same paths) -> venv (the pinned freezer
packages inside the root) -> toolchain (all of it as a `build.toolchain.Toolchain`).

`launcher.py` is a stand-alone script, not a module of this package: every launcher's first word.
"""
