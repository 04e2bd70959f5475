"""`rlsys probe` through a real engine and verifier on the tiny model: per-question shares that add up, the
abstention data `rlsys sft` reads, the knowledge map in MLflow."""

import json
from pathlib import Path

import mlflow
import pytest

from rlsys import probe_job
from rlsys.probe_config import load_probe_config
from rlsys.tasks.export import export_task

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS, SAMPLES = 8, 4


def test_probe_writes_the_knowledge_map_and_abstention_data(
    tiny_model_dir, ray_runtime, mlflow_store, tmp_path
):
    files = export_task(tmp_path / "data", layout="plain", fmt="jsonl", train_size=4, eval_size=QUESTIONS)
    config = load_probe_config(
        ROOT / "jobs" / "abstain_probe.yaml",
        [
            f"model.path={tiny_model_dir}",
            f"data.questions={files['eval']}",
            f"output_dir={tmp_path / 'runs'}",
            f"rollout.samples_per_prompt={SAMPLES}",
            "rollout.max_new_tokens=16",
            "rollout.kv_cache_gib=0.05",
            "rollout.num_cpus=0.5",
            "rollout.engine_threads=1",
        ],
    )
    summary = probe_job.run(config)

    rows = [json.loads(line) for line in Path(summary.knowledge_file).read_text().splitlines()]
    assert len(rows) == summary.questions == QUESTIONS
    for row in rows:
        assert row["right"] + row["wrong"] + row["abstained"] == pytest.approx(1.0)
    examples = [json.loads(line) for line in Path(summary.abstention_file).read_text().splitlines()]
    assert len(examples) == summary.known + summary.unknown
    for example in examples:
        assert [m["role"] for m in example["messages"]][-2:] == ["user", "assistant"]
    client = mlflow.MlflowClient()
    assert "plots/knowledge_map.png" in {a.path for a in client.list_artifacts(summary.run_id, "plots")}
    assert client.get_metric_history(summary.run_id, "probe/right")
