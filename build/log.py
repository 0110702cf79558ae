"""What the terminal shows while building: which profile, which step, how long it took."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape

console = Console(stderr=True, highlight=False, soft_wrap=True)


def info(message: str) -> None:
    console.print(escape(message))


def error(message: str) -> None:
    console.print(f"[bold red]slimfreeze: error:[/] {escape(message)}")


@contextmanager
def step(profile: str, what: str) -> Iterator[None]:
    """Print the step, run the block, print its elapsed time (or that it failed)."""
    started = time.monotonic()
    console.print(f"[bold cyan]\\[{escape(profile)}][/] {escape(what)} ...")
    try:
        yield
    except BaseException:
        console.print(f"[bold cyan]\\[{escape(profile)}][/] {escape(what)} [red]failed[/] "
                      f"after {time.monotonic() - started:.1f} s")
        raise
    console.print(f"[bold cyan]\\[{escape(profile)}][/] {escape(what)} [green]done[/] "
                  f"in {time.monotonic() - started:.1f} s")
