"""Hold a Ctrl-C for the tens of milliseconds of a write that records how a run ended.

Why: the write that marks an optimisation or a loop ``interrupted`` runs while the user is
pressing Ctrl-C (that is why it runs). A KeyboardInterrupt landing inside that DuckDB transaction
rolled it back, and the experiment stayed ``running``, which ``perfcast experiments`` lists as
killed. Within :func:`sigint_held` the first SIGINT is only noted, so the write lands; a second
one is delivered at once, so a write that waits (for another process's lock) can still be
stopped. Only the main thread can set signal handlers; elsewhere the block runs as usual. Used by
the CLI and the Python API alike (a notebook's interrupt is the same SIGINT).
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator


@contextmanager
def sigint_held(deliver: bool = True) -> Iterator[None]:
    """Within the block, the first SIGINT waits for the block to end; a second is delivered now.

    ``deliver``: when the block ends, hand a held SIGINT to the handler that was in place (a
    KeyboardInterrupt, or the CLI's "stop after the run in flight"); False where the caller is
    already on its way out with an exception, which the held Ctrl-C would only repeat."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # a handler not set from Python: it cannot be put back, so leave it alone
        yield
        return
    held: list[Any] = []  # the frame of a SIGINT noted, not yet delivered
    delivered = False

    def deliver_now(frame: Any) -> None:
        nonlocal delivered
        delivered = True
        signal.signal(signal.SIGINT, previous)
        if callable(previous):
            previous(signal.SIGINT, frame)
        elif previous == signal.SIG_DFL:  # Python's own default is default_int_handler; be it
            raise KeyboardInterrupt
        # SIG_IGN: nothing to deliver

    def handler(signum: int, frame: Any) -> None:
        if held:  # the second one while the block runs: the user insists
            deliver_now(frame)
        else:
            held.append(frame)

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        if not delivered:
            signal.signal(signal.SIGINT, previous)
            if held and deliver:
                deliver_now(held[0])
