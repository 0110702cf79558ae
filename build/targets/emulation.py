"""The argv prefix that runs a program inside a target root: launcher.py, proot -q qemu, env.

Why proot: a PyInstaller onefile re-executes itself, and without binfmt_misc (not available here,
and not to be needed) only proot's `-q` hands that exec to qemu again; plain `qemu-*-static -L ROOT`
fails at it. Host folders are bound at the same paths inside, so every path the pipeline passes
(project, work, dist, reports, cache, /tmp) means the same file on both sides, and 127.0.0.1 is the
host's: the artifact reaches the host's mosquitto as it does natively.

pip inside the root uses the machine's own pip configuration and certificates: the config files,
the files and folders their values name (a CA bundle, a constraints file, a find-links folder), and
the CA bundle the environment names are bound too. Nothing of the guest's own software is ever
hidden by a bind (see `guest_owned`).
"""

from __future__ import annotations

import configparser
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath

from build.project import Project
from build.targets.arch import Arch

LAUNCHER = Path(__file__).with_name("launcher.py")
# Always bound: devices and kernel views, the shared temp folder, name resolution, certificates.
SYSTEM_BINDS = ("/dev", "/proc", "/sys", "/tmp", "/etc/resolv.conf", "/etc/hosts", "/etc/ssl/certs",
                "/usr/share/ca-certificates")
# Folders whose content is the guest's own software: a bind there would replace it with the host's.
GUEST_OWNED = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/var/lib", "/boot")
GUEST_OWNED_EXACT = ("/", "/etc", "/var", "/opt", "/home", "/root", "/srv", "/run")
ALLOWED_UNDER_GUEST = ("/usr/share/ca-certificates",)
CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE")
# pip settings whose values are paths or file:// URLs of the host.
PIP_PATH_KEYS = ("cert", "client-cert", "constraint", "constraints", "requirement", "find-links", "index-url",
                 "extra-index-url", "build-constraint")
INDEX_KEYS = ("index-url", "extra-index-url")
GUEST_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
# tmpfs, for armv7: a 32-bit guest's readdir() of a host ext4 folder fails (the 64-bit kernel hands
# qemu 64-bit directory offsets), so a onefile's bootloader could not delete its _MEI folder on exit.
TMPFS = "/dev/shm"


def guest_owned(path: PurePosixPath) -> bool:
    """True for a path whose bind would hide the guest's own software or system folders."""
    text = str(path)
    if text in GUEST_OWNED_EXACT:
        return True
    if any(text == allowed or text.startswith(allowed + "/") for allowed in ALLOWED_UNDER_GUEST):
        return False
    return any(text == owned or text.startswith(owned + "/") for owned in GUEST_OWNED)


def minimal(paths: Iterable[PurePosixPath]) -> list[PurePosixPath]:
    """Sorted, without duplicates and without paths inside another listed one."""
    unique = sorted(set(paths), key=lambda p: (len(p.parts), str(p)))
    kept: list[PurePosixPath] = []
    for path in unique:
        if not any(path == k or k in path.parents for k in kept):
            kept.append(path)
    return sorted(kept)


def path_values(value: str, *, index: bool = False) -> list[PurePosixPath]:
    """Host paths a pip setting names: absolute paths and file:// URLs, one or several (space/newline).
    A local index's pages link to files beside its `simple/` folder, so for an index its parent."""
    found = []
    for token in value.split():
        token = token.removeprefix("file://")
        if token.startswith("/"):
            path = PurePosixPath(os.path.normpath(token))
            found.append(path.parent if index and path.name == "simple" else path)
    return found


def pip_config_paths(texts: Iterable[str], environ: Mapping[str, str]) -> list[PurePosixPath]:
    """Host paths named by pip configuration files' texts and PIP_* variables (pure)."""
    found: list[PurePosixPath] = []
    for text in texts:
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(text)
        except configparser.Error:
            continue  # pip would refuse it too; nothing of it to bind
        for section in parser.sections():
            for key, value in parser.items(section):
                if key in PIP_PATH_KEYS:
                    found += path_values(value, index=key in INDEX_KEYS)
    for name, value in environ.items():
        key = name[4:].lower().replace("_", "-")
        if name.startswith("PIP_") and key in PIP_PATH_KEYS:
            found += path_values(value, index=key in INDEX_KEYS)
    return found


def pip_config_files(environ: Mapping[str, str], home: Path) -> list[Path]:
    """Where pip reads configuration on Linux (site, user, and $PIP_CONFIG_FILE)."""
    xdg_dirs = environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    xdg_home = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    files = [Path("/etc/pip.conf"), *(Path(d) / "pip" / "pip.conf" for d in xdg_dirs if d),
             xdg_home / "pip" / "pip.conf", home / ".pip" / "pip.conf"]
    if environ.get("PIP_CONFIG_FILE"):
        files.append(Path(environ["PIP_CONFIG_FILE"]))
    return files


def host_binds(project: Project, environ: Mapping[str, str] = os.environ, home: Path | None = None) -> list[str]:
    """The host paths bound into every root: system views, the project's folders, pip's configuration
    and certificates (only those that exist; none that would hide the guest's own software)."""
    wanted = [PurePosixPath(p) for p in SYSTEM_BINDS]
    wanted += [PurePosixPath(p) for p in (project.root, project.work_root, project.dist_root,
                                          project.reports_root, project.cache_root)]
    configs = [f for f in pip_config_files(environ, home or Path.home()) if f.is_file()]
    wanted += [PurePosixPath(f) for f in configs]
    texts = []
    for config in configs:
        try:
            texts.append(config.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    wanted += pip_config_paths(texts, environ)
    wanted += [PurePosixPath(environ[v]) for v in CA_VARIABLES if environ.get(v, "").startswith("/")]
    kept = [p for p in wanted if str(p) in SYSTEM_BINDS or not guest_owned(p)]
    return [str(p) for p in minimal(kept) if os.path.exists(p)]


def guest_env(arch: Arch, venv_bin: str | None) -> dict[str, str]:
    """Variables set inside the guest for every program: its own PATH (the venv's first, then the
    root's: PyInstaller's strip must be the target's binutils, never the host's), and for 32-bit ARM
    a tmpfs TMPDIR (see TMPFS)."""
    env = {"PATH": ":".join([*([venv_bin] if venv_bin else []), *GUEST_PATH])}
    if arch.name == "armv7":
        env["TMPDIR"] = TMPFS
    return env


def launcher_argv(*, root: Path, proot: str, qemu: str, binds: Sequence[str],
                  env: Mapping[str, str], python: str = sys.executable) -> tuple[str, ...]:
    """The prefix before a guest program's absolute path (pure)."""
    argv = [python, str(LAUNCHER), proot, "-q", qemu, "-r", str(root)]
    for bind in binds:
        argv += ["-b", bind]
    argv += ["/usr/bin/env", *(f"{k}={v}" for k, v in env.items())]
    return tuple(argv)
