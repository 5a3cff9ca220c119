"""Running the grid of ``elbocheck experiment kl-enough``: one run = train one arm for one seed, measure it, write
its row. Runs execute in this process, in a local process pool, or as Ray tasks on a cluster (``Settings.ray``).

A run writes ``runs/RUN_ID/`` (the trainer's files, and ``row.json`` when it finished); the driver appends each
finished row to ``results.csv``. A rerun into the same folder skips every run whose row is in the CSV, adds rows
that a run left in ``row.json`` but the driver never appended, and resumes a run killed while training from its
last checkpoint. Every worker uses ``Settings.torch_threads`` torch threads (one by default: the networks are small
and a second intra-op thread per worker only oversubscribes the cores).

Seeds: seed s fixes the data split (and subset) of every arm, and the initialisation, so the arms of one seed share
their held-out examples: comparisons between arms are paired by seed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .kl_enough_results import (
    COLUMNS,
    RESULTS_NAME,
    RUNS_FOLDER,
    SETTINGS_NAME,
    append_row,
    read_results,
    read_row_file,
    write_row_file,
)
from .kl_enough_settings import ARMS, DATA, NOT_RUN_DEFINING, Settings, latents_for

Job = tuple[str, int]
Finished = Callable[[Job, "dict | BaseException"], None]

_DATA_CACHE: dict = {}
_CLASSIFIER_CACHE: dict = {}


def run_id(arm: str, seed: int) -> str:
    return f"{arm}-seed{seed}"


# ---------------------------------------------------------------------------------------------------------------------
# Data and the independent classifiers (cached per process: the arms of one seed share them)
# ---------------------------------------------------------------------------------------------------------------------
def load_arm_data(data: str, settings: Settings, seed: int):
    """The data set of data key ``data`` for ``seed`` (which fixes the subset and the split)."""
    from elbocheck.models import DataSet, load_dataset

    choice = DATA[data]
    options = settings.data_options_for(data)
    if choice.needs_path:
        options["path"] = settings.data_path
    key = (data, seed, json.dumps(options, sort_keys=True, default=str))
    if key in _DATA_CACHE:
        return _DATA_CACHE[key]
    dataset = load_dataset(choice.dataset, **options, seed=seed)
    if choice.binary_label == "digit >= 5":
        dataset = DataSet(
            name=data, x=dataset.x, y=(dataset.y >= 5).long(), likelihood=dataset.likelihood, splits=dataset.splits,
            num_levels=dataset.num_levels, num_classes=2, class_names=("digit 0-4", "digit 5-9"),
            factors=dataset.y.unsqueeze(1), factor_names=("digit",), description=choice.description,
            options={**dataset.options, "label": "digit >= 5"},
        )
    _DATA_CACHE[key] = dataset
    return dataset


def classifiers_for(data: str, settings: Settings, seed: int):
    """(classifier of y from x, classifier of the digit from x or None), trained on the training split only."""
    from .kl_enough_measurements import train_label_classifier

    dataset = load_arm_data(data, settings, seed)
    key = (data, seed, json.dumps(settings.data_options_for(data), sort_keys=True, default=str))
    if key not in _CLASSIFIER_CACHE:
        train, heldout = dataset.split("train"), dataset.split("validation")
        label = train_label_classifier(train.x, train.y, heldout.x, heldout.y, seed=seed)
        identity = None
        if dataset.factors is not None and dataset.factor_names[:1] == ("digit",):
            digits = dataset.factors[:, 0]
            identity = train_label_classifier(train.x, digits[dataset.splits["train"]], heldout.x,
                                              digits[dataset.splits["validation"]], seed=seed)
        _CLASSIFIER_CACHE[key] = (label, identity)
    return _CLASSIFIER_CACHE[key]


# ---------------------------------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------------------------------
def train_and_measure(arm_name: str, seed: int, settings: Settings | Mapping[str, Any], out_dir: str) -> dict:
    """Train arm ``arm_name`` for ``seed`` into ``out_dir/runs/ARM-seedS`` (resuming a killed run from its
    checkpoint), measure it, write ``row.json`` there, and return the row. ``settings`` may be its JSON form (what
    is shipped to a Ray worker)."""
    import torch

    from elbocheck.models import TrainConfig, Trainer
    from elbocheck.models.trainer import CHECKPOINT_NAME

    from .kl_enough_measurements import measure_run, roles_of

    if not isinstance(settings, Settings):
        settings = Settings.from_json(settings)
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    arm = ARMS[arm_name]
    dataset = load_arm_data(arm.data, settings, seed)
    classifier, identity = classifiers_for(arm.data, settings, seed)
    run_dir = Path(out_dir) / RUNS_FOLDER / run_id(arm_name, seed)
    warmup = settings.warmup_epochs_for(arm.data)
    options = {**latents_for(arm.family, arm.data), **settings.network_for(arm.data), **arm.options,
               "kl_warmup_epochs": warmup}
    config = TrainConfig(
        model=arm.model, data=DATA[arm.data].dataset, epochs=settings.epochs_for(arm.data),
        batch_size=settings.batch_size, lr=settings.lr, seed=seed, device=settings.device, progress=False,
        model_options=options, data_options=dict(dataset.options),
    )
    start, cpu_start = time.perf_counter(), time.process_time()
    resume = (run_dir / CHECKPOINT_NAME).is_file()
    result = Trainer(config, run_dir, dataset=dataset, resume=resume).fit()
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(converge|Maximum iterations).*")  # sklearn probes
        measures = measure_run(arm.model, result.model, dataset, classifier, seed=seed,
                               kl_repeats=settings.kl_repeats, options=arm.options, identity_classifier=identity)
    measure_seconds = time.perf_counter() - start
    roles = roles_of(arm.model, arm.options)
    heldout_y = dataset.split("validation").y
    frequencies = torch.bincount(heldout_y).double() / heldout_y.numel()
    frequencies = frequencies[frequencies > 0]
    row = {
        "run_id": run_id(arm_name, seed), "arm": arm_name, "family": arm.family, "model": arm.model,
        "data": arm.data, "auxiliary": arm.auxiliary, "axes": dict(arm.axes), "seed": seed, "epochs": config.epochs,
        "warmup_epochs": warmup, "num_classes": int(dataset.num_classes),
        "label_entropy": float(-(frequencies * frequencies.log()).sum()),
        "majority_class_frequency": float(frequencies.max()),
        "label_latent": roles.label_latent or "", "other_latent": roles.other_latent,
        "num_heldout": int(heldout_y.numel()), "train_seconds": round(train_seconds, 3),
        "measure_seconds": round(measure_seconds, 3), "cpu_seconds": round(time.process_time() - cpu_start, 3),
        **measures,
    }
    unknown = sorted(set(row) - set(COLUMNS))
    if unknown:
        raise RuntimeError(f"kl-enough: measures without a column: {', '.join(unknown)}")
    write_row_file(run_dir, row)
    return row


def _initialize_worker(threads: int) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------------------------------
# What is left to run
# ---------------------------------------------------------------------------------------------------------------------
def check_settings_match(out_dir: Path, settings: Settings) -> None:
    """Refuse to mix runs of other run-defining settings into ``out_dir`` (naming the fields that differ)."""
    path = out_dir / SETTINGS_NAME
    if not path.is_file():
        return
    stored = json.loads(path.read_text())
    stored_defining = stored.get("run_defining", {})
    current = settings.run_defining()
    differing = []
    for key, value in current.items():
        if key in NOT_RUN_DEFINING:
            continue
        old = stored_defining.get(key)
        if isinstance(value, dict) and isinstance(old, dict):  # per data key: only keys both runs use must agree
            differing += [f"{key}[{k}]" for k in value if k in old and old[k] != value[k]]
        elif old != value:
            differing.append(key)
    if differing:
        raise ValueError(f"out: {out_dir} holds results of other settings (different {', '.join(differing)}); "
                         f"rerun with the settings of preset {stored.get('settings', {}).get('preset')!r} or choose "
                         f"another --out")


def record_settings(out_dir: Path, settings: Settings) -> None:
    path = out_dir / SETTINGS_NAME
    previous = json.loads(path.read_text()) if path.is_file() else {}
    merged = previous.get("run_defining", {})
    for key, value in settings.run_defining().items():
        merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    path.write_text(json.dumps({"settings": settings.to_json(), "run_defining": merged}, indent=2, sort_keys=True)
                    + "\n")


def pending_jobs(out_dir: Path, settings: Settings) -> tuple[list[Job], list[dict], int]:
    """(jobs still to run, rows to recover from ``row.json`` files, runs already in the CSV)."""
    in_csv = {row["run_id"] for row in read_results(out_dir)}
    jobs, recovered, skipped = [], [], 0
    for seed in settings.seeds:
        for arm in settings.arms:
            identifier = run_id(arm, seed)
            if identifier in in_csv:
                skipped += 1
                continue
            row = read_row_file(out_dir / RUNS_FOLDER / identifier)
            if row is not None:
                recovered.append(row)
            else:
                jobs.append((arm, seed))
    return jobs, recovered, skipped


# ---------------------------------------------------------------------------------------------------------------------
# Executors
# ---------------------------------------------------------------------------------------------------------------------
def execute(jobs: Sequence[Job], settings: Settings, out_dir: Path, finished: Finished) -> None:
    """Run ``jobs``, calling ``finished(job, row or exception)`` in this process as each ends: on Ray when
    ``settings.ray`` is set, else in ``settings.workers`` processes (in this process for one worker or one job)."""
    if not jobs:
        return
    if settings.ray:
        run_on_ray(jobs, settings, out_dir, finished)
    elif settings.workers <= 1 or len(jobs) == 1:
        for job in jobs:
            try:
                outcome: dict | BaseException = train_and_measure(job[0], job[1], settings, str(out_dir))
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as error:  # noqa: BLE001 - recorded, the other runs go on
                outcome = error
            finished(job, outcome)
    else:
        run_in_processes(jobs, settings, out_dir, finished)


def run_in_processes(jobs: Sequence[Job], settings: Settings, out_dir: Path, finished: Finished) -> None:
    """``settings.workers`` spawned processes (fork would copy torch's thread pools)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(settings.workers, len(jobs)), mp_context=context,
                             initializer=_initialize_worker, initargs=(settings.torch_threads,)) as pool:
        futures = {pool.submit(train_and_measure, arm, seed, settings, str(out_dir)): (arm, seed)
                   for arm, seed in jobs}
        try:
            for future in as_completed(futures):
                error = future.exception()
                finished(futures[future], error if error is not None else future.result())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast (``ValueError``) when nothing listens at a ``HOST:PORT`` or ``ray://HOST:PORT`` address: Ray itself
    keeps retrying an unreachable address for minutes."""
    import socket

    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"ray: expected auto, local, HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise ValueError(f"ray: cannot connect to a Ray cluster at {address!r}: {error}; start one with "
                         f"`ray start --head` or use --ray local") from error


def ray_address(value: str) -> str | None:
    """``auto`` (an existing cluster: RAY_ADDRESS or the one ``ray start`` left on this machine), ``local`` (start
    a cluster in this process, stopped at the end) or ``HOST:PORT`` / ``ray://HOST:PORT``."""
    return None if value == "local" else value


def run_on_ray(jobs: Sequence[Job], settings: Settings, out_dir: Path, finished: Finished) -> None:
    """Each job a Ray task (``num_cpus`` = the torch threads, at least 1) that trains, measures and writes its own
    ``row.json`` under ``out_dir`` (a path every node must see: a shared file system on a cluster); its row comes
    back to this process, which appends it to ``results.csv`` as it arrives."""
    try:
        import ray
    except ImportError as error:
        raise ValueError("ray: --ray needs Ray; install it with: python -m pip install -e '.[ray]'") from error

    started_here = not ray.is_initialized()
    if started_here:
        check_reachable(settings.ray)
        threads = str(max(1, settings.torch_threads))
        try:
            ray.init(address=ray_address(settings.ray), logging_level="WARNING", log_to_driver=False,
                     include_dashboard=False if settings.ray == "local" else None,
                     num_cpus=settings.workers if settings.ray == "local" else None,
                     runtime_env={"env_vars": {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}})
        except (ConnectionError, RuntimeError) as error:
            raise ValueError(f"ray: cannot connect to a Ray cluster at {settings.ray!r}: {error}; start one with "
                             f"`ray start --head` or use --ray local") from error
    pending: dict = {}
    try:
        task = ray.remote(num_cpus=max(1, settings.torch_threads), max_retries=1)(train_and_measure)
        payload = settings.to_json()
        pending = {task.remote(arm, seed, payload, str(out_dir.resolve())): (arm, seed) for arm, seed in jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    outcome: dict | BaseException = ray.get(ref)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as error:  # noqa: BLE001 - a failed task is recorded, the others go on
                    outcome = getattr(error, "cause", None) or error
                finished(job, outcome)
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()


# ---------------------------------------------------------------------------------------------------------------------
# The grid
# ---------------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class GridOutcome:
    trained: int
    recovered: int
    skipped: int
    failures: list[str]


def run_grid(out_dir: Path, settings: Settings, *, show_progress: bool) -> GridOutcome:
    """Run every (arm, seed) of ``settings`` not yet in ``out_dir/results.csv``, appending rows as runs finish."""
    from tqdm import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    check_settings_match(out_dir, settings)
    record_settings(out_dir, settings)
    results_path = out_dir / RESULTS_NAME
    jobs, recovered, skipped = pending_jobs(out_dir, settings)
    for row in recovered:
        append_row(results_path, row)
    outcome = GridOutcome(0, len(recovered), skipped, [])
    bar = tqdm(total=len(jobs), desc="kl-enough runs", unit="run", disable=not show_progress, dynamic_ncols=True)
    if (skipped or recovered) and show_progress:
        tqdm.write(f"kl-enough: {skipped} run(s) already in {results_path}, {len(recovered)} recovered from row.json")

    def finished(job: Job, result: dict | BaseException) -> None:
        if isinstance(result, BaseException):
            message = f"{run_id(*job)}: {type(result).__name__}: {result}"
            outcome.failures.append(message)
            tqdm.write(f"kl-enough: run failed: {message}")
        else:
            append_row(results_path, result)
            outcome.trained += 1
            bar.set_postfix_str(f"{run_id(*job)} done", refresh=False)
        bar.update(1)

    import torch

    threads = torch.get_num_threads()
    try:
        execute(jobs, settings, out_dir, finished)
    finally:
        bar.close()
        torch.set_num_threads(threads)  # runs in this process set it; leave the caller's setting as it was
    return outcome


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (how busy the machine was), NaN where the OS has none."""
    return [round(v, 2) for v in (os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3)]


def record_timing(out_dir: Path, settings: Settings, wall_seconds: float, outcome: GridOutcome,
                  load_at_start: list[float]) -> None:
    from .kl_enough_results import TIMING_NAME

    path = out_dir / TIMING_NAME
    history = json.loads(path.read_text()) if path.is_file() else []
    history.append({"preset": settings.preset, "wall_seconds": round(wall_seconds, 2), "runs_trained": outcome.trained,
                    "runs_recovered": outcome.recovered, "runs_skipped": outcome.skipped,
                    "failures": len(outcome.failures), "workers": settings.workers, "ray": settings.ray,
                    "torch_threads": settings.torch_threads, "cpu_count": os.cpu_count(),
                    "load_average_at_start": load_at_start, "load_average_at_end": load_average(),
                    "finished_at": time.strftime("%Y-%m-%d %H:%M:%S")})
    path.write_text(json.dumps(history, indent=2) + "\n")
