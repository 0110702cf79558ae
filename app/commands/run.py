"""`run`: several commands as workers of one supervisor process, sharing one runtime's memory.

    run [--restart-delay S] [--max-restarts N] [MQTT options] COMMAND[:ARGS] ...

The supervisor imports the listed commands and everything they use at run time once, moves those
objects out of the garbage collector's reach (gc.freeze) and forks one worker per command. Each
worker runs the command's main() exactly as `<prog> COMMAND ARGS` would, but the pages holding the
imported code and objects stay shared copy-on-write instead of being loaded once per process.

Worker life cycle: a worker that fails (non-zero exit, killed by a signal) is forked again after
--restart-delay, doubled after each failure in a row up to 60 s; one that exits 0 (its --count was
reached, or it was told to stop) is done. Exit status 2 is a usage or configuration error, which a
restart cannot fix: the supervisor stops the others and exits 2. SIGTERM/SIGINT are passed on to the
workers; the supervisor waits for them (at most STOP_TIMEOUT, then SIGKILL) and exits 0 when every
one stopped cleanly.

The parent never connects, never starts a thread and never installs a signal handler: it blocks
SIGCHLD/SIGTERM/SIGINT and takes them synchronously with sigtimedwait(), so a fork can never
happen half-way through a handler or with a lock held by another thread.
"""

import gc
import os
import signal
import sys
import time
from collections.abc import Mapping  # loaded by app.settings anyway

DESCRIPTION = """\
Run several commands as workers of one supervisor process. It imports them once, freezes
the imported objects (gc.freeze) and forks one worker per command, so the workers share
the runtime's memory. A worker that fails (non-zero exit or killed by a signal) is
restarted after --restart-delay, doubled after each failure in a row up to 60 s; one that
exits 0 (e.g. its --count was reached) is not; exit status 2 (a usage or configuration
error) stops all workers. SIGTERM/SIGINT are passed on to the workers; the exit status is
0 once all of them stopped cleanly."""
EPILOG = """\
COMMAND[:ARGS]: a command and, after a colon, its own options separated by spaces
(quote them): 'telemetry:--interval 30 --disk-path /data' or heartbeat:--interval=5.
Values cannot contain spaces. Each command may be listed once. The MQTT options above
(and their environment variables) apply to every worker; a worker's own options win.
A worker's client id is <device id>-<command>, so do not set a shared --client-id.

examples:
  {prog} telemetry heartbeat control
  {prog} --host broker.lan 'telemetry:--interval 30' heartbeat:--interval=5 control

Each MQTT option can also be set by the environment variable shown (empty counts as
unset); the flag wins."""

RESTART_DELAY_MAX = 60.0   # cap of the doubling restart delay (unless --restart-delay is larger)
STABLE_AFTER = 10.0        # a worker that ran this long before failing starts its backoff afresh
REAP_POLL = 0.5            # longest sleep between looks for exited workers (see _wait_signal)
STOP_TIMEOUT = 20.0        # longer than the workers' default --ack-timeout (10 s) for their last messages
# What the MQTT commands import inside main(); loaded here, before the fork, so that every worker
# shares it instead of importing its own copy. A command that needs more declares it in its own
# module's PRELOAD (store: sqlite3), loaded only when that command is one of the workers, so that
# the others do not pay for it. A test checks that the workers import nothing else.
PRELOAD = ("argparse", "json", "logging", "app.settings", "app.sysinfo", "app.mqtt")
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_WAITED = {signal.SIGCHLD, *_STOP_SIGNALS}


def main(args: list[str], prog: str) -> int:
    # Before anything is imported: no collection may run in the parent from now on, so the objects
    # the workers inherit are never moved or written to by the collector (see gc.freeze's docs).
    gc.disable()
    import argparse

    from app import settings

    p = settings.parser(prog, DESCRIPTION)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG.format(prog=prog)
    p.add_argument("workers", nargs="+", metavar="COMMAND[:ARGS]",
                   help="commands to run, each with its own options after a colon (see below)")
    p.add_argument("--restart-delay", type=settings.positive_seconds, default=1.0, metavar="SECONDS",
                   help="wait before restarting a failed worker; doubled after each failure in a row, "
                        f"up to {RESTART_DELAY_MAX:g} s (default: 1)")
    p.add_argument("--max-restarts", type=_non_negative_int, metavar="N",
                   help="stop everything and exit 1 when a worker fails again after N restarts in a row "
                        "(default: restart forever)")
    ns = p.parse_intermixed_args(args)  # shared options may come before, between or after the commands
    try:
        shared = settings.resolve(ns, command="run", environ=os.environ)  # check the shared values once, here
        workers = [Worker(name, worker_args) for name, worker_args in map(parse_worker, ns.workers)]
        check_workers(workers, ns, os.environ)
    except ValueError as exc:
        p.error(str(exc))
    for worker in workers:
        if not _import_command(worker.name):
            p.error(f"command '{worker.name}' is not included in this build")
    extra = [name for w in workers for name in getattr(sys.modules[f"app.commands.{w.name}"], "PRELOAD", ())]
    for module_name in (*PRELOAD, *extra):
        try:
            __import__(module_name)
        except ModuleNotFoundError:
            pass  # a build without it has no command that needs it
    _export_flags(ns, settings)
    settings.configure_logging(shared.log_level)
    return Supervisor(workers, prog=prog, restart_delay=ns.restart_delay, max_restarts=ns.max_restarts).run()


# ---- pure helpers ----

def parse_worker(text: str) -> tuple[str, list[str]]:
    """`telemetry:--interval 5 --count=3` -> ("telemetry", ["--interval", "5", "--count=3"])."""
    name, _sep, rest = text.partition(":")
    return name, rest.split()


def check_workers(workers: list["Worker"], ns: object, environ: Mapping[str, str]) -> None:
    """Raise ValueError (one line) for a worker list the supervisor cannot run."""
    from app.cli import COMMANDS, available

    seen = set()
    for worker in workers:
        if worker.name == "run":
            raise ValueError("'run' cannot run itself; list the commands to run")
        if worker.name not in COMMANDS:
            choices = ", ".join(c for c in available() if c != "run")
            raise ValueError(f"unknown command '{worker.name}'; choose from: {choices}")
        if worker.name in seen:
            raise ValueError(f"command '{worker.name}' is listed twice; its workers would share one client id")
        seen.add(worker.name)
    if getattr(ns, "client_id", None) is not None or environ.get("MQTT_CLIENT_ID", ""):
        raise ValueError("a shared --client-id (MQTT_CLIENT_ID) would give every worker the same client id; "
                         "give it per command (telemetry:--client-id=ID) or leave it unset")


def restart_delay(base: float, failures: int) -> float:
    """Seconds to wait before the restart after `failures` failures in a row (1, 2, ...)."""
    return min(base * 2 ** min(failures - 1, 32), max(RESTART_DELAY_MAX, base))


def describe_status(code: int) -> str:
    """os.waitstatus_to_exitcode()'s result in words: "exited with status 1", "was killed by SIGKILL"."""
    if code >= 0:
        return f"exited with status {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"


def child_prog(prog: str, name: str) -> str:
    """The prog a worker gets: `python -m app run` -> `python -m app telemetry` (as if started alone)."""
    base = prog[:-len("run")].rstrip() if prog == "run" or prog.endswith(" run") else prog
    return f"{base} {name}".lstrip()


def _non_negative_int(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


# ---- the supervisor (parent process) ----

class Worker:
    """One command run by the supervisor, and the state of its current process."""

    __slots__ = ("name", "args", "pid", "started_at", "failures", "restart_at", "done")

    def __init__(self, name: str, args: list[str]) -> None:
        self.name = name
        self.args = args
        self.pid = 0              # 0: not running
        self.started_at = 0.0
        self.failures = 0         # failures in a row
        self.restart_at = None    # time.monotonic() of the next start, while waiting to restart
        self.done = False         # exited 0, or given up: never started again


class Supervisor:
    def __init__(self, workers: list[Worker], *, prog: str, restart_delay: float, max_restarts: int | None) -> None:
        import logging

        self.workers = workers
        self.prog = prog
        self.restart_delay = restart_delay
        self.max_restarts = max_restarts
        self.log = logging.getLogger("app.run")
        self.by_pid: dict[int, Worker] = {}
        self.status = 0             # the exit status, worst first: 2 > 1 > 0
        self.stop_signal = None     # the signal passed on to the workers once stopping
        self.stop_deadline = None
        self.killed = False
        self.modules_at_fork = frozenset()

    def run(self) -> int:
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WAITED)
        try:
            for worker in self.workers:
                self._start(worker, old_mask)
            while self.by_pid or any(w.restart_at is not None for w in self.workers):
                info = self._wait_signal()
                if info is not None and info.si_signo in _STOP_SIGNALS:
                    name = signal.Signals(info.si_signo).name
                    self.log.info("%s received, stopping %d worker(s)", name, len(self.by_pid))
                    self._stop(info.si_signo, 0)
                self._reap()
                if self.stop_signal is None:
                    now = time.monotonic()
                    for worker in self.workers:
                        if worker.restart_at is not None and worker.restart_at <= now:
                            self._start(worker, old_mask)
                elif self.by_pid and time.monotonic() >= self.stop_deadline and not self.killed:
                    self.log.error("%s still running %g s after %s: killing them",
                                   ", ".join(f"{w.name} (pid {pid})" for pid, w in self.by_pid.items()),
                                   STOP_TIMEOUT, signal.Signals(self.stop_signal).name)
                    for pid in self.by_pid:
                        os.kill(pid, signal.SIGKILL)
                    self.killed = True
                    self.status = max(self.status, 1)
            self.log.info("all workers %s%s", "done" if self.stop_signal is None else "stopped",
                          "" if self.status == 0 else f"; exit status {self.status}")
            return self.status
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    def _wait_signal(self) -> "signal.struct_siginfo | None":
        """The next SIGCHLD/SIGTERM/SIGINT, or None at the next restart or stop deadline, or after
        REAP_POLL at the latest: a frozen program may run native threads Python does not know of
        (seen with Nuitka's onefile), and the kernel may hand a SIGCHLD to one of those, where
        sigtimedwait() here never sees it; the caller reaps after every wake-up regardless."""
        if self.stop_signal is not None:
            due = None if self.killed else self.stop_deadline
        else:
            due = min((w.restart_at for w in self.workers if w.restart_at is not None), default=None)
        poll_at = time.monotonic() + REAP_POLL
        due = poll_at if due is None else min(due, poll_at)
        return signal.sigtimedwait(_WAITED, max(due - time.monotonic(), 0.0))

    def _start(self, worker: Worker, old_mask: set[int]) -> None:
        worker.restart_at = None
        threading = sys.modules.get("threading")
        if threading is not None and threading.active_count() > 1:
            raise RuntimeError("the supervisor must not fork while other threads run")  # a bug, not a user error
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or the worker would write the parent's buffered output again
        if not self.modules_at_fork:
            self.modules_at_fork = frozenset(sys.modules)
        gc.freeze()  # everything allocated so far: never examined by a collection in the worker
        try:
            pid = os.fork()
        except OSError as exc:
            self._failed(worker, f"{worker.name} cannot be started: {exc.strerror or exc}")
            return
        if pid == 0:
            _worker_process(worker, child_prog(self.prog, worker.name), old_mask, self.modules_at_fork)
        worker.pid = pid
        worker.started_at = time.monotonic()
        self.by_pid[pid] = worker
        self.log.info("started %s as pid %d%s", worker.name, pid,
                      f" with {' '.join(worker.args)}" if worker.args else "")

    def _reap(self) -> None:
        while True:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.by_pid.pop(pid, None)
            if worker is None:
                continue
            worker.pid = 0
            self._exited(worker, pid, os.waitstatus_to_exitcode(wait_status))

    def _exited(self, worker: Worker, pid: int, code: int) -> None:
        what = f"{worker.name} (pid {pid}) {describe_status(code)}"
        if self.stop_signal is not None:
            # Killed by a stop signal we passed on: it had not installed its handlers yet, so it
            # held no connection; that is a clean stop too.
            if (code == 0 or -code in _STOP_SIGNALS) and not self.killed:
                self.log.debug("%s", what)
            else:
                self.log.error("%s while stopping", what)
                self.status = max(self.status, 1)
            return
        if code == 0:
            self.log.info("%s: done, not restarted", what)
            worker.done = True
        elif code == 2:
            self.log.error("%s (a usage or configuration error): stopping the other workers", what)
            worker.done = True
            self._stop(signal.SIGTERM, 2)
        else:
            self._failed(worker, what)

    def _failed(self, worker: Worker, what: str) -> None:
        now = time.monotonic()
        if worker.started_at and now - worker.started_at >= STABLE_AFTER:
            worker.failures = 0
        worker.failures += 1
        if self.max_restarts is not None and worker.failures > self.max_restarts:
            self.log.error("%s; it failed %d time(s) in a row (--max-restarts %d): giving up, stopping the "
                           "other workers", what, worker.failures, self.max_restarts)
            worker.done = True
            self._stop(signal.SIGTERM, 1)
            return
        delay = restart_delay(self.restart_delay, worker.failures)
        self.log.warning("%s; restarting it in %g s (failure %d in a row)", what, delay, worker.failures)
        worker.restart_at = now + delay

    def _stop(self, signum: int, status: int) -> None:
        """Pass `signum` on to every running worker and cancel pending restarts."""
        self.status = max(self.status, status)
        if self.stop_signal is None:
            self.stop_signal = signum
            self.stop_deadline = time.monotonic() + STOP_TIMEOUT
        for worker in self.workers:
            worker.restart_at = None
        for pid in self.by_pid:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass  # exited meanwhile; reaped next


# ---- the worker (child process) ----

def _worker_process(worker: Worker, prog: str, old_mask: set[int], modules_at_fork: frozenset) -> None:
    """Run the command as if it had been started alone, then end the process. Never returns: the
    supervisor's stack (its loop, its finally blocks) must not run on in a worker."""
    code = 1
    try:
        try:
            gc.enable()
            # The parent's state a fresh process would not have: until the command installs its own
            # handlers, a stop signal ends the worker at once (it holds no connection yet).
            for signum in _STOP_SIGNALS:
                signal.signal(signum, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            import logging

            root = logging.getLogger()
            for handler in root.handlers[:]:
                root.removeHandler(handler)  # the command configures its own (--log-level)
            root.setLevel(logging.WARNING)
            code = _exit_status(sys.modules[f"app.commands.{worker.name}"].main(list(worker.args), prog))
        except SystemExit as exc:  # argparse's --help and usage errors
            code = _exit_status(exc.code)
        except BaseException:
            sys.excepthook(*sys.exc_info())
        _log_late_imports(worker.name, modules_at_fork)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed pipe must not change the exit status
                pass
    finally:
        os._exit(code)


def _log_late_imports(name: str, modules_at_fork: frozenset) -> None:
    """At debug level, name the modules the worker imported itself (not shared with the others)."""
    import logging

    log = logging.getLogger("app.run")
    if log.isEnabledFor(logging.DEBUG):
        late = sorted(set(sys.modules) - modules_at_fork)
        log.debug("%s: modules imported after the fork: %s", name, ", ".join(late) if late else "none")


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _import_command(name: str) -> bool:
    """Import app.commands.<name>; False if this build does not include it."""
    module_name = f"app.commands.{name}"
    try:
        __import__(module_name)
    except ModuleNotFoundError as exc:
        if not exc.name or not (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise
        return False
    return True


def _export_flags(ns: object, settings: object) -> None:
    """Give the shared MQTT flags to the workers as their environment variables: a worker's own
    flags still win over them, as they would over the environment of a command started alone."""
    for dest, _flag, env, _convert, _metavar, _help in settings._OPTIONS:  # noqa: SLF001 - same package
        value = getattr(ns, dest, None)
        if value is not None:
            os.environ[env] = ("1" if value else "0") if isinstance(value, bool) else str(value)
