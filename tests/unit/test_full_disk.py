"""A full or unwritable output folder: writes are whole or absent, the run stops with one line naming what
could not be written and where, and what was complete before stays complete."""

import errno
import json
import os
from pathlib import Path

import pytest
from fakes import InMemoryTracker, fake_pools

from rlsys import atomic
from rlsys.checkpoint import CheckpointStore
from rlsys.config import load_job
from rlsys.errors import StorageError
from rlsys.loop import RLLoop

ROOT = Path(__file__).resolve().parents[2]


def _full_after(monkeypatch, room: int) -> None:
    """Every os.write takes at most `room` bytes in all, then fails as a full disk does."""
    real_write = os.write
    left = [room]

    def write(fd: int, data) -> int:
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        taken = real_write(fd, bytes(data[: left[0]]))
        left[0] -= taken
        return taken

    monkeypatch.setattr(os, "write", write)


def test_an_appended_line_is_whole_or_absent(tmp_path, monkeypatch):
    path = tmp_path / "prompts.jsonl"
    atomic.append_line(path, '{"step": 1}')
    _full_after(monkeypatch, room=5)  # part of the next line fits
    with pytest.raises(OSError) as raised:
        atomic.append_line(path, '{"step": 2, "prompt_ids": ["a", "b"]}')
    assert raised.value.errno == errno.ENOSPC
    assert path.read_text() == '{"step": 1}\n'  # the half line was taken back


def test_a_write_that_fails_on_a_full_disk_says_so(tmp_path, monkeypatch):
    """torch's zip writer reports a full disk as a RuntimeError about positions; it becomes ENOSPC naming
    the folder. With room left the same error is not a disk's, and propagates as it was."""
    with pytest.raises(RuntimeError, match="unexpected pos"), atomic.disk_full_as_oserror(tmp_path):
        raise RuntimeError("unexpected pos 576 vs 534")
    monkeypatch.setattr(atomic, "free_bytes", lambda path: 1024)
    with pytest.raises(OSError) as raised, atomic.disk_full_as_oserror(tmp_path):
        raise RuntimeError("unexpected pos 576 vs 534")
    assert raised.value.errno == errno.ENOSPC and str(tmp_path) in str(raised.value)
    assert atomic.os_reason(raised.value) == os.strerror(errno.ENOSPC)
    assert atomic.os_reason(TimeoutError()) is None


def test_a_full_disk_during_a_checkpoint_stops_the_run_and_keeps_the_last_complete_one(tmp_path):
    config = load_job(
        ROOT / "jobs" / "quickstart.yaml",
        [
            "task.eval_size=12",
            "task.train_size=60",
            "train.prompts_per_step=6",
            "rollout.samples_per_prompt=4",
            "train.eval_samples=2",
            "train.eval_every=0",
            "train.steps=6",
            "train.checkpoint_every=2",
            "tracking.registered_model=null",
            f"train.output_dir={tmp_path / 'runs'}",
        ],
    )
    pools = fake_pools()
    learner = pools.learner
    write_whole = learner.save_checkpoint

    def save_checkpoint(directory: str, tag: str, loop_state: dict) -> None:
        if loop_state["step"] < 4:
            return write_whole(directory, tag, loop_state)
        (Path(directory) / tag).mkdir(parents=True)
        (Path(directory) / tag / "half.pt").write_text("x")  # what fitted before the disk filled up
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), directory)

    learner.save_checkpoint = save_checkpoint
    store = CheckpointStore(config.train.output_dir, config.name)
    tracker = InMemoryTracker()
    with pytest.raises(StorageError, match="checkpoint of step 4 .*No space left on device"):
        RLLoop(config, pools, tracker, store).run()
    assert store.complete_steps(tracker.run_id) == [2]
    (leftover,) = store.checkpoint_dir(tracker.run_id).iterdir()  # the partial step 4 went with its room
    assert leftover.name == "step-2"
    assert json.loads((store.run_dir(tracker.run_id) / "latest.json").read_text())["step"] == 2
    assert set(tracker.at("train/reward_mean")) == {1, 2, 3, 4}  # every step done was recorded
