"""Starting pools: a job whose pools reserve more than the cluster has is told which ones, before it waits."""

from pathlib import Path

from actors.cluster import resource_shortfall
from rlsys.config import load_job

ROOT = Path(__file__).resolve().parents[2]


def test_resource_shortfall_names_the_pools_that_do_not_fit():
    config = load_job(
        ROOT / "jobs" / "quickstart.yaml",
        ["rollout.replicas=3", "learner.num_gpus=1", "verifier.resources={verifier_node: 1}"],
    )
    lines = resource_shortfall(config, {"CPU": 2.0, "GPU": 1.0})
    # rollout 3 x 0.5 + verifier 0.25 + learner 0.75 = 2.5 CPUs; the GPU fits; no node has verifier_node.
    assert lines == [
        "CPU: the pools reserve 2.5 (rollout 3 x 0.5, verifier 1 x 0.25, learner 1 x 0.75), "
        "the cluster has 2",
        "verifier_node: the pools reserve 1 (verifier 1 x 1), the cluster has 0",
    ]
    assert resource_shortfall(load_job(ROOT / "jobs" / "quickstart.yaml"), {"CPU": 2.0}) == []
