"""Ctrl-C in a benchmark loop: the first asks the loop to stop, the second stops it now.

Why not the default KeyboardInterrupt: it lands wherever the main thread happens to be. A
benchmark in flight was killed and its seconds lost, and once the exception was swallowed by a
JAX garbage-collection callback and the loop went on. The benchmark children ignore SIGINT
(:mod:`hardware.isolation`), so the first Ctrl-C only sets a flag the loop reads between events:
what is in flight finishes and is stored, then the loop reports and exits. The handler then
steps aside, so a second Ctrl-C raises KeyboardInterrupt as usual and the executor kills the
children on its way out.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator


@contextmanager
def first_interrupt_calls(on_first: Callable[[], None]) -> Iterator[None]:
    """Within the block, the first SIGINT calls ``on_first()`` instead of raising. Outside the main
    thread (where Python cannot set handlers) the block runs with the usual behaviour."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the second one stops now
        on_first()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
