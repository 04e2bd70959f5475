"""cluster.yaml passes Ray's own cluster-config check, and the GPU recipe's pools fit its node types."""

from pathlib import Path

import pytest
import yaml

from rlsys.config import load_job

ROOT = Path(__file__).resolve().parents[2]
POOLS = ("rollout", "verifier", "learner")
NODE_TAGS = {"rollout_node", "learner_node", "verifier_node"}


@pytest.fixture(scope="module")
def cluster() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


@pytest.fixture(scope="module")
def gpu_job(tmp_path_factory):
    """jobs/cluster_gpu.yaml with its model path pointed at a stand-in model directory."""
    fake_model = tmp_path_factory.mktemp("model")
    (fake_model / "config.json").write_text("{}")
    return load_job(ROOT / "jobs" / "cluster_gpu.yaml", [f"model.path={fake_model}"])


def test_cluster_yaml_passes_rays_schema_check(cluster):
    from ray.autoscaler._private.util import prepare_config, validate_config

    # What `ray up` does before it talks to the cloud: fill in the provider's defaults, then validate.
    validate_config(prepare_config(cluster))


def test_each_pool_has_its_own_worker_type_with_scaling_limits(cluster):
    types = cluster["available_node_types"]
    workers = {name: spec for name, spec in types.items() if name != cluster["head_node_type"]}
    tags = {tag: name for name, spec in workers.items() for tag in spec["resources"] if tag in NODE_TAGS}
    assert set(tags) == NODE_TAGS
    assert len(set(tags.values())) == 3  # one node type per pool
    for spec in workers.values():
        assert 0 <= spec["min_workers"] <= spec["max_workers"]
    assert types[tags["rollout_node"]]["resources"]["GPU"] >= 1
    assert types[tags["learner_node"]]["resources"]["GPU"] >= 1
    assert "GPU" not in types[tags["verifier_node"]]["resources"]
    assert cluster["idle_timeout_minutes"] > 0
    assert sum(spec["min_workers"] for spec in workers.values()) <= cluster["max_workers"]


def test_setup_installs_the_project_with_the_gpu_extra_on_gpu_nodes(cluster):
    for name, spec in cluster["available_node_types"].items():
        if name == cluster["head_node_type"]:
            commands = " ".join(cluster["setup_commands"])
        else:
            commands = " ".join(spec["worker_setup_commands"])
        assert "bash scripts/setup.sh" in commands
        extra = "RLSYS_EXTRA=gpu" if spec["resources"].get("GPU") else "RLSYS_EXTRA=cpu"
        assert extra in commands, name


def test_gpu_job_requests_only_resources_the_cluster_provides(cluster, gpu_job):
    workers = [
        spec for name, spec in cluster["available_node_types"].items() if name != cluster["head_node_type"]
    ]
    for pool_name in POOLS:
        pool = getattr(gpu_job, pool_name)
        demand = {"CPU": pool.num_cpus, "GPU": pool.num_gpus, **pool.resources}
        demand = {key: amount for key, amount in demand.items() if amount > 0}
        assert set(pool.resources) & NODE_TAGS, f"{pool_name} does not pick a node type"
        # Some node type holds one actor, and that type's largest scale-out holds every replica.
        fitting = [
            spec for spec in workers if all(spec["resources"].get(k, 0) >= v for k, v in demand.items())
        ]
        assert fitting, f"no node type fits one {pool_name} actor: {demand}"
        capacity = max(
            spec["max_workers"] * min(spec["resources"][k] // v for k, v in demand.items())
            for spec in fitting
        )
        assert capacity >= pool.replicas, f"{pool_name}: {pool.replicas} replicas, room for {capacity}"


def test_gpu_job_names_a_real_model_path_placeholder():
    raw = yaml.safe_load((ROOT / "jobs" / "cluster_gpu.yaml").read_text())
    assert raw["model"]["path"].startswith("/models/")
    assert raw["train"]["output_dir"].startswith("/shared/")
