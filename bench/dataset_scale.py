"""Dataset scale: validating and serving 10k and 1M rows from Parquet, load time and peak memory.

    python bench/dataset_scale.py                 # 10k and 1M rows of the arithmetic task, verl layout
    python bench/dataset_scale.py --rows 10000 100000 1000000

For each size a fresh process reads the file the way a job does (`rlsys.data.load_task`: every row checked
against the job's reward, streamed in batches), then draws 50 steps of prompts (`step_batch`) and renders
them; it reports the load time, the time per step's prompts and its peak RSS. The rows live in a
memory-mapped Arrow file, so peak RSS should grow far less than the row count. The baseline for the ratio
is the smallest size, measured in the same run. Last line:
`rows=<n,...> load_s=<...> step_ms=<...> peak_rss_mb=<...> rss_ratio=<largest/smallest> rows_ratio=<...>`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, log, machine

_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from rlsys.config import load_job
from rlsys.data import load_task
from rlsys.order import step_batch
config = load_job({job!r}, ["task.train={train}", "task.eval={eval}"])
start = time.perf_counter()
task = load_task(config.task, config.verifier)
loaded = time.perf_counter() - start
start = time.perf_counter()
for step in range(50):
    prompts = step_batch(task.train, step, 16, 0)
    assert len(prompts) == 16 and all(p.gold for p in prompts)
per_step = (time.perf_counter() - start) / 50
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
result = {{"rows": len(task.train), "load_s": loaded, "step_ms": 1e3 * per_step, "peak_rss_mb": peak}}
print(json.dumps(result))
"""


def _write(rows: int, out: Path) -> tuple[Path, Path]:
    """`rows` training rows in verl's layout (the arithmetic task's problems, repeated with new ids past
    what the generator holds), and a small eval file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rlsys.tasks.arithmetic import problems
    from rlsys.tasks.export import row

    base = [row(p, "verl", "rl", i) for i, p in enumerate(problems("rl", 20_000, 0))]
    train = out / f"train-{rows}.parquet"
    writer = None
    for start in range(0, rows, len(base)):
        chunk = [
            dict(base[i % len(base)], extra_info={"split": "rl", "index": start + i})
            for i in range(min(len(base), rows - start))
        ]
        table = pa.Table.from_pylist(chunk)
        writer = writer or pq.ParquetWriter(train, table.schema)
        writer.write_table(table)
    writer.close()
    evals = out / "eval.parquet"
    pq.write_table(
        pa.Table.from_pylist([row(p, "verl", "eval", i) for i, p in enumerate(problems("eval", 100, 0))]),
        evals,
    )
    return train, evals


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 1_000_000])
    args = parser.parse_args()
    log(machine())
    job = str(ROOT / "jobs" / "dataset_quickstart.yaml")
    results = []
    with tempfile.TemporaryDirectory(prefix="rlsys-bench-data-") as tmp:
        for rows in sorted(args.rows):
            train, evals = _write(rows, Path(tmp))
            log(f"{rows} rows written ({train.stat().st_size / 2**20:.1f} MiB)")
            code = _CHILD.format(root=str(ROOT), job=job, train=train, eval=evals)
            child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
            if child.returncode != 0:
                raise SystemExit(child.stderr[-3000:])
            result = json.loads(child.stdout.strip().splitlines()[-1])
            results.append(result)
            log(
                f"{rows} rows: load {result['load_s']:.2f}s  step {result['step_ms']:.2f}ms  "
                f"peak RSS {result['peak_rss_mb']:.0f} MB  {machine()}"
            )
    first, last = results[0], results[-1]

    def joined(key: str, fmt: str) -> str:
        return ",".join(format(r[key], fmt) for r in results)

    print(
        f"rows={joined('rows', 'd')} load_s={joined('load_s', '.2f')} step_ms={joined('step_ms', '.2f')} "
        f"peak_rss_mb={joined('peak_rss_mb', '.0f')} "
        f"rss_ratio={last['peak_rss_mb'] / first['peak_rss_mb']:.2f} "
        f"rows_ratio={last['rows'] / first['rows']:.0f}"
    )


if __name__ == "__main__":
    main()
