"""Saves that are whole or absent, checkpoints that only count once complete, and resumes that refuse a
checkpoint that changed or a config that computes something else."""

import json
from pathlib import Path

import pytest

from rlsys import atomic
from rlsys.checkpoint import CheckpointStore, math_differences
from rlsys.config import load_job
from rlsys.errors import ConfigError


def _write_checkpoint(
    store: CheckpointStore, run: str, step: int, *, keep: int = 2, payload: str = "w"
) -> None:
    """What the learner ranks do (files under the staging tag), then the commit."""
    info = store.prepare(run, step)
    staging = Path(info.directory) / info.staging_tag
    staging.mkdir(parents=True)
    (staging / "model_states.pt").write_text(f"{payload}{step}")
    store.commit(info, keep=keep)


def test_a_directory_is_replaced_whole_or_left_as_it_was(tmp_path):
    final = tmp_path / "policy"
    with atomic.directory(final) as staging:
        (staging / "config.json").write_text("{}")
    assert (final / "config.json").is_file() and not atomic.staging_name(final).exists()
    with pytest.raises(RuntimeError), atomic.directory(final) as staging:
        (staging / "config.json").write_text('{"half": true}')
        raise RuntimeError("killed mid-write")
    assert (final / "config.json").read_text() == "{}"  # the old one stands, no partial one
    assert not atomic.staging_name(final).exists()
    with atomic.directory(final) as staging:
        (staging / "weights").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["weights"]
    atomic.write_text(tmp_path / "latest.json", "a")
    atomic.write_text(tmp_path / "latest.json", "b")
    assert (tmp_path / "latest.json").read_text() == "b" and not (tmp_path / ".latest.json.partial").exists()


def test_only_complete_checkpoints_count_and_pruning_keeps_the_one_committed(tmp_path):
    store = CheckpointStore(tmp_path, "job")
    for step in (2, 4, 6):
        _write_checkpoint(store, "run", step)
    assert store.complete_steps("run") == [4, 6]  # keep 2
    # A crashed attempt left a partial step-8 (no marker) and an unsealed staging folder; the run resumed
    # from 6 and commits 7: neither partial folder counts, and 7 and 6 stay.
    root = store.checkpoint_dir("run")
    (root / "step-8").mkdir()
    (root / "step-8" / "model_states.pt").write_text("half")
    (root / ".step-9.partial").mkdir()
    assert store.latest("run").step == 6
    _write_checkpoint(store, "run", 7)
    assert store.complete_steps("run") == [6, 7]
    assert json.loads((store.run_dir("run") / "latest.json").read_text())["step"] == 7
    assert store.latest("run").step == 7 and (root / "step-7").is_dir()


def test_a_complete_checkpoint_of_a_later_step_is_never_pruned_by_an_earlier_commit(tmp_path):
    store = CheckpointStore(tmp_path, "job")
    for step in (2, 4, 6):
        _write_checkpoint(store, "run", step, keep=3)
    _write_checkpoint(store, "run", 3, keep=1)  # a resume from 2 commits 3
    assert store.complete_steps("run") == [3, 4, 6]


def test_each_run_has_its_own_pointer_and_resume_picks_the_newest_or_the_one_named(tmp_path):
    store = CheckpointStore(tmp_path, "job")
    _write_checkpoint(store, "first", 10)
    _write_checkpoint(store, "second", 2)
    assert store.latest().run_id == "second"  # the most recently committed run, whatever its step
    assert store.latest("first").step == 10 and store.latest("missing") is None


def test_a_checkpoint_changed_after_it_was_written_is_refused_before_loading(tmp_path):
    store = CheckpointStore(tmp_path, "job")
    _write_checkpoint(store, "run", 5)
    info = store.latest("run")
    digest = store.verify(info)
    assert digest == json.loads((store.run_dir("run") / "latest.json").read_text())["manifest_sha256"]
    (info.path / "model_states.pt").write_text("tampered")
    with pytest.raises(ConfigError, match="does not match its manifest .* model_states.pt"):
        store.verify(info)


def test_a_resume_refuses_keys_that_change_the_math_and_allows_the_rest():
    config = load_job(None)
    defaults = config.flat()
    saved = {key: str(value) for key, value in defaults.items()}
    same = load_job(
        None, ["train.steps=500", "rollout.replicas=3", "learner.num_cpus=2", "tracking.run_name=x"]
    )
    assert math_differences(saved, same.flat(), defaults) == []
    changed = load_job(None, ["learner.lr=5e-5", "rollout.temperature=0.7"])
    assert math_differences(saved, changed.flat(), defaults) == [
        "learner.lr: 0.0001 in the checkpoint's run, 5e-05 now",
        "rollout.temperature: 1.0 in the checkpoint's run, 0.7 now",
    ]
    # A key added to rlsys after the checkpoint was made: fine at its default, refused when set.
    older = {key: value for key, value in saved.items() if key != "verifier.max_error_rate"}
    assert math_differences(older, defaults, defaults) == []
    stricter = load_job(None, ["verifier.max_error_rate=0.0"])
    assert math_differences(older, stricter.flat(), defaults) == [
        "verifier.max_error_rate: not set when the checkpoint was made, 0.0 now"
    ]


def test_an_unwritable_output_dir_is_found_before_anything_starts(tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should go")
    with pytest.raises(ConfigError, match="train.output_dir: cannot write to"):
        CheckpointStore(blocked, "job").check_writable()
    CheckpointStore(tmp_path / "fine", "job").check_writable()
