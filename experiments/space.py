"""Search space (YAML) -> canonical configurations.

Run mode: the cross product of the axes. ``hardware`` entries are adapter names (``torch-cpu``,
``onnxruntime``, ``openvino``: their runtime is fixed), platform names (``cpu``: one adapter per
requested runtime, as ``perfcast benchmark --hardware cpu --runtime X`` does) or hardware ids
(``cpu-amd-epyc-2c``, for loops whose workers are elsewhere). Each becomes the hardware id the
adapter stores, so the configurations match the store's keys. Sequence lengths go through the
catalog (vision models have none; CLIP's text tower caps at 77), and duplicates are dropped.

Replay mode: the configurations of the oracle dataset, filtered by whatever axes are given.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Optional

from engine.config import Config
from experiments.config import ExperimentConfigError, SearchSpace

if TYPE_CHECKING:
    import pandas as pd


def hardware_runtime_pairs(sp: SearchSpace, source: str = "experiment config") -> list[tuple[str, str]]:
    """(hardware id, runtime) pairs the ``hardware`` and ``runtimes`` axes stand for."""
    from hardware.registry import ADAPTERS, PLATFORMS, RUNTIME_ADAPTERS, get_adapter

    runtimes = list(sp.runtimes or ["torch"])
    pairs: list[tuple[str, str]] = []
    for h in sp.hardware or []:
        low = h.strip().lower()
        if low in ADAPTERS:
            adapter = get_adapter(low)
            if sp.runtimes and adapter.runtime not in sp.runtimes:
                continue
            pairs.append((adapter.hardware_id(), adapter.runtime))
        elif low in PLATFORMS:
            for rt in runtimes:
                name = RUNTIME_ADAPTERS.get((low, rt))
                if name is None:
                    valid = sorted(r for (p, r) in RUNTIME_ADAPTERS if p == low)
                    raise ExperimentConfigError(f"{source}: invalid search_space.runtimes {rt!r} for hardware "
                                                f"'{low}'; valid: {', '.join(valid)}")
                pairs.append((_platform_device(get_adapter(name), low), rt))
        else:
            _check_hardware_id(h.strip(), source)
            pairs.extend((h.strip(), rt) for rt in runtimes)
    return list(dict.fromkeys(pairs))


def _platform_device(adapter: object, platform: str) -> str:
    """The id of the device a platform name stands for: the one this machine's adapter measures,
    else (no such device here: torch without CUDA) the catalog's device for the platform, so
    ``suggest`` can still rank it and ``run`` says in one line that it cannot run here. Asking
    the adapter was a CUDA assertion traceback on a CPU-only machine."""
    try:
        return adapter.hardware_id()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - any failure means: not on this machine
        from engine.catalog import resolve_hardware

        return resolve_hardware("cuda" if platform == "gpu" else platform).id


def _check_hardware_id(hw: str, source: str) -> None:
    """A hardware id must be known (catalog, detected or a user catalog), else the config is
    refused before any benchmark, naming the valid ones. A CPU id the catalog does not know may
    be a remote worker's (Ray), which only that worker can resolve: it passes."""
    from engine.catalog import resolve_hardware
    from engine.errors import UnknownNameError

    try:
        resolve_hardware(hw)
    except UnknownNameError as exc:
        if not hw.lower().startswith("cpu-"):
            raise ExperimentConfigError(f"{source}: search_space.hardware: {exc}") from None


def expand_space(sp: SearchSpace, source: str = "experiment config") -> list[Config]:
    """The run-mode search space as canonical configurations (see the module docstring)."""
    from engine.catalog import get_model
    from engine.workloads import effective_seq_len

    if not sp.models:  # a replay config leaves the axes to its dataset: say where it runs
        raise ExperimentConfigError(f"{source}: missing required key 'search_space.models' (run mode; a replay "
                                    f"config runs with `perfcast replay {source.rsplit('.', 1)[0]}`)")
    if not sp.hardware:
        raise ExperimentConfigError(f"{source}: missing required key 'search_space.hardware' (run mode)")
    out: list[Config] = []
    entries = [get_model(model) for model in sp.models]  # an unknown model is named first, as before
    pairs = hardware_runtime_pairs(sp, source)
    # thread counts are a CPU's axis
    threads_of = {hw: (sp.threads or [0]) if _is_cpu(hw) else [0] for hw, _ in pairs}
    if any(sp.threads or []) and not any(_is_cpu(hw) for hw in threads_of):
        _threads_without_a_cpu(sp.threads, list(threads_of), source)
    threads_of = {hw: _check_threads(hw, threads, source) for hw, threads in threads_of.items()}
    for entry in entries:
        seqs = sorted({effective_seq_len(entry, s) for s in (sp.seq_lengths or [128])})
        for hw, rt in pairs:
            for b in sp.batch_sizes or [1]:
                for s in seqs:
                    for p in sp.precisions or ["fp32"]:
                        for mode in sp.modes or ["inference"]:
                            for t in threads_of[hw]:
                                out.append(Config(entry.name, hw, int(b), int(s), p, mode, rt, int(t)))
    return list(dict.fromkeys(out))


def _check_threads(hw: str, threads: list[int], source: str) -> list[int]:
    """The thread counts a CPU can run: more threads than it has cores are left out with a warning
    (``threads: [512]`` on a 2-core machine was benchmarked and stored as t512, 15x slower), and a
    space with none left is refused. The shipped configs list 1 and 2, so on a 1-core machine they
    run with 1 instead of failing. A remote CPU the catalog does not know keeps them all."""
    import warnings

    from engine.catalog import resolve_hardware
    from engine.models.features import entry_cores

    try:
        entry = resolve_hardware(hw)
    except Exception:  # noqa: BLE001 - unknown here: a remote worker's CPU
        return threads
    cores = entry_cores(entry)
    bad = [t for t in threads if t > cores]
    if bad and len(bad) == len(threads):
        raise ExperimentConfigError(f"{source}: invalid search_space.threads {bad[0]} for {hw}; valid: 0 to {cores} "
                                    "(its cores; 0 = the runtime's default)")
    if bad:
        warnings.warn(f"{source}: search_space.threads {', '.join(map(str, bad))} left out for {hw}, which has "
                      f"{cores} core{'s' if cores != 1 else ''}", UserWarning, stacklevel=3)
    return [t for t in threads if t <= cores]


def _threads_without_a_cpu(threads: list[int], hardware: list[str], source: str) -> None:
    """A space whose thread counts no device uses: they are CPU intra-op threads, so on GPUs alone
    the loop ran t0 while the config listed t1 and t2, without a word. Said, not refused: the
    configurations still run (at the runtime's default), as optimize's space does on a GPU."""
    import warnings

    warnings.warn(f"{source}: search_space.threads {', '.join(map(str, threads))} left out: threads apply to CPU "
                  f"devices only and search_space.hardware has none ({', '.join(hardware)})", UserWarning,
                  stacklevel=3)


def _is_cpu(hw: str) -> bool:
    """Whether a hardware id is a CPU (a remote worker's id the catalog does not know is one: only
    CPU ids pass :func:`_check_hardware_id` unknown). A GPU's space once held t1 and t2 copies of
    each configuration, which the runtime ignores there (optimize's space never did)."""
    from engine.catalog import resolve_hardware

    try:
        return resolve_hardware(hw).kind == "cpu"
    except Exception:  # noqa: BLE001 - unknown here: a remote CPU
        return True


def space_from_dataset(sp: SearchSpace, data: "pd.DataFrame") -> list[Config]:
    """Replay mode: distinct configurations of ``data`` that match the given axes."""
    from engine.models.features import configs_from_frame

    df = data
    filters = {"model": sp.models, "runtime": sp.runtimes, "batch_size": sp.batch_sizes, "seq_len": sp.seq_lengths,
               "precision": sp.precisions, "mode": sp.modes, "threads": sp.threads}
    for col, values in filters.items():
        if values:
            df = df[df[col].isin(list(values))]
    if sp.hardware:
        wanted = set()
        for h in sp.hardware:
            wanted.add(h)
            try:
                from hardware.registry import ADAPTERS, PLATFORMS, get_adapter

                low = h.lower()
                if low in ADAPTERS or low in PLATFORMS:
                    wanted.add(get_adapter(low).hardware_id())
            except Exception:  # noqa: BLE001 - an id that is not an adapter name filters as itself
                pass
        df = df[df["hardware"].isin(wanted)]
    df = df.drop_duplicates("config_key") if "config_key" in df else df
    return list(dict.fromkeys(configs_from_frame(df)))


def check_replay_hardware(sp: SearchSpace, data: "pd.DataFrame", source: str = "experiment config") -> None:
    """A replay's ``hardware`` entries must each name something: an adapter or platform (this
    machine), a device of the replay data, or a catalog id. Anything else is a typo, refused in one
    line with the closest names; ``hardware: [cpuu]`` was replayed on the data's device and
    reported as "this machine's device is not in the replay data"."""
    from engine.catalog import resolve_hardware
    from engine.errors import UnknownNameError
    from hardware.registry import ADAPTERS, PLATFORMS

    in_data = sorted(map(str, data["hardware"].unique())) if "hardware" in data else []
    for h in sp.hardware or []:
        name = h.strip()
        if name.lower() in ADAPTERS or name.lower() in PLATFORMS or name in in_data:
            continue
        try:
            resolve_hardware(name)
        except UnknownNameError:
            err = UnknownNameError("hardware", name, [*ADAPTERS, *PLATFORMS, *in_data])
            raise ExperimentConfigError(f"{source}: search_space.hardware: {err} (replay: a device of the replay "
                                        "data, a catalog id, or this machine's cpu)") from None


def replay_space_elsewhere(sp: SearchSpace, data: "pd.DataFrame",
                           need: int) -> Optional[tuple[str, SearchSpace, list[Config]]]:
    """(device, ``sp`` pointed at it, its configurations in ``data``): the device of ``data`` that
    holds the most configurations of ``sp``'s other axes, when it holds at least ``need``; None
    otherwise, or when ``sp`` names no device.

    A real loop's search space says ``hardware: [cpu]``, i.e. this machine's CPU. When that CPU is
    not in the shipped data (any machine but the one that recorded them), the baselines of the
    after-run report can still be replayed on the same models, batches, sequences, precisions and
    runtimes as measured on the shipped device: the same pool in every axis but the device."""
    if not sp.hardware or "hardware" not in data:
        return None
    best: Optional[tuple[str, SearchSpace, list[Config]]] = None
    for device in sorted(data["hardware"].unique()):
        alt = sp.model_copy(update={"hardware": [str(device)]})
        pool = space_from_dataset(alt, data)
        if len(pool) >= need and (best is None or len(pool) > len(best[2])):
            best = (str(device), alt, pool)
    return best


class ReplayPool(NamedTuple):
    """Where a search space is replayed: ``device`` is None when the data hold the space as given,
    else the device of the data it was pointed at (``space`` says so too)."""

    device: Optional[str]
    space: SearchSpace
    configs: list[Config]


def replay_pool(sp: SearchSpace, data: "pd.DataFrame", need: int) -> Optional[ReplayPool]:
    """``sp``'s configurations in ``data`` if there are at least ``need``; else the same axes on the
    device of ``data`` that holds most of them (:func:`replay_space_elsewhere`); None if neither.
    The one rule behind ``perfcast replay`` of a real loop's config and the after-run baselines."""
    here = space_from_dataset(sp, data)
    if len(here) >= need:
        return ReplayPool(None, sp, here)
    elsewhere = replay_space_elsewhere(sp, data, need)
    return ReplayPool(*elsewhere) if elsewhere is not None else None


def adapter_for(config: Config) -> tuple[Optional[str], str]:
    """(adapter on THIS machine that measures ``config``, "") or (None, why)."""
    from experiments.ray_cluster import adapter_for_here

    return adapter_for_here(config)
