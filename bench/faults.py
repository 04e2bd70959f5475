"""Fault injection: kill or freeze each actor kind and the driver, fill the output disk, corrupt the run's
pointer and take MLflow away, during short real runs, and check that each ends as defined.

    python bench/faults.py                          # every fault, on the tiny model (built on first use)
    python bench/faults.py --only driver_kill,disk_full --model DIR
    python bench/faults.py --list

Each scenario starts `rlsys run` as a separate process from this checkout (`python -m rlsys.cli`), exactly as
a user does on a laptop: its own local Ray runtime (in a private temp dir, so its processes can be found and
nobody else's are touched) and its own MLflow store. It waits for a step line, injects the fault into the
process it names (SIGKILL: a crash, an OOM kill; SIGSTOP: a hang, a stuck driver call, a dead node that does
not answer), and judges the outcome:

    completed        the run finished on its own: the pool replaced the actor and did its work again
    failed loudly    the run stopped with one line (no traceback) naming what failed, the step reached, the
                     last complete checkpoint and the resume command; then `--resume` finished it
    resumed          the driver died without a word; `--resume` finished the run

and audits the finished run in MLflow and the run folder: steps lost (done twice because they came after the
last complete checkpoint), samples lost (drawn for a step and never scored: `rollout/samples` short of
prompts x samples, or a step missing), rows of the samples table missing, a run not FINISHED. A run that
does not end within its wall-clock limit is hung. After a killed driver, every process of its Ray runtime
must be gone (`orphans`).

A fault survives when its outcome is the defined one and nothing is lost. The last line:

    faults=N survived=N hung=0 lost_samples=0

Not covered here: learner ranks > 1, a Ray cluster of several nodes.
The disk-full case mounts a small tmpfs (it needs root, and is reported `skipped` without it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from _common import ROOT, log, machine

STEPS = 6
EVERY = 2  # checkpoint every 2 steps: a fault after step 3 loses at most step 3
PROMPTS, SAMPLES = 2, 2  # per step: prompts x samples drawn and scored
RUN_LIMIT_S = 900  # a run (start-up included) that has not ended by then is hung
DEADLINE_S = 45  # rollout and verifier call deadlines: a frozen actor is killed after this
ORPHAN_WAIT_S = 180  # a killed driver's Ray processes still there after this are orphans


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- processes -----------------------------------------------------------------------------------------


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every live process (a zombie has exited: it is not counted)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        state, parent = stat.rpartition(")")[2].split()[:2]
        if state != "Z":
            found[int(proc.name)] = (int(parent), cmdline)
    return found


def session_processes(temp_root: Path) -> dict[int, str]:
    """The processes of the Ray runtime whose temp dir is under `temp_root` (raylet, GCS...: their command
    lines name it) and their descendants (the actors, whose titles are `ray::<Class>...`)."""
    procs = _processes()
    mine = {pid for pid, (_, cmdline) in procs.items() if str(temp_root) in cmdline}
    grew = True
    while grew:
        more = {pid for pid, (parent, _) in procs.items() if parent in mine} - mine
        mine |= more
        grew = bool(more)
    return {pid: procs[pid][1] for pid in mine}


def actor_pids(temp_root: Path, cls: str, wait_s: float = 120) -> list[int]:
    """The processes of this session's actors of class `cls`, once there is one."""
    deadline = time.monotonic() + wait_s
    while True:
        pids = sorted(
            pid for pid, cmd in session_processes(temp_root).items() if cmd.startswith(f"ray::{cls}")
        )
        if pids or time.monotonic() > deadline:
            return pids
        time.sleep(0.5)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


# --- one `rlsys run` -----------------------------------------------------------------------------------


class Driver:
    """`rlsys run` in a process of its own, its output read line by line (and kept in `log_path`)."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self.started = time.monotonic()
        self.log_path = log_path
        self.proc = subprocess.Popen(
            command,
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        with open(self.log_path, "a") as out:
            for line in self.proc.stdout:
                out.write(line)
                out.flush()
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout_s: float = RUN_LIMIT_S) -> re.Match | None:
        """The first output line matching `pattern`; None when the output ended or time ran out first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for line in self.lines:
                    if match := regex.search(line):
                        return match
                left = deadline - time.monotonic()
                if self._ended or left <= 0:
                    return None
                self._changed.wait(timeout=min(left, 1.0))

    def finish(self, limit_s: float = RUN_LIMIT_S) -> int | None:
        """The exit status, or None when the run was still going `limit_s` after it started (hung: its
        whole session is killed)."""
        try:
            return self.proc.wait(timeout=max(1.0, limit_s - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return None

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def run_id(self) -> str | None:
        match = re.search(r"MLflow run (\w+)", self.output)
        return match.group(1) if match else None

    def last_line(self) -> str:
        lines = [line.strip() for line in self.lines if line.strip()]
        return lines[-1] if lines else ""


@dataclass
class Case:
    """One scenario's folders, store and job."""

    name: str
    work: Path
    model: str
    tracking_uri: str
    extra: list[str] = field(default_factory=list)
    runs: int = 0

    def __post_init__(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        # Short: Ray's unix socket paths are limited to 107 bytes.
        self.temp_root = Path(tempfile.mkdtemp(prefix=f"rlf-{self.name[:6]}-", dir="/tmp"))

    @property
    def output_dir(self) -> Path:
        return self.work / "runs"

    def start(self, *extra: str) -> Driver:
        self.runs += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(
            MLFLOW_TRACKING_URI=self.tracking_uri,
            RAY_TMPDIR=str(self.temp_root),
            PYTHONPATH=os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p),
        )
        command = [
            sys.executable,
            "-m",
            "rlsys.cli",
            "run",
            str(ROOT / "jobs" / "quickstart.yaml"),
            "name=faults",
            f"model.path={self.model}",
            f"train.steps={STEPS}",
            f"train.checkpoint_every={EVERY}",
            f"train.prompts_per_step={PROMPTS}",
            f"rollout.samples_per_prompt={SAMPLES}",
            "rollout.max_new_tokens=8",
            "rollout.replicas=1",  # two in the scenario that kills one
            # The tiny model's answers all score 0 under math: this reward tells any two apart, so every
            # step trains and the learner's state matters to a resume.
            "verifier.rewards={math: 1.0, 'tests.integration.distinct_reward:distinct': 1.0}",
            "rollout.kv_cache_gib=0.05",
            f"rollout.call_timeout_s={DEADLINE_S}",
            f"verifier.call_timeout_s={DEADLINE_S}",
            "learner.torch_threads=1",
            "task.eval_size=4",
            "task.train_size=100",
            "train.eval_every=0",
            "train.eval_samples=1",
            "tracking.registered_model=null",
            f"train.output_dir={self.output_dir}",
            *self.extra,
            *extra,
        ]
        log(f"{self.name}: run {self.runs}{' (resume)' if '--resume' in extra else ''}")
        return Driver(command, env, self.work / f"run{self.runs}.log")

    def cleanup(self) -> None:
        """Kill what this scenario's Ray runtimes left (nothing, when all went well), frozen ones too."""
        for pid in session_processes(self.temp_root):
            _signal(pid, signal.SIGCONT)
            _signal(pid, signal.SIGKILL)
        shutil.rmtree(self.temp_root, ignore_errors=True)


# --- the audit -----------------------------------------------------------------------------------------


@dataclass
class Audit:
    steps_lost: int = 0
    samples_lost: int = 0
    problems: list[str] = field(default_factory=list)


def audit(case: Case, run_id: str | None) -> Audit:
    """What the finished run holds: every step's samples scored, every step's rows, FINISHED."""
    import mlflow

    result = Audit()
    if run_id is None:
        result.problems.append("no MLflow run id in the output")
        result.samples_lost = STEPS * PROMPTS * SAMPLES
        return result
    client = mlflow.MlflowClient(tracking_uri=case.tracking_uri)
    run = client.get_run(run_id)
    if run.info.status != "FINISHED":
        result.problems.append(f"MLflow run {run.info.status}")
    history = sorted(
        client.get_metric_history(run_id, "rollout/samples"), key=lambda m: (m.step, m.timestamp)
    )
    scored = {m.step: m.value for m in history}  # a step done twice: its last attempt
    for step in range(1, STEPS + 1):
        result.samples_lost += max(0, PROMPTS * SAMPLES - int(scored.get(step, 0)))
    result.steps_lost = len(history) - len(scored)  # steps completed, then done again after the resume
    run_dir = case.output_dir / "faults" / run_id
    samples = run_dir / "samples.jsonl"
    rows = (
        {json.loads(line)["step"] for line in samples.read_text().splitlines()}
        if samples.is_file()
        else set()
    )
    if rows != set(range(1, STEPS + 1)):
        result.problems.append(f"samples table misses steps {sorted(set(range(1, STEPS + 1)) - rows)}")
    if not (run_dir / "policy" / "config.json").is_file():
        result.problems.append("no final policy")
    return result


@dataclass
class Outcome:
    fault: str
    outcome: str  # completed | failed loudly, resumed | resumed | hung | broken: ... | skipped: ...
    expected: str
    audit: Audit = field(default_factory=Audit)
    took_s: float = 0.0
    detail: str = ""

    @property
    def hung(self) -> bool:
        return self.outcome.startswith("hung")

    @property
    def survived(self) -> bool:
        clean = self.audit.samples_lost == 0 and not self.audit.problems
        return self.outcome == self.expected and clean

    def line(self) -> str:
        problems = f" problems={'; '.join(self.audit.problems)}" if self.audit.problems else ""
        return (
            f"fault={self.fault} outcome={self.outcome!r} steps_lost={self.audit.steps_lost} "
            f"samples_lost={self.audit.samples_lost} took={self.took_s:.0f}s{problems}"
            + (f" | {self.detail}" if self.detail else "")
        )


def _loud(driver: Driver, status: int | None, *words: str) -> str | None:
    """Why a stopped run did not fail loudly as defined (None: it did): exit 1, the last line an rlsys error
    naming `words`, the step reached and the resume command, and no traceback."""
    if status is None:
        return "hung"
    last = driver.last_line()
    wanted = ["rlsys: error:", *words, "after step", "--resume"]
    missing = [word for word in wanted if word not in last]
    if status != 1 or missing or "Traceback" in driver.output:
        return f"exit {status}, last line {last[:300]!r}"
    return None


def _resume_and_audit(case: Case, outcome: Outcome, run_id: str | None, started: float) -> Outcome:
    resumed = case.start("--resume")
    status = resumed.finish()
    outcome.took_s = time.monotonic() - started
    if status is None:
        outcome.outcome = "hung (resume)"
        return outcome
    if status != 0:
        outcome.outcome = f"broken: resume exit {status}"
        outcome.detail = resumed.last_line()[:300]
        return outcome
    if resumed.run_id() != run_id:
        outcome.audit.problems.append(f"the resume continued run {resumed.run_id()}, not {run_id}")
        return outcome
    outcome.outcome = outcome.outcome or "resumed"
    outcome.audit = audit(case, run_id)
    return outcome


# --- the scenarios -------------------------------------------------------------------------------------


def actor_faults(
    faults: list[tuple[str, str, signal.Signals]], overrides: Callable[[Case], list[str]]
) -> Callable[[Case], list[Outcome]]:
    """One run (the job with `overrides(case)`) that meets `faults` in turn, (name, actor class, signal)
    each injected after the step of its place: every one must be survived with the run completing on its
    own."""

    def scenario(case: Case) -> list[Outcome]:
        started = time.monotonic()
        driver = case.start(*overrides(case))
        injected = []
        for step, (name, cls, signum) in enumerate(faults, start=1):
            if driver.wait_for(rf"step {step}/{STEPS}\b") is None:
                break
            pids = actor_pids(case.temp_root, cls)
            if not pids:
                injected.append((name, f"no {cls} process found"))
                continue
            target = pids[-1] if signum == signal.SIGSTOP else pids[0]  # freeze the newest (a restarted one)
            _signal(target, signum)
            injected.append((name, f"{signal.Signals(signum).name} {cls} pid {target} after step {step}"))
        status = driver.finish()
        took = time.monotonic() - started
        run_audit = audit(case, driver.run_id()) if status == 0 else Audit()
        if status is None:
            result = "hung"
        elif status == 0:
            result = "completed"
        else:
            result = f"broken: exit {status}"
        detail = "" if status == 0 else driver.last_line()[:300]
        outcomes = []
        for name, how in injected:
            outcomes.append(
                Outcome(name, result, "completed", run_audit, took, f"{how}{'; ' + detail if detail else ''}")
            )
        for name, *_ in faults[len(injected) :]:
            outcomes.append(Outcome(name, f"not injected ({result})", "completed", run_audit, took, detail))
        return outcomes

    injections = ", ".join(
        f"after step {step} a {cls} gets {signum.name}" for step, (_, cls, signum) in enumerate(faults, 1)
    )
    scenario.__doc__ = f"One run: {injections}. Each must be survived, the run completing on its own."
    return scenario


def learner_fault(signum: int) -> Callable[[Case], list[Outcome]]:
    """After step 3 the learner rank is killed (or frozen): the step fails naming the rank within the
    learner's deadline (ranks are never restarted: their optimizer state would be lost), then a resume
    finishes the run from the checkpoint of step 2."""

    def scenario(case: Case) -> list[Outcome]:
        """After step 3 the learner rank gets {signal}: the run fails loudly naming it; a resume ends it."""
        name = f"learner_rank_{signal.Signals(signum).name.lower()}"
        started = time.monotonic()
        driver = case.start(f"learner.call_timeout_s={DEADLINE_S}")
        outcome = Outcome(name, "", "failed loudly, resumed")
        if driver.wait_for(rf"step 3/{STEPS}\b") is None:
            outcome.outcome = f"not injected: exit {driver.finish()}"
            return [outcome]
        (pid,) = actor_pids(case.temp_root, "LearnerRank")
        _signal(pid, signum)
        status = driver.finish()
        why = _loud(driver, status, "learner")
        outcome.detail = driver.last_line()[:300]
        if why is not None:
            outcome.outcome = "hung" if why == "hung" else f"broken: {why}"
            outcome.took_s = time.monotonic() - started
            return [outcome]
        outcome.outcome = "failed loudly, resumed"
        return [_resume_and_audit(case, outcome, driver.run_id(), started)]

    scenario.__doc__ = scenario.__doc__.format(signal=signal.Signals(signum).name)
    return scenario


def driver_kill(case: Case) -> list[Outcome]:
    """The driver is SIGKILLed after step 3; its Ray runtime and actors must go with it. Before the resume,
    the run's pointer `latest.json` is emptied (what a power loss leaves of an unsynced write): the resume
    must not need it."""
    started = time.monotonic()
    driver = case.start()
    killed = Outcome("driver_sigkill_mid_step", "", "resumed")
    corrupt = Outcome("corrupt_latest_json", "", "resumed")
    if driver.wait_for(rf"step 3/{STEPS}\b") is None:
        killed.outcome = corrupt.outcome = f"not injected: exit {driver.finish()}"
        return [killed, corrupt]
    before = session_processes(case.temp_root)
    os.kill(driver.proc.pid, signal.SIGKILL)
    driver.finish()
    killed_at = time.monotonic()
    last_seen = {}
    while (left := set(before) & set(_processes())) and time.monotonic() < killed_at + ORPHAN_WAIT_S:
        last_seen = {before[pid][:40]: round(time.monotonic() - killed_at) for pid in left}
        time.sleep(1)
    orphans = sorted(before[pid][:60] for pid in left)
    killed.detail = (
        f"{len(before)} processes of its Ray runtime; orphans after {ORPHAN_WAIT_S} s: {len(orphans)}"
        + (f" {orphans}" if orphans else "")
        + (f"; last to go (s after the kill): {last_seen}" if last_seen else "")
    )
    (pointer,) = case.output_dir.glob("faults/*/latest.json")
    pointer.write_text("")
    corrupt.detail = f"{pointer.relative_to(case.work)} emptied before the resume"
    run_id = driver.run_id()
    outcome = _resume_and_audit(case, killed, run_id, started)
    if orphans:
        outcome.audit.problems.append(f"{len(orphans)} processes of the killed driver's Ray runtime left")
    corrupt.outcome, corrupt.audit, corrupt.took_s = outcome.outcome, outcome.audit, outcome.took_s
    return [outcome, corrupt]


def driver_kill_mid_checkpoint(case: Case) -> list[Outcome]:
    """The driver is SIGKILLed while the learner writes the checkpoint of step 4 (its staging folder has
    appeared): the partial folder must never be resumed or counted; the resume starts from step 2's."""
    started = time.monotonic()
    driver = case.start()
    outcome = Outcome("driver_sigkill_mid_checkpoint", "", "resumed")
    if driver.wait_for(rf"step 3/{STEPS}\b") is None:
        outcome.outcome = f"not injected: exit {driver.finish()}"
        return [outcome]
    staging = None
    while driver.proc.poll() is None and staging is None:
        staging = next(iter(case.output_dir.glob("faults/*/checkpoints/.step-4*")), None)
        time.sleep(0.005)
    if staging is None:
        outcome.outcome = "not injected: the run ended before its checkpoint of step 4"
        return [outcome]
    os.kill(driver.proc.pid, signal.SIGKILL)
    driver.finish()
    time.sleep(5)
    left = sorted(p.name for p in staging.parent.iterdir())
    outcome.detail = f"killed while {staging.name} was being written; left: {left}"
    return [_resume_and_audit(case, outcome, driver.run_id(), started)]


def disk_full(case: Case) -> list[Outcome]:
    """The output folder is a 40 MiB tmpfs; once the checkpoint of step 2 is written a file fills it but for
    32 KiB, so the checkpoint of step 4 cannot be written: the run stops naming it and the reason. The room
    is freed and a resume finishes the run from step 2's checkpoint."""
    outcome = Outcome("disk_full_during_save", "", "failed loudly, resumed")
    case.output_dir.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(case.output_dir)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        outcome.outcome = f"skipped: cannot mount a tmpfs ({mounted.stderr.strip()[:100]})"
        return [outcome]
    try:
        started = time.monotonic()
        driver = case.start()
        if driver.wait_for(r"checkpoint at step 2\b") is None:
            outcome.outcome = f"not injected: exit {driver.finish()}"
            return [outcome]
        filler = case.output_dir / "filler"
        stats = os.statvfs(case.output_dir)
        with open(filler, "wb") as handle:
            handle.truncate(0)
            handle.write(b"\0" * max(0, stats.f_bavail * stats.f_frsize - (32 << 10)))
        status = driver.finish()
        why = _loud(driver, status, "No space left on device")
        outcome.detail = driver.last_line()[:300]
        if why is not None:
            outcome.outcome = "hung" if why == "hung" else f"broken: {why}"
            return [outcome]
        filler.unlink()
        outcome.outcome = "failed loudly, resumed"
        return [_resume_and_audit(case, outcome, driver.run_id(), started)]
    finally:
        subprocess.run(["umount", "-l", str(case.output_dir)], capture_output=True)


def mlflow_down(case: Case) -> list[Outcome]:
    """The job logs to an MLflow server, which is killed after step 2: the job asks again for
    tracking.retry_timeout_s (20 s here), then stops naming the server; the server comes back and a resume
    finishes the run in the same MLflow run."""
    outcome = Outcome("mlflow_unreachable", "", "failed loudly, resumed")
    store = case.work / "server"
    store.mkdir(exist_ok=True)

    def serve() -> subprocess.Popen:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"),
                "server",
                "--host=127.0.0.1",
                f"--port={port}",
                f"--backend-store-uri=sqlite:///{store / 'mlflow.db'}",
                f"--artifacts-destination={store / 'artifacts'}",
                "--workers=1",
            ],
            stdout=open(case.work / "server.log", "a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return server
            except OSError:
                time.sleep(1)
        raise RuntimeError("the MLflow server did not start within 180 s")

    def stop(server: subprocess.Popen) -> None:
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.wait()

    port = _free_port()
    case.tracking_uri = f"http://127.0.0.1:{port}"
    server = serve()
    try:
        started = time.monotonic()
        driver = case.start("tracking.retry_timeout_s=20")
        if driver.wait_for(rf"step 2/{STEPS}\b") is None:
            outcome.outcome = f"not injected: exit {driver.finish()}"
            return [outcome]
        stop(server)
        status = driver.finish()
        why = _loud(driver, status, "did not answer")
        outcome.detail = driver.last_line()[:300]
        server = serve()
        if why is not None:
            outcome.outcome = "hung" if why == "hung" else f"broken: {why}"
            return [outcome]
        outcome.outcome = "failed loudly, resumed"
        return [_resume_and_audit(case, outcome, driver.run_id(), started)]
    finally:
        stop(server)


SCENARIOS: dict[str, Callable[[Case], list[Outcome]]] = {
    "driver_kill": driver_kill,
    "actors": actor_faults(
        [
            ("rollout_engine_sigkill", "RolloutEngine", signal.SIGKILL),
            ("rollout_engine_sigstop", "RolloutEngine", signal.SIGSTOP),
            ("verifier_sigkill", "Verifier", signal.SIGKILL),
            ("verifier_sigstop", "Verifier", signal.SIGSTOP),
        ],
        lambda case: ["rollout.replicas=2"],
    ),
    # An RLHF job: the tiny model's reward model (an untrained scalar head: the plumbing is under test).
    "reward_scorers": actor_faults(
        [
            ("reward_scorer_sigkill", "RewardModelScorer", signal.SIGKILL),
            ("reward_scorer_sigstop", "RewardModelScorer", signal.SIGSTOP),
        ],
        lambda case: [
            f"reward_model={{path: {tiny_reward_model(case.model)}, replicas: 2, num_cpus: 0.1, threads: 1, "
            f"call_timeout_s: {DEADLINE_S}}}"
        ],
    ),
    "learner_kill": learner_fault(signal.SIGKILL),
    "disk_full": disk_full,
    "driver_kill_mid_checkpoint": driver_kill_mid_checkpoint,
    "mlflow_down": mlflow_down,
    "learner_freeze": learner_fault(signal.SIGSTOP),
}


def tiny_model(cache: Path) -> str:
    """The tests' tiny model (2 layers, barely trained): start-up, not quality, is what costs here."""
    out = cache / "tiny-model"
    if not (out / "config.json").is_file():
        from rlsys.bootstrap.build import build_model
        from rlsys.bootstrap.recipes import TINY_RECIPE

        log(f"building the tiny model in {out}")
        build_model(out, TINY_RECIPE, seed=0, progress=False)
    return str(out)


def tiny_reward_model(model: str) -> str:
    """The model's body with a fresh scalar head, saved beside it as `rlsys train-rm` saves a reward model
    (untrained: the reward pool's plumbing is under test, not what it prefers)."""
    out = Path(f"{model}-rm")
    if not (out / "config.json").is_file():
        from transformers import AutoTokenizer

        from rlsys.rlhf.reward_model import init_reward_model, save_reward_model

        log(f"building the reward model in {out}")
        reward_model = init_reward_model(model, seed=0)
        save_reward_model(reward_model, AutoTokenizer.from_pretrained(model), out, {"max_length": 256})
    return str(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", help="comma-separated scenarios (see --list)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--model", help="model directory (default: the tests' tiny model, built once)")
    parser.add_argument("--work", default=None, help="where runs and logs go (default: a temp dir)")
    args = parser.parse_args()
    if args.list:
        for name, scenario in SCENARIOS.items():
            print(f"{name}: {' '.join((scenario.__doc__ or '').split())}")
        return
    names = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; --list shows them")
    work = Path(args.work or tempfile.mkdtemp(prefix="rlsys-faults-"))
    model = args.model or tiny_model(
        Path(os.environ.get("RLSYS_CACHE_DIR") or Path.home() / ".cache" / "rlsys")
    )
    print(machine(), flush=True)
    print(f"work dir {work}; model {model}", flush=True)
    outcomes: list[Outcome] = []
    for name in names:
        case = Case(name, work / name, model, f"sqlite:///{work / name / 'mlflow.db'}")
        try:
            results = SCENARIOS[name](case)
        finally:
            case.cleanup()
        for outcome in results:
            print(outcome.line(), flush=True)
        outcomes.extend(results)
    injected = [o for o in outcomes if not o.outcome.startswith(("skipped", "not injected"))]
    print(
        f"faults={len(injected)} survived={sum(o.survived for o in injected)} "
        f"hung={sum(o.hung for o in outcomes)} lost_samples={sum(o.audit.samples_lost for o in outcomes)}"
        + (f" skipped={len(outcomes) - len(injected)}" if len(outcomes) != len(injected) else ""),
        flush=True,
    )


if __name__ == "__main__":
    main()
