"""Run one benchmark in a child process with a time limit and a memory limit.

A benchmark that runs out of memory, hangs, or crashes the runtime (a segfault in a native
kernel) must not take down the loop that launched it: the grid, the CLI and the active-learning
loop all keep going and *store* the failure (status ``oom``/``timeout``/``failed`` with the
error text), because "this config does not fit" is itself a measurement.

Children come from a ``forkserver`` that has already imported torch, transformers, ONNX Runtime
and OpenVINO, so a child starts in milliseconds instead of paying seconds of imports per
benchmark — while still getting a fresh address space (no allocator state, thread pools or
caches leak from one benchmark into the next).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from engine.records import Measurement
from hardware.base import BenchmarkSpec

PRELOAD = ["hardware._preload"]
_CTX: Optional[Any] = None
_OOM_PATTERNS = ("can't allocate memory", "not enough memory", "out of memory", "bad_alloc",
                 "failed to allocate", "std::bad_alloc")


def _context() -> Any:
    global _CTX
    if _CTX is None:
        method = os.environ.get("PERFCAST_MP_START", "forkserver")
        ctx = mp.get_context(method)
        if method == "forkserver":
            ctx.set_forkserver_preload(PRELOAD)
        _CTX = ctx
    return _CTX


def classify_exception(exc: BaseException) -> str:
    """``oom`` for allocation failures (however the runtime words them), else ``failed``."""
    if isinstance(exc, MemoryError):
        return "oom"
    text = str(exc).lower()
    return "oom" if any(p in text for p in _OOM_PATTERNS) else "failed"


def run_inline_safely(adapter_name: str, spec: BenchmarkSpec) -> Measurement:
    """Run an adapter in this process, turning exceptions into failed measurements."""
    from hardware.registry import get_adapter

    adapter = get_adapter(adapter_name)
    t0 = time.monotonic()
    try:
        m = adapter.run_inline(spec)
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a stored run
        if isinstance(exc, KeyboardInterrupt):
            raise
        status = classify_exception(exc)
        tb = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        m = Measurement.failed(spec.config, status, f"{tb}\n{traceback.format_exc()[-2000:]}",
                               wall_time_s=time.monotonic() - t0)
    return adapter.annotate(m)


def _raise_priority(nice: Optional[str]) -> None:
    """Optionally give the benchmark child CPU priority over other work on a shared machine.

    Why more than ``nice``: with the kernel's autogroup scheduling (on by default in most
    distributions) nice values only compete within one session, so a multi-threaded benchmark
    still loses cores to every other terminal's jobs and its threads stall at each barrier
    (2-thread runs measured 10-20x slow here). The child therefore starts its own session and
    sets that session's autogroup nice. Needs root/CAP_SYS_NICE for negative values; silently
    does nothing when not permitted. Opt-in: ``PERFCAST_BENCH_NICE=-19``.
    """
    if not nice:
        return
    try:
        value = int(nice)
    except ValueError:
        return
    try:
        os.setsid()
    except OSError:
        pass
    for path_or_call in ("/proc/self/autogroup", None):
        try:
            if path_or_call:
                with open(path_or_call, "w") as f:
                    f.write(str(value))
            else:
                os.setpriority(os.PRIO_PROCESS, 0, value)
        except OSError:
            pass


def _child_main(adapter_name: str, spec_dict: dict[str, Any], conn: Any,
                env: Optional[dict[str, str]] = None) -> None:
    # Ctrl-C in the terminal reaches the whole process group. The parent decides what it means
    # (a loop finishes the benchmark in flight and stores it); the parent kills this child itself
    # when it really stops (run_isolated's finally, kill_running).
    _child_setup(env)
    _raise_priority(os.environ.get("PERFCAST_BENCH_NICE"))
    spec = BenchmarkSpec.from_dict(spec_dict)
    m = run_inline_safely(adapter_name, spec)
    try:
        conn.send(m.to_dict())
        conn.close()
    except OSError:  # the parent stopped (a second Ctrl-C): nobody to tell, and nothing to print
        pass


def _child_setup(env: Optional[dict[str, str]]) -> None:
    """What every child does first: leave Ctrl-C to the parent, die with it, and take its current
    perfcast settings and catalogs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    if env is not None:
        # the forkserver's environment is frozen at its start; perfcast settings (cache dir,
        # database) must follow the parent as it is now
        for k in [k for k in os.environ if k.startswith("PERFCAST_")]:
            os.environ.pop(k)
        os.environ.update(env)
        # and the catalogs the forkserver cached may name other user files (PERFCAST_MODELS)
        from engine.catalog import refresh_catalogs

        refresh_catalogs()


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this child when the process that forked it (the forkserver, which
    exits with perfcast) goes away: a benchmark still starting when perfcast was interrupted
    would otherwise run on alone and print a BrokenPipeError into the user's terminal. Elsewhere
    a no-op; kill_running covers the children perfcast knows about."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _tree_rss_mib(pid: int) -> float:
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def _sigkill(p: Any) -> None:
    """SIGKILL a child; one already gone (or not yet started: no pid) is left alone."""
    try:
        os.kill(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, TypeError):
        pass


def _kill(p: Any) -> None:
    _sigkill(p)
    p.join(timeout=10)


_RUNNING: set[Any] = set()  # children started by run_isolated and not yet reaped (any thread)
_KILLS = [0]  # kill_running calls so far: a child whose start straddled one is killed once started


def kill_running() -> int:
    """Kill every benchmark child still running; how many. For an executor that stops while its
    worker threads still wait on children (they ignore SIGINT, so nothing else would end them).
    A child still starting (the forkserver may be importing torch) is killed as soon as its start
    returns."""
    _KILLS[0] += 1
    procs = list(_RUNNING)
    for p in procs:
        _sigkill(p)  # no join: the worker threads reap their own children
    return len(procs)


_STARTING = threading.Lock()  # one child start at a time while __main__.__file__ may be hidden


@contextmanager
def _main_module_importable() -> Iterator[None]:
    """Hide ``__main__.__file__`` while a child starts when it names no file (``python -`` reading
    a heredoc: ``<stdin>``). multiprocessing re-runs the parent's main script in every child, so
    each benchmark died with "exit code 1 without a result" and was stored as a failed run. Starts
    are serialised: a thread pool of executors (workers > 1) would otherwise restore the name while
    another thread's child starts."""
    with _STARTING:
        main = sys.modules.get("__main__")
        path = getattr(main, "__file__", None)
        if (main is None or getattr(main, "__spec__", None) is not None or not isinstance(path, str)
                or os.path.isfile(path)):
            yield
            return
        del main.__file__
        try:
            yield
        finally:
            main.__file__ = path


#: seconds an ONNX export may take in its own child before a run (a large model on 2 cores: minutes)
EXPORT_TIME_LIMIT_S = 1200.0


def _start_child(target: Callable[..., None], args: tuple[Any, ...], name: str) -> tuple[Any, Any, int, float]:
    """Start ``target(*args, conn, env)`` in a child: (process, the parent's end of its pipe, the
    stop count before its start, and when the start returned).

    Limits run from that return: the first start() of a process waits for the forkserver to preload
    torch & co (~4 s), which is not the child's time (audit M: a 1.6 s run was stored as a 6 s timeout
    when it came first); a run's wall time still counts it, as the true cost."""
    ctx = _context()
    recv, send = ctx.Pipe(duplex=False)
    env = {k: v for k, v in os.environ.items() if k.startswith("PERFCAST_")}
    proc = ctx.Process(target=target, args=(*args, send, env), name=name)
    kills = _KILLS[0]
    with _main_module_importable():
        proc.start()
    started = time.monotonic()
    _RUNNING.add(proc)
    send.close()
    return proc, recv, kills, started


def _export_main(model: str, precision: str, conn: Any, env: dict[str, str]) -> None:
    _child_setup(env)
    from hardware.onnx_export import ensure_onnx

    try:
        ensure_onnx(model, precision)
        error = ""
    except Exception as e:  # noqa: BLE001 - reported as the run's failure
        error = f"{type(e).__name__}: {str(e)[-1500:]}"
    try:
        conn.send(error)
        conn.close()
    except OSError:
        pass


def _export_first(adapter_name: str, spec: BenchmarkSpec, poll_s: float) -> Optional[str]:
    """Export the ONNX file a run of ``adapter_name`` needs in a child of its own, before the run's
    child starts; the error text when it fails, else None.

    Inside the run's child the export (building the torch model, exporting, quantizing) counted in
    the run's memory peak, its load time and its time limit: resnet50 on ONNX Runtime stored 955 MiB
    and a 17.4 s load when it exported, 604 MiB and 0.8 s when the file was cached, and bert-base
    under a 10 s limit was stored as a timeout for good, its export never finishing (audit M). The
    shipped grid exported up front; now every run does. The export has its own time limit
    (:data:`EXPORT_TIME_LIMIT_S`, or the run's if longer) and no memory limit."""
    from hardware.onnx_export import export_precision, needs_export

    c = spec.config
    if not needs_export(adapter_name, c.model, c.precision):
        return None
    proc, recv, kills, started = _start_child(_export_main, (c.model, export_precision(c.precision)),
                                              "perfcast-onnx-export")
    limit = max(EXPORT_TIME_LIMIT_S, spec.time_limit_s)
    answered = False  # only an export that has answered is waited for on the way out
    try:
        while not recv.poll(poll_s):
            if _KILLS[0] != kills:  # the executor stopped (Ctrl-C): not a property of the export
                _kill(proc)
                return "benchmark stopped: perfcast was interrupted during the ONNX export before the run"
            if not proc.is_alive():
                if recv.poll(0):
                    break
                return f"ONNX export of {c.model} died with exit code {proc.exitcode} before the run"
            if time.monotonic() - started > limit:
                return f"ONNX export of {c.model} did not finish in {limit:g} s before the run; child killed"
        answered = True
        try:
            error = recv.recv()
        except EOFError:
            error = f"ONNX export of {c.model} ended without a word"
        return f"ONNX export failed before the run: {error}" if error else None
    finally:
        # an export past its limit, or a second Ctrl-C (KeyboardInterrupt), is killed at once: waiting
        # for it to end by itself held "Ctrl-C again stops now" for 10 s, and a timed-out export 10 s more
        if proc.is_alive() and answered:
            proc.join(timeout=10)
        if proc.is_alive():
            _kill(proc)
        _RUNNING.discard(proc)
        recv.close()


def run_isolated(adapter_name: str, spec: BenchmarkSpec, poll_s: float = 0.05) -> Measurement:
    """Run ``adapter_name`` on ``spec`` in a child; never raises for the benchmark's failures.
    An exported graph's export runs first, in a child of its own (:func:`_export_first`)."""
    from hardware.registry import get_adapter

    adapter = get_adapter(adapter_name)
    refusal = getattr(adapter, "refusal", None)
    exported_s = 0.0  # part of the run's wall time (its true cost), not of its load time or memory
    if refusal is None or not refusal(spec.config):  # a refused run fails in its child, with the reason
        t_export = time.monotonic()
        why = _export_first(adapter_name, spec, poll_s)
        exported_s = time.monotonic() - t_export
        if why:
            m = Measurement.failed(spec.config, "failed", why, wall_time_s=exported_s, warmup=spec.warmup)
            return adapter.annotate(m)
    t0 = time.monotonic()
    proc, recv, kills, started = _start_child(_child_main, (adapter_name, spec.to_dict()),
                                              f"perfcast-bench-{adapter_name}")
    stopped_while_starting = _KILLS[0] != kills  # the executor stopped while this child was starting
    if stopped_while_starting:
        _kill(proc)
    limit = spec.memory_limit_mib
    peak = 0.0
    result: Optional[dict[str, Any]] = None
    status, error = "", ""
    try:
        while True:
            if recv.poll(poll_s):
                try:
                    result = recv.recv()
                except EOFError:
                    result = None
                break
            elapsed = time.monotonic() - started
            if not proc.is_alive():
                if recv.poll(0):
                    continue
                break
            rss = _tree_rss_mib(proc.pid)
            peak = max(peak, rss)
            if limit is not None and rss > limit:
                _kill(proc)
                status, error = "oom", (f"memory limit exceeded: resident set {rss:.0f} MiB > limit "
                                        f"{limit:.0f} MiB after {elapsed:.1f} s; child killed")
                break
            if elapsed > spec.time_limit_s:
                _kill(proc)
                status, error = "timeout", f"time limit exceeded: {spec.time_limit_s:g} s; child killed"
                break
    finally:
        if proc.is_alive() and result is not None:
            proc.join(timeout=10)
        if proc.is_alive():
            _kill(proc)
        _RUNNING.discard(proc)
        recv.close()
    wall = time.monotonic() - t0 + exported_s
    if result is not None:
        m = Measurement.from_dict(result)
        m.wall_time_s = wall  # includes the child's start and teardown: the true cost
        return m
    if stopped_while_starting:
        status, error = "failed", "benchmark stopped: perfcast was interrupted while the child started"
    if not status:
        code = proc.exitcode
        if code is not None and code < 0 and -code == signal.SIGKILL:
            status, error = "oom", f"child killed by SIGKILL (the kernel's out-of-memory killer?) after {wall:.1f} s"
        else:
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            status, error = "failed", f"benchmark process died with {how} without a result"
    m = Measurement.failed(spec.config, status, error, wall_time_s=wall,
                           memory_peak_mib=peak or None, warmup=spec.warmup)
    return adapter.annotate(m)
