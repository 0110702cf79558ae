"""CPython built for size from Debian's own source package (issue 11): the `runtime = "size"` toolchain.

sources (deb-src entry, download, .dsc checksums, unpack) -> flags (the measured flag set, the cache
key) -> exports (the symbols the bundled extension modules and the bootloader import) -> compile
(configure, make, relink, install, strip into work/.cache/runtime/<key>/) -> toolchain (a venv of that
Python with the pinned packages, as a `build.toolchain.Toolchain`).
"""
