"""Helpers shared by the benchmarks: the machine's state, model directories, and an rlsys run driven step by
step through the real learner loop (`rlsys.loop.RLLoop`) so each step can be timed on its own."""

from __future__ import annotations

import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` from anywhere imports the project
    sys.path.insert(0, str(ROOT))
# A copy of an earlier build of the embedded model, used when the current recipe is not cached yet.
_EARLIER_EMBEDDED = Path("/tmp/rlc/models/embedded-b640b48ba751-seed0")

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def log(message: str) -> None:
    """Progress on stderr, so stdout ends with the machine-readable line."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> str:
    """The machine's state: cores, load average, torch threads (every figure depends on all three)."""
    import torch

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.node()} cores={os.cpu_count()} load=[{load}] torch_threads={torch.get_num_threads()} "
        f"date={time.strftime('%Y-%m-%d %H:%M')}"
    )


def loadavg() -> float:
    return os.getloadavg()[0]


def default_model() -> str:
    """The embedded model: the cached current build if there is one, else the earlier copy, else build it."""
    from rlsys.bootstrap.build import DEFAULT_RECIPE, recipe_key

    root = Path(os.environ.get("RLSYS_CACHE_DIR") or Path.home() / ".cache" / "rlsys")
    cached = root / "models" / f"embedded-{recipe_key(DEFAULT_RECIPE)}-seed0"
    if (cached / "config.json").is_file():
        return str(cached)
    if (_EARLIER_EMBEDDED / "config.json").is_file():
        return str(_EARLIER_EMBEDDED)
    from rlsys.bootstrap import ensure_embedded_model

    return str(ensure_embedded_model(seed=0))


def random_model(like: str, out_dir: Path, *, hidden: int, layers: int, heads: int, ffn: int) -> Path:
    """A randomly initialised Llama of the given size with `like`'s tokenizer and chat template."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(like)
    config.hidden_size, config.num_hidden_layers, config.intermediate_size = hidden, layers, ffn
    config.num_attention_heads = config.num_key_value_heads = heads
    config.head_dim = hidden // heads
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(out_dir)
    for path in Path(like).iterdir():
        if path.name.startswith(("tokenizer", "chat_template", "generation_config", "special_tokens")):
            shutil.copy(path, out_dir / path.name)
    return out_dir


def param_count(model_dir: str) -> int:
    from safetensors.torch import load_file

    return sum(t.numel() for t in load_file(str(Path(model_dir) / "model.safetensors")).values())


def median(values) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value) of per-seed figures; the deviation is nan when a
    figure is infinite (a target one seed never reached)."""
    if not all(math.isfinite(v) for v in values):
        return statistics.fmean(values), math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def start_ray(num_cpus: int, niceness: int | None = None) -> None:
    """A private local Ray runtime (never a shared one: `ray stop` would stop every user's Ray).

    Ray runs its workers at niceness 15 by default, so on a shared machine every pool actor yields the CPU to
    everyone else's processes while an in-process baseline does not; niceness 0 (the default here, unless
    `RAY_worker_niceness` is set) puts both on an equal footing.
    """
    import ray

    from rlsys.console import actor_runtime_env

    if niceness is not None:
        os.environ["RAY_worker_niceness"] = str(niceness)
    os.environ.setdefault("RAY_worker_niceness", "0")

    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        logging_level="ERROR",
        log_to_driver=False,  # worker chatter would interleave with the tables and the last line
        runtime_env=actor_runtime_env(),
    )


class RlsysSteps:
    """The quickstart job (or another of `jobs/`, or a variant by overrides) run step by step through
    `RLLoop.train_steps` on real Ray pools; the loop logs to a throw-away MLflow store and hands each step's
    metrics back."""

    def __init__(self, model_path: str, overrides: list[str], job: str = "quickstart.yaml") -> None:
        from actors.cluster import start_pools
        from rlsys.checkpoint import CheckpointStore
        from rlsys.config import load_job
        from rlsys.loop import RLLoop
        from rlsys.tracking import Tracker

        self.tmp = Path(tempfile.mkdtemp(prefix="rlsys-bench-"))
        self.config = load_job(
            ROOT / "jobs" / job,
            [
                f"model.path={model_path}",
                f"tracking.tracking_uri=sqlite:///{self.tmp / 'mlflow.db'}",
                "tracking.experiment=bench",
                "tracking.registered_model=null",
                f"train.output_dir={self.tmp / 'runs'}",
                *overrides,
            ],
        )

        self.tracker = Tracker(self.config.tracking, run_name="bench")
        store = CheckpointStore(self.config.train.output_dir, self.config.name)
        # Start-up is not training time (TRL's trainer, too, loads its model before the clock starts).
        self.pools, seconds = start_pools(self.config, model_path)
        log(f"pools started in {seconds:.1f}s")
        self.loop = RLLoop(self.config, self.pools, self.tracker, store)

    def steps(self, first: int, last: int) -> Iterator[dict[str, float]]:
        """Run RL steps `first`..`last` (from 1) as the loop does (`RLLoop.train_steps`, so with
        `train.max_staleness` too); yields each step's metrics, with `time/wall_s`: the wall time since the
        previous step ended, not counting the caller's own work between steps (nothing runs meanwhile)."""
        mark = time.perf_counter()
        for _, step_metrics in self.loop.train_steps(first, last):
            metrics = dict(step_metrics)
            metrics["time/wall_s"] = time.perf_counter() - mark
            yield metrics
            mark = time.perf_counter()

    def step(self, step: int) -> dict[str, float]:
        """Run RL step `step` alone; its metrics."""
        [metrics] = self.steps(step, step)
        return metrics

    def close(self) -> None:
        self.tracker.finish()
        shutil.rmtree(self.tmp, ignore_errors=True)
