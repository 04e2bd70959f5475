"""Where a job's checkpoints live, and which one a resumed run starts from.

    <output_dir>/<job name>/latest.json            the newest complete checkpoint: run id, step, folder
    <output_dir>/<job name>/<run id>/checkpoints/   DeepSpeed checkpoints (model, optimizer, scheduler)
    <output_dir>/<job name>/<run id>/prompts.jsonl  prompt ids of every step, in order (an audit trail)
    <output_dir>/<job name>/<run id>/policy/        the final policy as a Hugging Face model

The data order and every sampling seed are functions of (seed, step), so a checkpoint needs only the learner
state and the step: a resumed run sees exactly the prompts an uninterrupted one would have.
`latest.json` is replaced atomically after the learner has written its files, so it never names a partial
checkpoint.
"""

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class CheckpointInfo:
    run_id: str
    step: int  # RL steps completed (also the policy version)
    directory: str  # DeepSpeed checkpoint root; the tag is `step-<step>`

    @property
    def tag(self) -> str:
        return f"step-{self.step}"


class CheckpointStore:
    def __init__(self, output_dir: str | Path, job_name: str) -> None:
        self.job_dir = Path(output_dir).resolve() / job_name

    def run_dir(self, run_id: str) -> Path:
        return self.job_dir / run_id

    def latest(self) -> CheckpointInfo | None:
        pointer = self.job_dir / "latest.json"
        return CheckpointInfo(**json.loads(pointer.read_text())) if pointer.is_file() else None

    def checkpoint_dir(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "checkpoints"

    def commit(self, info: CheckpointInfo, keep: int) -> None:
        """Point `latest.json` at a checkpoint the learner finished writing; keep the `keep` newest."""
        pointer = self.job_dir / "latest.json"
        staging = pointer.with_suffix(".json.tmp")
        staging.write_text(json.dumps(asdict(info)))
        os.replace(staging, pointer)
        tags = sorted(
            (p for p in Path(info.directory).glob("step-*") if p.is_dir()), key=lambda p: int(p.name[5:])
        )
        for old in tags[:-keep]:
            shutil.rmtree(old, ignore_errors=True)

    def record_prompts(self, run_id: str, step: int, prompt_ids: list[str]) -> None:
        path = self.run_dir(run_id) / "prompts.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            handle.write(json.dumps({"step": step, "prompt_ids": prompt_ids}) + "\n")
