"""Reward-model training through the command line (`rlsys train-rm`, two DeepSpeed ranks of the learner pool
on the tiny model), and scoring with the saved model (locally and as a Ray actor)."""

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass

import mlflow
import pytest

from actors.reward import RewardModelScorer
from rlsys.rlhf.data import Ranking, write_rankings
from rlsys.rlhf.monitor import DriftReference, Spread
from rlsys.rlhf.reward_model import training_reference

pytestmark = pytest.mark.integration


def _rankings(n: int) -> list[Ranking]:
    """A preference any model can learn in a few steps: answers ending in "good" beat "so-so", then "bad"."""
    return [
        Ranking(
            ({"role": "user", "content": f"Question number {i}?"},),
            (f"{i} bad", f"{i} good", f"{i} so-so", f"{i} good"),
            (2, 0, 1, 0),  # two tied winners
            id=str(i),
        )
        for i in range(n)
    ]


@dataclass(frozen=True)
class Printed:
    """What `rlsys train-rm` printed."""

    run_id: str
    model_dir: str
    heldout_accuracy: float
    heldout_margin: float


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("rm")
    data = root / "rankings.jsonl"
    write_rankings(_rankings(120), data)
    job = root / "rm.yaml"
    job.write_text("name: rm_integration\n")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    overrides = [
        f"model.path={tiny_model_dir}",
        f"data.path={data}",
        "data.heldout_share=0.25",
        "train.epochs=2",
        "train.rankings_per_batch=8",
        "train.eval_every=5",
        "learner.replicas=2",
        "learner.num_cpus=0.5",
        "learner.torch_threads=1",
        "learner.micro_batch_size=2",  # several forwards per rank and step: accumulation is exercised
        "learner.lr=3e-3",
        f"train.output_dir={root / 'runs'}",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "rlsys.cli", "train-rm", str(job), *overrides],
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    def printed(pattern: str) -> str:
        return re.search(pattern, result.stdout).group(1)

    return Printed(
        run_id=printed(r"mlflow run id: (\w+)"),
        model_dir=printed(r"reward model saved to: (\S+)"),
        heldout_accuracy=float(printed(r"rm/heldout_accuracy: ([\d.]+)")),
        heldout_margin=float(printed(r"rm/heldout_margin: (-?[\d.]+)")),
    ), uri


def test_training_learns_and_logs(trained):
    summary, uri = trained
    assert summary.heldout_accuracy > 0.9 and summary.heldout_margin > 0
    history = mlflow.MlflowClient(tracking_uri=uri).get_metric_history(
        summary.run_id, "rm/heldout_pair_accuracy"
    )
    steps = sorted(m.step for m in history)
    assert steps[0] == 0 and 5 in steps and len(steps) >= 3
    client = mlflow.MlflowClient(tracking_uri=uri)
    metrics = client.get_run(summary.run_id).data.metrics
    assert {"rm/loss", "rm/margin", "rm/pair_accuracy", "rm/heldout_margin"} <= set(metrics)
    info = json.loads(open(f"{summary.model_dir}/reward_model.json").read())
    assert info["heldout_pair_accuracy"] == pytest.approx(summary.heldout_accuracy, abs=5e-4)
    # The monitor's reference for outlying scores: the held-out scores' median and robust spread.
    assert info["score_median"] == pytest.approx(metrics["rm/heldout_score_median"])
    assert info["score_scale"] > 0 and info["mean_response_tokens"] > 1
    assert training_reference(summary.model_dir) == DriftReference(
        Spread(info["score_median"], info["score_scale"]), info["mean_response_tokens"]
    )


def test_saved_model_loads_with_transformers(trained):
    from transformers import AutoModelForSequenceClassification

    summary, _ = trained
    model = AutoModelForSequenceClassification.from_pretrained(summary.model_dir)
    assert model.config.num_labels == 1 and model.score.out_features == 1


def test_scorer_orders_and_is_batch_invariant(trained):
    summary, _ = trained
    scorer = RewardModelScorer(summary.model_dir, batch_size=2, threads=1)
    prompt = [{"role": "user", "content": "Question number 999?"}]
    responses = ["999 good", "999 so-so", "999 bad", "a much longer answer that ends good"]
    scores = scorer.score([prompt] * 4, responses)
    assert scores[0] > scores[1] > scores[2]
    alone = [scorer.score([prompt], [r])[0] for r in responses]
    assert alone == pytest.approx(scores, abs=1e-5)  # padding and batching do not change a score
    with pytest.raises(ValueError, match="one prompt per response"):
        scorer.score([prompt], responses)


def test_scorer_as_a_ray_actor(trained, ray_runtime):
    ray = ray_runtime
    summary, _ = trained
    prompt = [{"role": "user", "content": "Question number 7?"}]
    actor = ray.remote(RewardModelScorer).options(num_cpus=0.5).remote(summary.model_dir, threads=1)
    remote = ray.get(actor.score.remote([prompt] * 2, ["7 good", "7 bad"]))
    local = RewardModelScorer(summary.model_dir, threads=1).score([prompt] * 2, ["7 good", "7 bad"])
    assert remote == pytest.approx(local, abs=1e-6) and remote[0] > remote[1]
    ray.kill(actor)
