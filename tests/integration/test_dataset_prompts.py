"""Dataset files through real engines: the same problems exported as verl Parquet, TRL JSONL and a
save_to_disk folder are rendered with the model's chat template and answered exactly as the built-in task."""

from pathlib import Path

import pytest

from actors.cluster import start_pools
from rlsys.config import load_job
from rlsys.data import load_task
from rlsys.scoring import sample_and_score
from rlsys.tasks.export import export_task
from rlsys.types import Sampling

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EVAL = 24


def test_exported_files_get_the_built_in_tasks_greedy_answers(tiny_model_dir, ray_runtime, tmp_path):
    small = [
        f"model.path={tiny_model_dir}",
        "rollout.kv_cache_gib=0.05",
        "rollout.replicas=1",
        "learner.num_cpus=0.5",
    ]
    builtin = load_job(
        ROOT / "jobs" / "quickstart.yaml", [*small, f"task.eval_size={EVAL}", "task.train_size=100"]
    )
    pools, _ = start_pools(builtin, str(tiny_model_dir))
    greedy = Sampling(n=1, temperature=0.0, max_new_tokens=16)

    def answers(prompts):
        scored = sample_and_score(pools.rollout, [pools.verifier], prompts, greedy, [None] * len(prompts))
        return [group[0].token_ids for group in scored.groups], [r[0].correct for r in scored.rewards]

    expected = answers(load_task(builtin.task, builtin.verifier).evals[""])
    assert len(expected[0]) == EVAL and all(expected[0])
    for layout, fmt in (("verl", "parquet"), ("trl", "jsonl"), ("plain", "disk")):
        files = export_task(tmp_path / layout, layout=layout, fmt=fmt, train_size=100, eval_size=EVAL)
        config = load_job(
            ROOT / "jobs" / "dataset_quickstart.yaml",
            [*small, f"task.train={files['train']}", f"task.eval={files['eval']}", f"task.eval_size={EVAL}"],
        )
        (prompts,) = load_task(config.task, config.verifier).evals.values()
        assert answers(prompts) == expected, (layout, fmt)
