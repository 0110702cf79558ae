"""Measure running programs the way a device feels them: start-up time, time to the first
message delivered, memory of a process tree, bytes a onefile unpacks at start.

Everything here runs real processes against a real mosquitto (`Bench`) and reads real /proc.
Memory is the process tree's: a onefile's starter and the child it forks both count (psutil finds
the descendants of the process we started and reads their smaps_rollup). What runs is what the
application declares for each measure (`[tool.slimfreeze.app.measure]`: a scenario each).

    with Bench(app) as bench:
        artifact = Program(name="min", launch={"hello": ["dist/min/hello"], ...}, cwd=folder)
        source = Program(name="source", launch={"hello": [python, entry, "hello"], ...}, cwd=root)
        startup = startup_medians([artifact, source], bench=bench, runs=11)    # measured in turns
        ack = first_ack_medians([artifact, source], bench=bench, runs=11)
        memory = measure_workers([worker_spec(artifact, app.measures.worker, app)] * 3, bench=bench)
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psutil

from build import proc
from build.application import Application, Scenario
from build.errors import SlimfreezeError
from build.freeze.scenarios import (
    Ran,
    ScenarioFailed,
    await_messages,
    await_output,
    filled_messages,
    fill,
    placeholder_values,
    scenario_env,
)
from build.manifest import folder_bytes
from build.paths import remove_tree
from build.testbed.broker import Broker, Subscriber

RUN_TIMEOUT = 60.0
READY_TIMEOUT = 30.0
OUTPUT_TAIL = 2000


class MeasureError(SlimfreezeError):
    """A program could not be measured: it failed, timed out, or /proc could not be read."""


# ---- process memory (psutil reads /proc/<pid>/smaps_rollup) ----

# The operating system's own files (libc, libm, the dynamic loader, locale data): every other process
# on the machine maps them too, so their share of a page depends on how many others run beside.
OS_FILE_PREFIXES = ("/usr/", "/lib/", "/lib64/", "/lib32/", "/etc/")


@dataclass(frozen=True, kw_only=True)
class ProcessMemory:
    pid: int
    ppid: int
    name: str
    rss_kb: int
    pss_kb: int
    os_files_pss_kb: int = 0  # of pss_kb: the share of OS_FILE_PREFIXES files


def os_files_pss(mapped: Iterable[tuple[str, int]]) -> int:
    """Bytes of PSS in files of the operating system, from (path, pss bytes) per mapping (pure)."""
    return sum(pss for path, pss in mapped if path.startswith(OS_FILE_PREFIXES))


def process_memory(pid: int) -> ProcessMemory:
    """RSS and PSS of one process. Raises ProcessLookupError if it is gone."""
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            info = process.memory_full_info()
            name, ppid = process.name(), process.ppid()
            mapped = [(m.path, m.pss) for m in process.memory_maps(grouped=True)]
    except psutil.NoSuchProcess:
        raise ProcessLookupError(pid) from None
    except psutil.AccessDenied:
        raise MeasureError(f"not allowed to read the memory of process {pid}; run as the user who owns it") from None
    if getattr(info, "pss", None) is None:
        raise MeasureError("the kernel reports no PSS (/proc/<pid>/smaps_rollup): memory figures need Linux 4.14 or newer")
    return ProcessMemory(pid=pid, ppid=ppid, name=name, rss_kb=info.rss // 1024, pss_kb=info.pss // 1024,
                         os_files_pss_kb=os_files_pss(mapped) // 1024)


def tree_memory(root: int) -> tuple[ProcessMemory, ...]:
    """Memory of `root` and all its descendants (a onefile's starter and its child, a supervisor
    and its workers), root first, then by pid. Processes that end meanwhile are left out; `root`
    itself must be alive."""
    try:
        pids = sorted(child.pid for child in psutil.Process(root).children(recursive=True))
    except psutil.NoSuchProcess:
        pids = []
    found = []
    for pid in [root, *pids]:
        try:
            found.append(process_memory(pid))
        except ProcessLookupError:
            if pid == root:
                raise MeasureError(f"process {root} ended before its memory could be read") from None
    return tuple(found)


def median_ms(samples: Sequence[float]) -> float:
    return round(statistics.median(samples), 2)


# ---- the measuring session ----

class Bench:
    """One measuring session of an application: a mosquitto on a free loopback port, an observer
    subscribed to every topic, and a scratch folder for each process's TMPDIR (a onefile unpacks
    there)."""

    def __init__(self, app: Application, folder: Path | None = None) -> None:
        self.app = app
        self._own = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="slimfreeze-measure-") if folder is None else folder)
        self.broker: Broker | None = None
        self.seen: Subscriber | None = None

    def __enter__(self) -> Bench:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.broker = Broker(self.folder / "broker").start()
        try:
            self.seen = Subscriber(self.broker.host, self.broker.port, ["#"], persistent=False).start()
        except BaseException:
            self.broker.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.seen:
            self.seen.close()
        if self.broker:
            self.broker.close()
        if self._own:  # made by mkdtemp in the temporary folder
            remove_tree(self.folder, (Path(tempfile.gettempdir()),))

    def device(self, label: str) -> str:
        """A device id no earlier measurement used, so topics never mix."""
        return f"m-{label}-{secrets.token_hex(3)}"[:64]

    def tmpdir(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="tmp-", dir=self.folder))

    def values(self, label: str, tmpdir: Path) -> dict[str, str]:
        """The placeholders of one run: a fresh device id, `tmpdir` as its folder."""
        assert self.broker is not None, "use Bench as a context manager"
        return placeholder_values(broker=self.broker, certs=None, device=self.device(label), tmp=tmpdir)

    def prepare(self, launch: Sequence[str], scenario: Scenario, label: str, *,
                tmpdir: Path | None = None) -> tuple[list[str], dict[str, str], dict[str, str]]:
        """argv, environment and placeholder values of one run of `scenario` through `launch`:
        pointed at the bench's broker, with its own TMPDIR (where a onefile unpacks)."""
        tmpdir = tmpdir or self.tmpdir()
        values = self.values(label, tmpdir)
        env = scenario_env(self.app, scenario, os.environ, values, TMPDIR=str(tmpdir))
        return [*launch, *(fill(a, values) for a in scenario.args)], env, values

    def scenario(self, ref: str | None) -> tuple[str, Scenario] | None:
        """(command, scenario) of a declared measure, or None when the app declares none."""
        if ref is None:
            return None
        command, scenario = self.app.scenario(ref)
        return command.name, scenario


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= OUTPUT_TAIL else "..." + text[-OUTPUT_TAIL:]


def _describe(argv: Sequence[str], code: int | None, output: str) -> str:
    return Ran(argv=list(argv), code=code, output=output).describe()


# ---- start-up ----

def startup_ms(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, scenario: Scenario,
               timeout: float = RUN_TIMEOUT) -> float:
    """Wall-clock ms of one complete run of `argv`, which must exit and print as `scenario` says."""
    started = time.perf_counter()
    try:
        done = proc.capture(argv, env=env, cwd=cwd, timeout=timeout)
    except OSError as err:
        raise MeasureError(f"`{' '.join(argv)}` cannot run: {err.strerror}") from None
    elapsed = (time.perf_counter() - started) * 1000
    if done.code != scenario.exit or not all(re.search(p, done.output, re.MULTILINE) for p in scenario.output):
        raise MeasureError(_describe(argv, done.code, done.output))
    return elapsed


def alternate(measures: Sequence[Callable[[], float]], runs: int) -> list[list[float]]:
    """Samples of each measure, taken in turns (A B, B A, A B, ...) after one untimed warm-up of
    each, so that a slow spell of a shared machine hits every program alike."""
    for once in measures:
        once()
    samples: list[list[float]] = [[] for _ in measures]
    for round_ in range(runs):
        order = range(len(measures)) if round_ % 2 == 0 else reversed(range(len(measures)))
        for index in order:
            samples[index].append(measures[index]())
    return samples


def first_message_ms(launch: Sequence[str], scenario: Scenario, *, bench: Bench, cwd: Path, label: str = "first",
                     timeout: float = RUN_TIMEOUT) -> float:
    """Ms from starting `scenario` until the bench's subscriber receives the first message it
    expects (its first `messages` entry); the program must then end as the scenario says."""
    assert bench.seen is not None
    argv, env, values = bench.prepare(launch, scenario, label)
    expected = filled_messages(scenario.messages[0], values)
    first = dataclasses.replace(expected, count=1)
    output = tempfile.TemporaryFile()
    started = time.monotonic()
    try:
        child = proc.start(argv, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)
    except OSError as err:
        output.close()
        raise MeasureError(f"`{' '.join(argv)}` cannot run: {err.strerror}") from None
    try:
        try:
            got = await_messages(bench.seen, first, timeout=timeout, alive=lambda: proc.wait(child, 0) is None)
        except ScenarioFailed as failed:
            output.seek(0)
            raise MeasureError(f"{failed}; {_describe(argv, child.poll(), output.read().decode(errors='replace'))}") from None
        if scenario.long_running:
            assert scenario.stop is not None
            os.kill(child.pid, signal.Signals[scenario.stop])  # safe: not reaped yet (proc.wait)
        code = proc.wait(child, timeout)
        if code != scenario.exit:
            output.seek(0)
            raise MeasureError(_describe(argv, code, output.read().decode(errors="replace")))
    finally:
        proc.end(child)  # if it hung, a onefile's child goes with its starter
        output.close()
        remove_tree(Path(env["TMPDIR"]), (bench.folder,))
    return (got[0].at - started) * 1000


@dataclass(frozen=True, kw_only=True)
class Program:
    """A program to measure: the argv that runs each of its commands, and where to run them."""

    name: str
    launch: Mapping[str, Sequence[str]]
    cwd: Path


def startup_medians(programs: Sequence[Program], *, bench: Bench, runs: int) -> dict[str, float | None]:
    """Median start-up ms of the app's `startup` scenario per program, the programs measured in
    turns (None: the app declares none, or the program lacks its command)."""
    found: dict[str, float] = {}
    chosen = bench.scenario(bench.app.measures.startup)
    if chosen:
        command, scenario = chosen
        having = [p for p in programs if command in p.launch]
        runs_of = {p.name: bench.prepare(p.launch[command], scenario, command) for p in having}
        samples = alternate([lambda p=p: startup_ms(runs_of[p.name][0], env=runs_of[p.name][1], cwd=p.cwd,
                                                    scenario=scenario) for p in having], runs)
        found = {p.name: median_ms(s) for p, s in zip(having, samples)}
    return {p.name: found.get(p.name) for p in programs}


def first_ack_medians(programs: Sequence[Program], *, bench: Bench, runs: int) -> dict[str, float | None]:
    """Median ms from start to the first message of the app's `first_message` scenario per
    program, measured in turns (None: none declared, or the program lacks its command)."""
    found: dict[str, float] = {}
    chosen = bench.scenario(bench.app.measures.first_message)
    if chosen:
        command, scenario = chosen
        having = [p for p in programs if command in p.launch]
        samples = alternate([lambda p=p: first_message_ms(p.launch[command], scenario, bench=bench, cwd=p.cwd,
                                                          label=command) for p in having], runs)
        found = {p.name: median_ms(s) for p, s in zip(having, samples)}
    return {p.name: found.get(p.name) for p in programs}


# ---- workers running side by side ----

@dataclass(frozen=True, kw_only=True)
class WorkerSpec:
    """One long-running process to start: `launch` runs the command, `scenario` (long-running)
    gives its arguments and what says that it is fully up (its `ready` messages)."""

    launch: tuple[str, ...]
    scenario: Scenario
    cwd: Path
    label: str = "worker"


def worker_spec(program: Program, ref: str | None, app: Application) -> WorkerSpec | None:
    """The app's declared worker or supervisor scenario `ref`, through `program` (None: none
    declared, or the program lacks the command)."""
    if ref is None:
        return None
    command, scenario = app.scenario(ref)
    if command.name not in program.launch:
        return None
    return WorkerSpec(launch=tuple(program.launch[command.name]), scenario=scenario, cwd=program.cwd,
                      label=command.name)


@dataclass(frozen=True, kw_only=True)
class WorkerMemory:
    label: str
    processes: tuple[ProcessMemory, ...]
    unpack_bytes: int

    @property
    def rss_kb(self) -> int:
        return sum(p.rss_kb for p in self.processes)

    @property
    def pss_kb(self) -> int:
        return sum(p.pss_kb for p in self.processes)

    @property
    def os_files_pss_kb(self) -> int:
        return sum(p.os_files_pss_kb for p in self.processes)


@dataclass(frozen=True, kw_only=True)
class MemoryResult:
    workers: tuple[WorkerMemory, ...] = field(default_factory=tuple)

    @property
    def rss_kb(self) -> int:
        return sum(w.rss_kb for w in self.workers)

    @property
    def pss_kb(self) -> int:
        return sum(w.pss_kb for w in self.workers)

    @property
    def os_files_pss_kb(self) -> int:
        return sum(w.os_files_pss_kb for w in self.workers)

    @property
    def process_count(self) -> int:
        return sum(len(w.processes) for w in self.workers)

    @property
    def unpack_bytes(self) -> int:
        """What one start unpacks (the largest of the workers' TMPDIRs; they are alike)."""
        return max((w.unpack_bytes for w in self.workers), default=0)


def measure_workers(specs: Iterable[WorkerSpec], *, bench: Bench, settle: float = 0.5,
                    timeout: float = READY_TIMEOUT) -> MemoryResult:
    """Start every spec at once, wait until all are online, let them settle, then read the memory of
    each process tree while all run side by side (PSS splits shared pages among them), and the
    bytes each has unpacked into its TMPDIR. Then stop them with SIGTERM."""
    specs = list(specs)
    assert bench.seen is not None
    started: list[tuple[WorkerSpec, dict[str, str], Path, subprocess.Popen[bytes], Path]] = []
    try:
        for index, spec in enumerate(specs):
            tmpdir = bench.tmpdir()
            argv, env, values = bench.prepare(spec.launch, spec.scenario, f"{spec.label}{index}", tmpdir=tmpdir)
            log = bench.folder / f"{values['device']}.log"
            with log.open("wb") as sink:
                try:
                    child = proc.start(argv, env=env, cwd=spec.cwd, stdout=sink, stderr=subprocess.STDOUT)
                except OSError as err:
                    raise MeasureError(f"worker `{' '.join(argv)}` cannot run: {err.strerror}") from None
            started.append((spec, values, tmpdir, child, log))
        deadline = time.monotonic() + timeout
        for spec, values, _, child, log in started:
            if spec.scenario.ready_output is not None:
                try:
                    await_output(lambda log=log: log.read_text(errors="replace"), fill(spec.scenario.ready_output, values),
                                 timeout=max(0.1, deadline - time.monotonic()),
                                 alive=lambda child=child: proc.wait(child, 0) is None)
                except ScenarioFailed as failed:
                    raise MeasureError(f"worker `{' '.join(spec.launch)}` not ready: {failed}") from None
            for expected in spec.scenario.ready:
                try:
                    await_messages(bench.seen, filled_messages(expected, values),
                                   timeout=max(0.1, deadline - time.monotonic()),
                                   alive=lambda child=child: proc.wait(child, 0) is None)
                except ScenarioFailed as failed:
                    raise MeasureError(f"worker `{' '.join(spec.launch)}` not ready: {failed}; output: "
                                       f"{_tail(log.read_text(errors='replace')) or '(none)'}") from None
        time.sleep(settle)  # let the last start-up allocations and the first publish finish
        workers = []
        for spec, device, tmpdir, child, _ in started:
            workers.append(WorkerMemory(label=spec.label, processes=tree_memory(child.pid),
                                        unpack_bytes=folder_bytes(tmpdir)))
        return MemoryResult(workers=tuple(workers))
    finally:
        _stop([child for _, _, _, child, _ in started])
        for _, _, tmpdir, _, _ in started:
            remove_tree(tmpdir, (bench.folder,))


def _stop(children: Sequence[subprocess.Popen[bytes]], timeout: float = 15.0) -> None:
    """SIGTERM each (a onefile starter forwards it, a supervisor stops its workers) and give them
    `timeout` s together; then each one's whole process tree is ended (build.proc.end)."""
    for child in children:
        if proc.wait(child, 0) is None:
            os.kill(child.pid, signal.SIGTERM)  # safe: not reaped yet (proc.wait), the pid is ours
    deadline = time.monotonic() + timeout
    for child in children:
        proc.wait(child, max(0.1, deadline - time.monotonic()))
        proc.end(child)


def commands_in_help(text: str) -> set[str]:
    """Command names listed under `commands:` in the app's --help (pure)."""
    names, inside = set(), False
    for line in text.splitlines():
        if line.strip().lower() == "commands:":
            inside = True
            continue
        if inside:
            if not line.strip() or not line.startswith(" "):
                if names:
                    break
                continue
            names.add(line.split()[0])
    return names


def help_commands(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None) -> set[str]:
    """The commands a program's `--help` lists; empty if it cannot say."""
    try:
        done = proc.capture([*argv, "--help"], cwd=cwd, env=env, timeout=RUN_TIMEOUT, separate_stderr=True)
    except OSError:
        return set()
    return commands_in_help(done.output) if done.code == 0 else set()
