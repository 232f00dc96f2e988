"""engine.interrupts.sigint_held: a Ctrl-C during a short write waits for it; a second does not."""
from __future__ import annotations

import signal
import threading

import pytest

from engine.interrupts import sigint_held


def _ctrl_c() -> None:
    signal.raise_signal(signal.SIGINT)  # to this (the main) thread: handled before the next line


def test_a_held_ctrl_c_is_delivered_after_the_block_and_the_handler_put_back() -> None:
    before = signal.getsignal(signal.SIGINT)
    done = []
    with pytest.raises(KeyboardInterrupt):
        with sigint_held():
            _ctrl_c()
            done.append("the write")  # reached: the interrupt waited
    assert done == ["the write"] and signal.getsignal(signal.SIGINT) is before
    with sigint_held(deliver=False):  # the caller is on its way out already: not repeated
        _ctrl_c()
        done.append("again")
    assert done[-1] == "again" and signal.getsignal(signal.SIGINT) is before


def test_a_second_ctrl_c_in_the_block_is_delivered_at_once() -> None:
    done = []
    with pytest.raises(KeyboardInterrupt):
        with sigint_held(deliver=False):
            _ctrl_c()
            _ctrl_c()
            done.append("not reached")
    assert done == [] and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_handler_in_place_gets_the_held_one() -> None:
    """Under the CLI's first_interrupt_calls, a held Ctrl-C is its "stop after the run in flight"."""
    got = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        with sigint_held():
            _ctrl_c()
            assert got == []
        assert got == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_outside_the_main_thread_the_block_just_runs() -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with sigint_held():
                pass  # signal.signal would raise ValueError here
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert errors == []
