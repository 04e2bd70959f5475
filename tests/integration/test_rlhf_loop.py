"""RLHF through Ray: the reward pool scores batches with a real (randomly initialised, saved) reward model,
and a short RL job against it runs the adaptive KL and the reward-hacking monitor end to end."""

from pathlib import Path

import mlflow
import pytest
from fakes import answers

from actors.pools import RayRewardPool
from actors.reward import RewardModelScorer
from rlsys.algorithms.kl_control import KLController
from rlsys.config import RewardModelConfig, load_job

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_reward_pool_scores_a_batch_across_replicas(reward_model_dir, ray_runtime):
    config = RewardModelConfig(path=str(reward_model_dir), replicas=2, num_cpus=0.25, threads=1, batch_size=3)
    pool = RayRewardPool(config.model_copy(update={"weight": 0.5}), dtype="float32")
    responses = [f"{i} + {i} = {2 * i}\n#### {2 * i}" if i % 2 else f"#### {i}" for i in range(7)]
    prompts, samples = answers([str(2 * i) for i in range(7)], responses)
    rewards = pool.score(prompts, samples).result()
    chats = [list(prompt.messages) for prompt in prompts]
    local = RewardModelScorer(str(reward_model_dir), threads=1).score(chats, responses)
    scores = [reward.components["reward_model"] for reward in rewards]
    assert scores == pytest.approx(local, abs=1e-5)  # in order, whichever replica scored which chunk
    assert [reward.score for reward in rewards] == pytest.approx([0.5 * s for s in local], abs=1e-5)
    assert len(set(scores)) == 7  # a random head still tells different answers apart
    assert pool.size() == 2 and all(reward.correct is None for reward in rewards)
    for actor in pool.actors:
        ray_runtime.kill(actor)


def _rlhf_job(model_dir: Path, reward_model_dir: Path, output_dir: Path):
    return load_job(
        ROOT / "jobs" / "rlhf_quickstart.yaml",
        [
            f"model.path={model_dir}",
            f"reward_model.path={reward_model_dir}",
            "reward_model.num_cpus=0.25",
            "reward_model.threads=1",
            "rollout.num_cpus=0.5",
            "rollout.engine_threads=1",
            "rollout.kv_cache_gib=0.05",
            "rollout.samples_per_prompt=4",
            "rollout.max_new_tokens=12",
            "verifier.num_cpus=0.1",
            "learner.num_cpus=0.5",
            "learner.torch_threads=1",
            "learner.micro_batch_size=16",
            "task.eval_size=8",
            "task.train_size=200",
            "train.steps=4",
            "train.prompts_per_step=4",
            "train.eval_every=0",
            "train.eval_samples=1",
            f"train.output_dir={output_dir}",
            "algorithm.kl_coef=0.1",
            "algorithm.kl_target=0.01",
            "algorithm.kl_horizon=10",
            "monitor.every=2",
            "monitor.max_kl=1e-9",  # any KL at all: the monitor must alert as soon as the policy moved
            "monitor.stop_on_alert=true",
            "tracking.experiment=rlhf-test",
        ],
    )


def test_rlhf_job_scores_with_the_reward_model_adapts_kl_and_stops_on_alert(
    tiny_model_dir, reward_model_dir, ray_runtime, mlflow_store, tmp_path
):
    from rlsys.job import run

    config = _rlhf_job(tiny_model_dir, reward_model_dir, tmp_path / "runs")
    summary = run(config)
    # Monitor at steps 0 and 2; by step 2 the policy has moved, so the KL detector fires and the run stops.
    assert summary.monitor.alert_step == 2 and summary.steps_done == 2
    client = mlflow.MlflowClient(tracking_uri=mlflow_store)

    def history(key: str) -> list[tuple[int, float]]:
        return sorted((m.step, m.value) for m in client.get_metric_history(summary.run_id, key))

    run_data = client.get_run(summary.run_id).data
    assert run_data.tags["monitor.hacking_alert"] == "true" and run_data.tags["monitor.alert_step"] == "2"
    assert "kl" in run_data.tags["monitor.alert_detectors"].split(",")
    assert [step for step, _ in history("monitor/proxy")] == [0, 2]
    assert [step for step, _ in history("monitor/gold")] == [0, 2]  # the hidden preference
    assert [value for _, value in history("monitor/hacking_alert")] == [0.0, 1.0]
    assert [step for step, _ in history("eval/accuracy")] == [0, 2]  # the final eval at the last step run

    # The reward is the reward model's score (math has weight 0 in the job): logged as its own component.
    reward_model, total = history("reward/reward_model"), history("train/reward_mean")
    assert [step for step, _ in reward_model] == [1, 2]
    assert [v for _, v in reward_model] == pytest.approx([v for _, v in total], abs=1e-5)

    # The loop's beta follows the KL controller fed with each step's measured KL and trained sequences.
    replay = KLController(0.1, target=0.01, horizon=10)
    kls, shares = dict(history("train/kl")), dict(history("train/informative_groups"))
    for step, beta in history("train/kl_coef"):
        assert beta == pytest.approx(replay.beta)
        if step in kls:
            replay.update(kls[step], round(shares[step] * 4) * 4)
    assert history("train/kl_coef")[1][1] != pytest.approx(0.1)  # it did adapt

    best = Path(summary.monitor.best_gold_dir)
    assert (best / "model.safetensors").is_file() and (best / "best_gold.json").is_file()
    assert run_data.tags["monitor.best_gold_step"] == str(summary.monitor.best_gold_step)
    artifacts = {a.path for a in client.list_artifacts(summary.run_id, "plots")}
    assert artifacts == {"plots/accuracy.png", "plots/proxy_vs_gold.png"}
    assert "monitor_samples.json" in {a.path for a in client.list_artifacts(summary.run_id)}
