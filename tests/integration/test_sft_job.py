"""`rlsys sft` end to end on the tiny model: two DeepSpeed ranks, packed conversations, the held-out loss
falling, metrics in MLflow, a Hugging Face model directory an RL job can load, and a resume that ends on the
same weights as the uninterrupted run."""

from pathlib import Path

import mlflow
import pytest
import torch
from safetensors.torch import load_file

from rlsys import sft_job
from rlsys.sft.config import load_sft_config
from rlsys.tasks.export import export_task

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STEPS = 4


def _config(tiny_model_dir: Path, files: dict[str, Path], output_dir: Path, *extra: str):
    return load_sft_config(
        ROOT / "jobs" / "sft_quickstart.yaml",
        [
            f"model.path={tiny_model_dir}",
            f"data.train={files['train']}",
            f"data.eval={files['eval']}",
            f"train.output_dir={output_dir}",
            f"train.steps={STEPS}",
            "train.examples_per_step=16",
            "train.eval_every=2",
            "train.checkpoint_every=3",
            "learner.replicas=2",
            "learner.num_cpus=0.5",
            "learner.torch_threads=1",
            "learner.micro_batch_size=2",  # several forwards per rank and step: accumulation is exercised
            "learner.warmup_steps=0",
            *extra,
        ],
    )


def test_sft_on_two_ranks_trains_saves_and_resumes(tiny_model_dir, ray_runtime, mlflow_store, tmp_path):
    files = export_task(tmp_path / "data", layout="sft", fmt="jsonl", train_size=96, eval_size=16)
    config = _config(tiny_model_dir, files, tmp_path / "runs")
    summary = sft_job.run(config)

    assert summary.steps == STEPS and summary.loss_after < summary.loss_before
    client = mlflow.MlflowClient()
    for key in ("train/loss", "train/tokens_per_s", "train/lr", "train/grad_norm"):
        assert [m.step for m in client.get_metric_history(summary.run_id, key)] == list(range(1, STEPS + 1))
    assert [m.step for m in client.get_metric_history(summary.run_id, "eval/loss")] == [0, 2, 4]
    assert "plots/loss.png" in {a.path for a in client.list_artifacts(summary.run_id, "plots")}

    # The output is what `rlsys run model.path=...` takes: weights, config, tokenizer with its chat template.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(summary.model_dir)
    AutoModelForCausalLM.from_pretrained(model_dir)
    assert AutoTokenizer.from_pretrained(model_dir).chat_template
    before = load_file(tiny_model_dir / "model.safetensors")
    after = load_file(model_dir / "model.safetensors")
    assert any(not torch.equal(before[name], after[name]) for name in before)

    # Resume from the step-3 checkpoint in the same MLflow run: step 4 again gives the same weights.
    resumed = sft_job.run(config, resume=summary.run_id)
    assert resumed.run_id == summary.run_id
    again = load_file(Path(resumed.model_dir) / "model.safetensors")
    assert all(torch.equal(after[name], again[name]) for name in after)
