"""train.max_staleness: the engines sample ahead while the learner trains, and stale samples are corrected."""

import json
from pathlib import Path

import mlflow
import pytest

from rlsys.config import load_job
from rlsys.data import task_prompts
from rlsys.order import step_batch

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STEPS = 4


def test_samples_drawn_ahead_train_with_their_staleness_corrected(
    tiny_model_dir, reward_model_dir, ray_runtime, mlflow_store, tmp_path
):
    from rlsys.job import run

    # A reward model (random head) scores every sample differently: every step trains and moves the weights.
    config = load_job(
        ROOT / "jobs" / "rlhf_quickstart.yaml",
        [
            f"model.path={tiny_model_dir}",
            f"reward_model.path={reward_model_dir}",
            "rollout.kv_cache_gib=0.05",
            "rollout.samples_per_prompt=4",
            "rollout.max_new_tokens=12",
            "learner.torch_threads=1",
            "learner.lr=1e-3",
            "task.eval_size=8",
            "task.train_size=200",
            f"train.steps={STEPS}",
            "train.prompts_per_step=4",
            "train.eval_every=0",
            "train.eval_samples=1",
            "train.max_staleness=2",
            "algorithm.off_policy_correction=truncated_is",
            f"train.output_dir={tmp_path / 'runs'}",
            "monitor=null",
            "tracking.experiment=staleness-test",
        ],
    )
    summary = run(config)
    client = mlflow.MlflowClient(tracking_uri=mlflow_store)

    def history(key: str) -> dict[int, float]:
        return {m.step: m.value for m in client.get_metric_history(summary.run_id, key)}

    # Step 1 samples with the starting weights; later steps' samples are at most two updates behind, and
    # only stale tokens get an importance weight (truncated IS keeps the loss's ratio at exactly 1).
    staleness = history("train/staleness_max")
    assert staleness[1] == 0 and all(0 <= staleness[step] <= min(2, step - 1) for step in staleness)
    assert any(staleness.values())  # the engines ran ahead at least once
    stale_share, ratio = history("train/stale_share"), history("train/ratio")
    for step, lag in staleness.items():
        assert (stale_share[step] > 0) == (lag > 0), step
        assert ratio[step] == pytest.approx(1.0, abs=1e-9)
    # The engines' log-probs match the learner's on fresh tokens; staleness adds the policy's own drift.
    assert history("train/logprob_mismatch")[1] < 0.05
    waits = history("time/ahead_wait_s")
    assert set(waits) == set(range(1, STEPS + 1)) and all(w >= 0 for w in waits.values())

    # Each step's prompts were drawn and recorded once, in order, exactly as when sampling on-policy.
    (prompts_file,) = (tmp_path / "runs").glob("rlhf_quickstart/*/prompts.jsonl")
    recorded = [json.loads(line) for line in prompts_file.read_text().splitlines()]
    train = task_prompts(config.task, "rl", config.task.train_size)
    assert [row["step"] for row in recorded] == list(range(1, STEPS + 1))
    assert [row["prompt_ids"] for row in recorded] == [
        [p.id for p in step_batch(train, step - 1, 4, config.seed)] for step in range(1, STEPS + 1)
    ]
    assert summary.steps_done == STEPS and Path(summary.model_dir, "model.safetensors").is_file()
