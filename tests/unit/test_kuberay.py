"""deploy/kuberay: the manifests pass KubeRay's CRD schemas and run jobs/cluster_gpu.yaml like cluster.yaml.

Offline: KubeRay's schemas are vendored in deploy/kuberay/crds/ (release and source in its README), and the
worker groups are read with Ray's own KubeRay config reader, the code the autoscaler sidecar runs in the head
pod to learn each group's resources and scaling limits. `pytest -k kuberay` selects these tests.
"""

import copy
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from rlsys.submit import EXCLUDES, validate_job

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CRDS = DEPLOY / "kuberay" / "crds"
POOLS = ("rollout", "verifier", "learner")
SCHEMAS = {"RayCluster": "ray.io_rayclusters.v1.schema.json", "RayJob": "ray.io_rayjobs.v1.schema.json"}
KINDS = {("ray.io/v1", "RayCluster"), ("ray.io/v1", "RayJob"), ("v1", "PersistentVolumeClaim")}
# Environment variables whose value must come from a Secret (or ConfigMap), never from a manifest's text.
SECRET_ENV = re.compile(r"TOKEN|PASSWORD|SECRET|CREDENTIAL|KEY|MLFLOW_TRACKING_URI", re.IGNORECASE)
LITERAL_SECRETS = {
    "a URL with a password": re.compile(r"\w+://[^/\s:@]+:[^/\s@]+@"),
    "an AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "a bearer token": re.compile(r"Bearer\s+[A-Za-z0-9._~+/=-]{16,}"),
}


def documents() -> dict[str, list[dict]]:
    """Every YAML document under deploy/, by file (relative path)."""
    return {
        path.relative_to(ROOT).as_posix(): [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        for path in sorted(DEPLOY.rglob("*.yaml"))
    }


def the_one(kind: str) -> dict:
    (doc,) = [doc for docs in documents().values() for doc in docs if doc.get("kind") == kind]
    return doc


@pytest.fixture(scope="module")
def raycluster() -> dict:
    return the_one("RayCluster")


@pytest.fixture(scope="module")
def rayjob() -> dict:
    return the_one("RayJob")


@pytest.fixture(scope="module")
def cluster() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


@pytest.fixture(scope="module")
def gpu_job(rayjob):
    """The RayJob's job config, checked as `rlsys submit` checks it: every key here, the model path on the
    cluster (where it exists), so a path that exists only there is replaced by the embedded model."""
    job, overrides = entrypoint_job(rayjob)
    assert job.is_file(), f"{job} does not exist"
    config, _ = validate_job(str(job), overrides)
    return config


def strict(schema: dict) -> dict:
    """The schema with undeclared fields forbidden, as `kubectl apply` (strict field validation) treats them.

    JSON Schema accepts keys a schema does not declare; Kubernetes drops them from a custom resource, and
    kubectl's default strict validation refuses them. Forbidding them here makes a misspelt key fail.
    """
    schema = dict(schema)
    if "properties" in schema:
        schema["properties"] = {name: strict(sub) for name, sub in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
    if isinstance(schema.get("additionalProperties"), dict):
        schema["additionalProperties"] = strict(schema["additionalProperties"])
    if isinstance(schema.get("items"), dict):
        schema["items"] = strict(schema["items"])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in schema:
            schema[key] = [strict(sub) for sub in schema[key]]
    return schema


@pytest.fixture(scope="module")
def validators() -> dict:
    from jsonschema import Draft7Validator

    return {
        kind: Draft7Validator(strict(json.loads((CRDS / name).read_text()))) for kind, name in SCHEMAS.items()
    }


def schema_errors(validators: dict, doc: dict) -> list[str]:
    errors = validators[doc["kind"]].iter_errors(doc)
    return sorted(f"{error.json_path}: {error.message}" for error in errors)


def autoscaling_config(cluster_spec: dict) -> dict:
    """What Ray's autoscaler makes of a RayCluster spec (its node types, limits, idle timeout), validated."""
    from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr

    return _derive_autoscaling_config_from_ray_cr(
        {"metadata": {"name": "rlsys", "namespace": "default"}, "spec": copy.deepcopy(cluster_spec)}
    )


def without_memory(resources: dict) -> dict:
    """Ray resources but `memory`, which KubeRay takes from the pod's limit (cluster.yaml leaves it out)."""
    return {key: amount for key, amount in resources.items() if key != "memory"}


def groups(cluster_spec: dict) -> list[tuple[str, dict]]:
    """(name, group spec) of the head and every worker group."""
    workers = [(group["groupName"], group) for group in cluster_spec["workerGroupSpecs"]]
    return [("head", cluster_spec["headGroupSpec"]), *workers]


def ray_container(group: dict) -> dict:
    return group["template"]["spec"]["containers"][0]  # KubeRay's convention: Ray runs in the first one


def from_secret(container: dict, variable: str) -> bool:
    """Whether `variable` reaches the container from a Secret or ConfigMap (env valueFrom, else envFrom)."""
    entries = [entry for entry in container.get("env", []) if entry["name"] == variable]
    if entries:  # an env entry wins over envFrom
        return "valueFrom" in entries[-1]
    return any({"secretRef", "configMapRef"} & set(source) for source in container.get("envFrom", []))


def cluster_specs() -> list[tuple[str, dict]]:
    """(file, RayCluster spec) of every RayCluster, and of the cluster every RayJob starts."""
    return [
        (path, doc["spec"].get("rayClusterSpec", doc["spec"]))
        for path, docs in documents().items()
        for doc in docs
        if doc["kind"] in SCHEMAS
    ]


def entrypoint_job(rayjob: dict) -> tuple[Path, list[str]]:
    """The job file and overrides of the RayJob's `rlsys run` entrypoint."""
    argv = shlex.split(rayjob["spec"]["entrypoint"])
    assert argv[:2] == ["rlsys", "run"], rayjob["spec"]["entrypoint"]
    job, *overrides = argv[2:]
    return ROOT / job, [arg for arg in overrides if not arg.startswith("-")]


def test_kuberay_manifests_pass_the_vendored_crd_schemas(validators):
    kinds = set()
    for path, docs in documents().items():
        for doc in docs:
            kind = (doc.get("apiVersion"), doc.get("kind"))
            assert kind in KINDS, f"{path}: unexpected {kind}"
            kinds.add(kind)
            if doc["kind"] in validators:
                errors = schema_errors(validators, doc)
                assert not errors, f"{path} does not pass the {doc['kind']} schema:\n" + "\n".join(errors)
    assert {("ray.io/v1", "RayCluster"), ("ray.io/v1", "RayJob")} <= kinds


def test_kuberay_schema_check_catches_a_misspelt_or_mistyped_field(validators, raycluster):
    misspelt = copy.deepcopy(raycluster)
    worker = misspelt["spec"]["workerGroupSpecs"][0]
    worker["minReplica"] = worker.pop("minReplicas")
    assert any("minReplica" in error for error in schema_errors(validators, misspelt))
    mistyped = copy.deepcopy(raycluster)
    mistyped["spec"]["workerGroupSpecs"][0]["maxReplicas"] = "4"
    assert any("maxReplicas" in error for error in schema_errors(validators, mistyped))
    nested = copy.deepcopy(raycluster)
    ray_container(nested["spec"]["headGroupSpec"])["volumeMount"] = []
    assert any("volumeMount" in error for error in schema_errors(validators, nested))


def test_kuberay_worker_groups_match_cluster_yaml_node_types_one_for_one(raycluster, cluster):
    derived = autoscaling_config(raycluster["spec"])
    types = cluster["available_node_types"]
    head = cluster["head_node_type"]
    # cluster.yaml's rollout_gpu is the group rollout-gpu (Kubernetes names take no underscore).
    expected = {name.replace("_", "-"): spec for name, spec in types.items() if name != head}
    workers = {name: spec for name, spec in derived["available_node_types"].items() if name != "headgroup"}
    assert set(workers) == set(expected)
    for name, spec in expected.items():
        group = workers[name]
        assert group["min_workers"] == spec["min_workers"], name
        assert group["max_workers"] == spec["max_workers"], name
        assert without_memory(group["resources"]) == spec["resources"], name  # CPU, GPU, the pool's tag
    head_resources = derived["available_node_types"]["headgroup"]["resources"]
    assert without_memory(head_resources) == types[head]["resources"]  # no CPU: no pool actor on the head
    assert derived["idle_timeout_minutes"] == cluster["idle_timeout_minutes"]
    assert derived["upscaling_speed"] == cluster["upscaling_speed"]
    assert derived["max_workers"] <= cluster["max_workers"]


def test_kuberay_pods_reserve_the_gpus_ray_advertises(raycluster):
    for name, group in groups(raycluster["spec"]):
        container = ray_container(group)
        gpus = int(container["resources"].get("limits", {}).get("nvidia.com/gpu", 0))
        assert gpus == int(group.get("resources", {}).get("GPU", 0)), name
        assert "nvidia.com/gpu" not in container["resources"].get("requests", {}), name  # requests = limits
        # No memory overcommit: a pod evicted under node pressure takes a learner rank or an engine with it.
        requests, limits = container["resources"]["requests"], container["resources"]["limits"]
        assert requests["memory"] == limits["memory"], name


def test_kuberay_rayjob_runs_a_job_file_that_validates(rayjob, gpu_job):
    assert rayjob["spec"]["metadata"] == {"rlsys_job": gpu_job.name}  # as `rlsys submit` tags it
    runtime_env = yaml.safe_load(rayjob["spec"]["runtimeEnvYAML"])
    assert set(EXCLUDES) <= set(runtime_env["excludes"]), "exclude what `rlsys submit` excludes"
    workdir = re.search(r"^WORKDIR (\S+)", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE).group(1)
    assert runtime_env["working_dir"] == workdir, "the job's code is the image's copy of the project"


def test_kuberay_rayjob_runs_on_the_raycluster_spec_and_cleans_up(rayjob, raycluster):
    spec = rayjob["spec"]
    assert spec["rayClusterSpec"] == raycluster["spec"], "rayjob.yaml's cluster drifted from raycluster.yaml"
    assert "clusterSelector" not in spec
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] > 0
    # The driver stays on the head, which advertises no CPU to Ray.
    assert not {"entrypointNumCpus", "entrypointNumGpus", "entrypointResources"} & set(spec)


def test_kuberay_job_pools_fit_the_worker_groups(rayjob, gpu_job):
    derived = autoscaling_config(rayjob["spec"]["rayClusterSpec"])
    workers = [spec for name, spec in derived["available_node_types"].items() if name != "headgroup"]
    advertised = {key for spec in workers for key in spec["resources"]}
    for pool_name in POOLS:
        pool = getattr(gpu_job, pool_name)
        assert pool.resources, f"{pool_name} does not pick a worker group"
        missing = set(pool.resources) - advertised
        assert not missing, f"{pool_name} asks for {missing}, which no worker group advertises"
        demand = {"CPU": pool.num_cpus, "GPU": pool.num_gpus, **pool.resources}
        demand = {key: amount for key, amount in demand.items() if amount > 0}
        # Some group holds one actor, and that group's largest scale-out holds every replica.
        fitting = [
            spec for spec in workers if all(spec["resources"].get(k, 0) >= v for k, v in demand.items())
        ]
        assert fitting, f"no worker group fits one {pool_name} actor: {demand}"
        capacity = max(
            spec["max_workers"] * min(spec["resources"][k] // v for k, v in demand.items())
            for spec in fitting
        )
        assert capacity >= pool.replicas, f"{pool_name}: {pool.replicas} replicas, room for {capacity}"


def test_kuberay_autoscaling_auth_and_a_private_dashboard(raycluster):
    spec = raycluster["spec"]
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["authOptions"]["mode"] == "token"
    ray_version = tuple(int(part) for part in spec["rayVersion"].split("."))
    assert ray_version >= (2, 52, 0), "token authentication needs Ray 2.52"
    head = spec["headGroupSpec"]
    assert head["serviceType"] == "ClusterIP"
    assert not head.get("enableIngress")
    assert head.get("headService", {}).get("spec", {}).get("type", "ClusterIP") == "ClusterIP"


def test_kuberay_image_is_setup_sh_with_the_gpu_extra_on_the_ray_version(raycluster):
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    ray_version = re.search(r"^ARG RAY_VERSION=(\S+)", dockerfile, re.MULTILINE).group(1)
    assert re.search(r"^FROM rayproject/ray:\$\{RAY_VERSION\}-py311-gpu$", dockerfile, re.MULTILINE)
    assert "RLSYS_EXTRA=gpu bash scripts/setup.sh" in dockerfile
    assert raycluster["spec"]["rayVersion"] == ray_version
    images = {ray_container(group)["image"] for _, spec in cluster_specs() for _, group in groups(spec)}
    assert len(images) == 1, f"one image for every Ray pod, not {images}"


def test_kuberay_every_pod_mounts_the_shared_volume_and_gets_mlflow_from_a_secret(rayjob, gpu_job):
    (pvc,) = documents()["deploy/kuberay/pvc.yaml"]
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]  # written by the learner, read by the driver
    claim = pvc["metadata"]["name"]
    job, _ = entrypoint_job(rayjob)
    model_path = yaml.safe_load(job.read_text())["model"]["path"]  # gpu_job's may be the stand-in
    pods = [(f"{path} {name}", group) for path, spec in cluster_specs() for name, group in groups(spec)]
    for name, group in pods:
        volumes = {
            volume["name"]
            for volume in group["template"]["spec"]["volumes"]
            if volume.get("persistentVolumeClaim", {}).get("claimName") == claim
        }
        container = ray_container(group)
        mounts = {mount["mountPath"] for mount in container["volumeMounts"] if mount["name"] in volumes}
        assert "/shared" in mounts, name
        for path in (gpu_job.train.output_dir, model_path):
            assert any(Path(path).is_relative_to(mount) for mount in mounts), f"{name}: {path} is not mounted"
        assert from_secret(container, "MLFLOW_TRACKING_URI"), (
            f"{name}: MLFLOW_TRACKING_URI is not from a Secret"
        )


def test_kuberay_manifests_hold_no_literal_secret(rayjob):
    secrets = [path for path, docs in documents().items() for doc in docs if doc["kind"] == "Secret"]
    assert not secrets, f"{secrets}: create Secrets with kubectl, not from the repository"
    for path, cluster_spec in cluster_specs():
        for name, group in groups(cluster_spec):
            for container in group["template"]["spec"]["containers"]:
                for entry in container.get("env", []):
                    if SECRET_ENV.search(entry["name"]):
                        assert "value" not in entry, f"{path} {name}: {entry['name']} is a literal"
    env_vars = yaml.safe_load(rayjob["spec"]["runtimeEnvYAML"]).get("env_vars", {})
    assert not [name for name in env_vars if SECRET_ENV.search(name)], "secrets go in the Secret, not the job"
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file() and path.parent != CRDS:
            text = path.read_text()
            for what, pattern in LITERAL_SECRETS.items():
                assert not pattern.search(text), f"{path.relative_to(ROOT)} holds {what}"
