"""Where a job's checkpoints live, which one a resumed run starts from, and why it can be trusted.

    <output_dir>/<job name>/<run id>/checkpoints/step-<N>/   DeepSpeed state of step N, a manifest, a marker
    <output_dir>/<job name>/<run id>/checkpoints/step-<N>/critic/   PPO's critic state (in the same manifest)
    <output_dir>/<job name>/<run id>/latest.json             this run's newest complete checkpoint
    <output_dir>/<job name>/<run id>/prompts.jsonl           prompt ids of every step, in order (an audit)
    <output_dir>/<job name>/<run id>/samples.jsonl           the samples table's rows, a line per step
    <output_dir>/<job name>/<run id>/policy/                 the final policy as a Hugging Face model

The learner ranks write a checkpoint under a staging name; `commit` then flushes it, records every file's
SHA-256 in `manifest.json`, renames it into place and marks it complete, and only then moves the run's
pointer. Only marked checkpoints are resumed or counted when old ones are pruned, so a crash mid-write, a
power loss, or a partial folder left by another attempt never hides or deletes a complete one. A resume
verifies the files against the manifest (and the caller compares the manifest's digest with the one
recorded in MLflow when the checkpoint was made), so a checkpoint changed on a shared disk is refused
before it is unpickled.

The data order and every sampling seed are functions of (seed, step), so a checkpoint needs only the learner
state, the loop's own state and the step: a resumed run sees exactly the prompts an uninterrupted one would.
"""

import hashlib
import json
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from rlsys import atomic
from rlsys.errors import ConfigError

MANIFEST = "manifest.json"
_MAX_PARAM_LENGTH = 6000  # MLflow keeps a param's first 6000 characters (rlsys.tracking)
_STEP = re.compile(r"step-(\d+)")


@dataclass(frozen=True)
class CheckpointInfo:
    run_id: str
    step: int  # RL steps completed (also the policy version)
    directory: str  # the run's checkpoint root; the checkpoint itself is `directory/tag`

    @property
    def tag(self) -> str:
        return f"step-{self.step}"

    @property
    def staging_tag(self) -> str:
        """Where the ranks write it before `commit` (a name no reader takes for a checkpoint)."""
        return atomic.staging_name(Path(self.tag)).name

    @property
    def path(self) -> Path:
        return Path(self.directory) / self.tag


class CheckpointStore:
    def __init__(self, output_dir: str | Path, job_name: str) -> None:
        self.job_dir = Path(output_dir).resolve() / job_name

    def check_writable(self) -> None:
        """The job's output folder can be created and written (found at the start, not at a checkpoint)."""
        try:
            self.job_dir.mkdir(parents=True, exist_ok=True)
            probe = self.job_dir / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as err:
            raise ConfigError(
                f"train.output_dir: cannot write to {self.job_dir} ({err.strerror}): choose a folder you can "
                "write"
            ) from None

    def run_dir(self, run_id: str) -> Path:
        return self.job_dir / run_id

    def checkpoint_dir(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "checkpoints"

    def prepare(self, run_id: str, step: int) -> CheckpointInfo:
        """A fresh staging place for step `step`'s checkpoint (a leftover of a crashed write is cleared)."""
        info = CheckpointInfo(run_id=run_id, step=step, directory=str(self.checkpoint_dir(run_id)))
        shutil.rmtree(Path(info.directory) / info.staging_tag, ignore_errors=True)
        Path(info.directory).mkdir(parents=True, exist_ok=True)
        return info

    def commit(self, info: CheckpointInfo, keep: int) -> str:
        """Seal a checkpoint the ranks finished writing under `info.staging_tag`: manifest, rename, marker,
        the run's pointer; then keep the `keep` newest complete ones. Returns the manifest's digest."""
        staging = Path(info.directory) / info.staging_tag
        manifest = json.dumps(_file_digests(staging), indent=1, sort_keys=True)
        atomic.write_text(staging / MANIFEST, manifest)
        atomic.commit_directory(staging, info.path, mark=True)
        digest = hashlib.sha256(manifest.encode()).hexdigest()
        pointer = {**asdict(info), "manifest_sha256": digest}
        atomic.write_text(self.run_dir(info.run_id) / "latest.json", json.dumps(pointer) + "\n")
        self._prune(info, keep)
        return digest

    def _prune(self, committed: CheckpointInfo, keep: int) -> None:
        """Delete complete checkpoints older than the `keep` newest up to the one just committed; never the
        committed one, never one of a later step (a crashed attempt's), never a partial one (its own save
        clears it)."""
        steps = [step for step in self.complete_steps(committed.run_id) if step <= committed.step]
        for step in sorted(steps)[:-keep]:
            shutil.rmtree(Path(committed.directory) / f"step-{step}", ignore_errors=True)

    def complete_steps(self, run_id: str) -> list[int]:
        """The steps of a run with a complete checkpoint, in order."""
        root = self.checkpoint_dir(run_id)
        if not root.is_dir():
            return []
        found = [(match, path) for path in root.iterdir() if (match := _STEP.fullmatch(path.name))]
        return sorted(int(match.group(1)) for match, path in found if atomic.is_complete(path))

    def latest(self, run_id: str | None = None) -> CheckpointInfo | None:
        """The newest complete checkpoint of run `run_id`, or of the job's most recent run that has one."""
        runs = (
            [run_id] if run_id else [p.name for p in self.job_dir.iterdir()] if self.job_dir.is_dir() else []
        )
        newest: tuple[float, CheckpointInfo] | None = None
        for run in runs:
            steps = self.complete_steps(run)
            if not steps:
                continue
            info = CheckpointInfo(run_id=run, step=steps[-1], directory=str(self.checkpoint_dir(run)))
            committed_at = (info.path / atomic.COMPLETE).stat().st_mtime
            if newest is None or committed_at > newest[0]:
                newest = (committed_at, info)
        return newest[1] if newest else None

    def manifest_digest(self, info: CheckpointInfo) -> str:
        """The SHA-256 of a checkpoint's manifest: the digest recorded when it was made."""
        return hashlib.sha256((info.path / MANIFEST).read_bytes()).hexdigest()

    def verify(self, info: CheckpointInfo) -> str:
        """Check every file of a checkpoint against its manifest before anything is loaded from it; returns
        the manifest's digest (to compare with the one recorded when it was made)."""
        manifest_path = info.path / MANIFEST
        if not manifest_path.is_file():
            raise ConfigError(f"checkpoint {info.path} has no manifest: it was not written by this version")
        recorded = json.loads(manifest_path.read_text())
        actual = _file_digests(info.path, skip={MANIFEST, atomic.COMPLETE})
        changed = sorted(
            name for name in recorded.keys() | actual.keys() if recorded.get(name) != actual.get(name)
        )
        if changed:
            raise ConfigError(
                f"checkpoint {info.path} does not match its manifest ({len(changed)} files differ, e.g. "
                f"{changed[0]}): it was changed after it was written; resume from another checkpoint "
                f"(--resume RUN_ID) or start a new run"
            )
        return self.manifest_digest(info)

    def discard(self, info: CheckpointInfo) -> None:
        """Remove what a failed save left under the staging name (on a full disk: the room it took)."""
        shutil.rmtree(Path(info.directory) / info.staging_tag, ignore_errors=True)

    def record_prompts(self, run_id: str, step: int, prompt_ids: list[str]) -> None:
        """Append step `step`'s prompt ids to the run's `prompts.jsonl`: a whole line or nothing (a write
        cut short, e.g. by a full disk, is truncated away before the error propagates)."""
        path = self.run_dir(run_id) / "prompts.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.append_line(path, json.dumps({"step": step, "prompt_ids": prompt_ids}))

    def record_samples(self, run_id: str, step: int, rows: list[dict]) -> None:
        """Append step `step`'s rows of the samples table to the run's `samples.jsonl`, as they are made: a
        killed driver loses none of them (the table is logged to MLflow at the run's end)."""
        path = self.run_dir(run_id) / "samples.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.append_line(path, json.dumps({"step": step, "rows": rows}))

    def recorded_samples(self, run_id: str) -> list[dict]:
        """The samples table of a run so far, in step order; a step done twice (after a resume) keeps the rows
        of its last attempt, the one its metrics show."""
        path = self.run_dir(run_id) / "samples.jsonl"
        if not path.is_file():
            return []
        by_step = {entry["step"]: entry["rows"] for entry in map(json.loads, path.read_text().splitlines())}
        return [row for step in sorted(by_step) for row in by_step[step]]


def _file_digests(root: Path, skip: frozenset[str] | set[str] = frozenset()) -> dict[str, str]:
    """SHA-256 of every file under `root`, by relative path."""
    digests = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if relative in skip:
            continue
        sha = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        digests[relative] = sha.hexdigest()
    return digests


# Keys a resumed run may change: how much it runs, logs and checkpoints, and where and on how many actors it
# runs. Any other key changes what is computed, and a resume with a different value is refused.
_RESUMABLE = re.compile(
    r"train\.(steps|eval_every|eval_samples|checkpoint_every|keep_checkpoints|log_samples|step_timeout_s)"
    r"|tracking\..*|model\.resolved_path|verifier\.sandbox_.*"
    r"|.*\.(replicas|max_replicas|num_cpus|num_gpus|resources|max_restarts|call_timeout_s|start_timeout_s"
    r"|threads|engine_threads|torch_threads|kv_cache_gib|gpu_memory_utilization|micro_batch_size"
    r"|max_tokens_per_micro_batch|batch_size)"
)


def math_differences(
    saved: dict[str, str], current: dict[str, object], defaults: dict[str, object]
) -> list[str]:
    """The keys whose value changes what the run computes, with both values: saved (MLflow params of the
    run, as strings) against current. A key the checkpoint's run did not have (added to rlsys since) counts
    only when set away from its default."""
    lines = []
    for key, value in sorted(current.items()):
        if _RESUMABLE.fullmatch(key):
            continue
        before = saved.get(key)
        if before is None:
            if value != defaults.get(key):
                lines.append(f"{key}: not set when the checkpoint was made, {value!r} now")
            continue
        if before != str(value)[:_MAX_PARAM_LENGTH]:
            lines.append(f"{key}: {before} in the checkpoint's run, {value!r} now")
    return lines
