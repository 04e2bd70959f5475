"""train.generate_ahead: the engines sample step s+1 while the learner trains step s."""

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


def test_generate_ahead_trains_on_samples_one_update_behind(
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
            "train.generate_ahead=true",
            f"train.output_dir={tmp_path / 'runs'}",
            "monitor=null",
            "tracking.experiment=generate-ahead-test",
        ],
    )
    summary = run(config)
    client = mlflow.MlflowClient(tracking_uri=mlflow_store)

    def history(key: str) -> dict[int, float]:
        return {m.step: m.value for m in client.get_metric_history(summary.run_id, key)}

    # Step 1 samples with the starting weights; every later step's samples are one update behind.
    assert history("train/policy_lag") == {1: 0.0, **{step: 1.0 for step in range(2, STEPS + 1)}}
    # On-policy the PPO ratio is exactly 1 (old log-probs = current, detached); off-policy it is taken
    # against the sampler's log-probs, which differ from the learner's.
    ratio = history("train/ratio")
    assert ratio[1] == pytest.approx(1.0, abs=1e-9)
    assert all(abs(ratio[step] - 1.0) > 1e-6 for step in range(2, STEPS + 1))
    waits = history("time/ahead_wait_s")
    assert set(waits) == set(range(1, STEPS + 1)) and all(w >= 0 for w in waits.values())

    # Each step's prompts were drawn and recorded once, in order, exactly as without generating ahead.
    (prompts_file,) = (tmp_path / "runs").glob("rlhf_quickstart/*/prompts.jsonl")
    recorded = [json.loads(line) for line in prompts_file.read_text().splitlines()]
    train = task_prompts(config.task, "rl", config.task.train_size)
    assert [row["step"] for row in recorded] == list(range(1, STEPS + 1))
    assert [row["prompt_ids"] for row in recorded] == [
        [p.id for p in step_batch(train, step - 1, 4, config.seed)] for step in range(1, STEPS + 1)
    ]
    assert summary.steps_done == STEPS and Path(summary.model_dir, "model.safetensors").is_file()
