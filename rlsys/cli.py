"""The `rlsys` command line.

    rlsys run jobs/quickstart.yaml train.steps=20 rollout.replicas=2   # run a job (local Ray, or RAY_ADDRESS)
    rlsys run --help-config                                           # every config key, its type and default
    rlsys train-rm jobs/rm_quickstart.yaml                            # a reward model from rankings
    rlsys sft jobs/sft_quickstart.yaml data.train=chats.jsonl         # supervised fine-tuning on chat data
    rlsys probe jobs/abstain_probe.yaml                               # what the model knows; abstention data
    rlsys bootstrap                                                   # build the embedded model now
    rlsys export-task data/arithmetic --layout verl                   # the built-in task as dataset files
    rlsys submit jobs/cluster_gpu.yaml --address http://HEAD:8265     # run it on a Ray cluster, follow logs
    rlsys status JOB_ID | rlsys logs JOB_ID --follow | rlsys stop JOB_ID   # a submitted job

Exit status: 0 done, 2 bad input (config, model path, data: one line naming the key, file or row and the
fix), 1 anything else (for `submit` while following and `status`: 1 when the job failed or was stopped).
`--verbose` (or RLSYS_VERBOSE=1) keeps the third-party notices that are silenced by default.
"""

import argparse
import os
import re
import sys
from pathlib import Path

from rlsys.errors import ConfigError, RlsysError

_MLFLOW_RUN_ID = re.compile(r"[0-9a-f]{32}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlsys",
        description="Distributed RL fine-tuning of language models: vLLM rollouts, verifiable rewards, "
        "DeepSpeed updates, Ray pools, MLflow tracking.",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="keep third-party notices (also: RLSYS_VERBOSE=1)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run an RL job from a YAML file",
        description="Run an RL job. Overrides are key=value with dotted keys, e.g. train.steps=20.",
    )
    _add_job_arguments(run, "job YAML (e.g. jobs/quickstart.yaml)")
    _add_resume(run)
    run.set_defaults(handler=_run)

    train_rm = commands.add_parser(
        "train-rm",
        help="train a reward model from rankings or preference pairs",
        description="Train a scalar reward model (Bradley–Terry or Plackett–Luce) on the learner pool "
        "(DeepSpeed ranks); logs to MLflow and saves a Hugging Face model directory. Overrides are key=value "
        "with dotted keys.",
    )
    _add_job_arguments(train_rm, "reward-model job YAML (e.g. jobs/rm_quickstart.yaml)")
    train_rm.set_defaults(handler=_train_rm)

    sft = commands.add_parser(
        "sft",
        help="supervised fine-tuning on chat data (the loss on the assistant's replies)",
        description="Fine-tune a model on conversations (JSONL, Parquet, save_to_disk; a messages column or "
        "prompt and completion columns) on the learner pool, packed into blocks; logs to MLflow and saves a "
        "Hugging Face model directory `rlsys run model.path=...` takes. Overrides are key=value with dotted "
        "keys.",
    )
    _add_job_arguments(sft, "SFT job YAML (e.g. jobs/sft_quickstart.yaml)")
    _add_resume(sft)
    sft.set_defaults(handler=_sft)

    probe = commands.add_parser(
        "probe",
        help="probe what the model knows (k answers per question: right, wrong, abstaining); abstention data",
        description="Sample k answers to each question with vLLM, sort them with the abstain reward into "
        "right, wrong and abstaining, log the knowledge map to MLflow, and write abstention data for "
        "`rlsys sft` (its own right answers where it knows, an 'I don't know' where it is consistently "
        "wrong). Overrides are key=value with dotted keys.",
    )
    _add_job_arguments(probe, "probe job YAML (e.g. jobs/abstain_probe.yaml)")
    probe.set_defaults(handler=_probe)

    boot = commands.add_parser(
        "bootstrap",
        help="build the embedded tiny model (tokenizer, pretraining, SFT) if it is not cached",
        description="Build the embedded model offline (cached in $RLSYS_CACHE_DIR or ~/.cache/rlsys) and "
        "print its directory.",
    )
    boot.add_argument("--seed", type=int, default=0, help="seed of the build")
    boot.add_argument("--recipe", default="arithmetic", help="the named recipe to build (model.recipe)")
    boot.set_defaults(handler=_bootstrap)

    from rlsys.tasks.export import FORMATS, LAYOUTS

    export = commands.add_parser(
        "export-task",
        help="write a built-in task as dataset files (verl, TRL, plain or sft layout)",
        description="Write the arithmetic task's training and held-out problems as OUT/train.* and "
        "OUT/eval.* in the layout another framework reads; `rlsys run jobs/dataset_quickstart.yaml` trains "
        "from them; --layout sft writes conversations with worked solutions for `rlsys sft`. --task facts "
        "writes the facts task's OUT/train.*, OUT/eval_stated.* and OUT/eval_held_out.* (the abstention "
        "demo's, scripts/abstain_quickstart.py).",
    )
    export.add_argument("out", help="output folder (e.g. data/arithmetic)")
    export.add_argument(
        "--task", choices=("arithmetic", "facts"), default="arithmetic", help="the task (default: arithmetic)"
    )
    export.add_argument("--layout", choices=LAYOUTS, default="verl", help="column layout (default: verl)")
    export.add_argument("--format", choices=FORMATS, default="parquet", help="file format (default: parquet)")
    export.add_argument(
        "--train-size",
        type=int,
        default=20_000,
        help="training problems (default 20000); facts: the unstated people asked about beside the stated",
    )
    export.add_argument("--eval-size", type=int, default=500, help="held-out problems (default 500)")
    export.add_argument(
        "--phrasings",
        type=int,
        default=2,
        help="facts: phrasings each training fact is asked in (1 or 2; eval asks in another; default 2)",
    )
    export.add_argument("--seed", type=int, default=0, help="seed of the problem generator")
    export.set_defaults(handler=_export_task)
    _add_cluster_commands(commands)
    return parser


def _add_job_arguments(parser: argparse.ArgumentParser, job_help: str) -> None:
    parser.add_argument("job", nargs="?", help=job_help)
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.add_argument("--help-config", action="store_true", help="list every config key and exit")
    parser.add_argument(
        "--dry-run", action="store_true", help="validate and print the resolved config, then exit"
    )


def _add_resume(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resume",
        nargs="?",
        const="",
        metavar="RUN_ID",
        help="continue from a checkpoint, in the same MLflow run: the job's most recent run, or RUN_ID's "
        "(give overrides before --resume)",
    )


def _check_resume(args: argparse.Namespace) -> None:
    if args.resume and "=" in args.resume:
        raise ConfigError(f"--resume takes a run id, not '{args.resume}': write overrides before --resume")


def _add_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        help="Ray dashboard address of the cluster (default: $RAY_API_SERVER_ADDRESS, else $RAY_ADDRESS, "
        "else http://127.0.0.1:8265)",
    )


def _add_cluster_commands(commands) -> None:
    """`submit`, `status`, `logs`, `stop`: jobs on a Ray cluster, through Ray's job submission API."""
    submit = commands.add_parser(
        "submit",
        help="submit an RL job to a Ray cluster and stream its logs",
        description="Validate the job here, then run `rlsys run JOB OVERRIDES` on a Ray cluster as a Ray job "
        "(working dir: this project; MLFLOW_TRACKING_URI and a few other variables passed through). "
        "Prints the job id, then follows its logs until it ends unless --no-wait; the exit status follows "
        "the job's.",
    )
    submit.add_argument("job", help="job YAML inside the project (e.g. jobs/cluster_gpu.yaml)")
    submit.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    _add_address(submit)
    submit.add_argument("--no-wait", action="store_true", help="print the job id and return at once")
    submit.add_argument(
        "--check",
        action="store_true",
        help="run `rlsys run --dry-run` on the cluster: check the config there (e.g. the model path on the "
        "nodes) without training",
    )
    submit.add_argument("--submission-id", help="the job's id (default: rlsys-<job name>-<random>)")
    submit.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable of the job (repeatable)",
    )
    submit.add_argument(
        "--working-dir",
        help="directory uploaded as the job's working dir (default: the project root); 'none' uploads "
        "nothing: the cluster runs the code its nodes have and JOB's absolute path must exist there",
    )
    submit.set_defaults(handler=_submit)

    status = commands.add_parser(
        "status",
        help="print a run's progress: a submitted job's id, or an MLflow run id (local runs too)",
        description="Print where a run is: the step, its last metrics, the last evaluation, the pools' "
        "sizes, the reward-hacking monitor's alerts and the last checkpoint, from MLflow "
        "(MLFLOW_TRACKING_URI); for a submitted job also its Ray status.",
    )
    status.add_argument("job_id", help="the id `rlsys submit` printed, or an MLflow run id")
    _add_address(status)
    status.set_defaults(handler=_status)

    logs = commands.add_parser("logs", help="print a submitted job's logs")
    logs.add_argument("job_id", help="the id `rlsys submit` printed")
    logs.add_argument("--follow", "-f", action="store_true", help="keep streaming until the job ends")
    _add_address(logs)
    logs.set_defaults(handler=_logs)

    stop = commands.add_parser("stop", help="stop a submitted job")
    stop.add_argument("job_id", help="the id `rlsys submit` printed")
    _add_address(stop)
    stop.set_defaults(handler=_stop)


def _config(args: argparse.Namespace, schema, load, example: str, report=None):
    """The validated config a job command runs, or None once `--help-config`/`--dry-run` has printed
    (with `report(config)`'s lines after the config, for a dry run)."""
    from rlsys.config import describe_schema

    if args.help_config:
        print("\n".join(describe_schema(schema)))
        return None
    if args.job is None or ("=" in args.job and not Path(args.job).exists()):
        raise ConfigError(f"name a job YAML before the key=value overrides, e.g. `{example}`")
    config = load(args.job, args.overrides)
    if args.dry_run:
        print("\n".join(f"{key} = {value!r}" for key, value in config.flat().items()))
        if report is not None:
            print("\n".join(report(config)))
        return None
    return config


def _run(args: argparse.Namespace) -> int:
    from rlsys.config import JobConfig, load_job

    _check_resume(args)
    from rlsys.preflight import dry_run_report

    config = _config(args, JobConfig, load_job, "rlsys run jobs/quickstart.yaml", dry_run_report)
    if config is None:
        return 0
    from rlsys.job import run

    summary = run(config, resume=args.resume)
    print(f"eval/accuracy: {summary.accuracy_before:.3f} -> {summary.accuracy_after:.3f}")
    print(f"eval/accuracy_sampled: {summary.sampled_before:.3f} -> {summary.sampled_after:.3f}")
    for key, (before, after) in summary.abstention.items():
        if key != "eval/accuracy":  # printed above
            print(f"{key}: {before:.3f} -> {after:.3f}")
    print(f"mlflow run id: {summary.run_id}")
    print(f"policy saved to: {summary.model_dir}")
    if summary.monitor is not None:
        monitor = summary.monitor
        alert = "none" if monitor.alert_step is None else f"at step {monitor.alert_step}"
        print(f"reward-hacking alert: {alert}; best gold at step {monitor.best_gold_step}")
        print(f"best-gold policy saved to: {monitor.best_gold_dir}")
    if summary.steps_done < config.train.steps:
        print(f"stopped after step {summary.steps_done} of {config.train.steps} (monitor.stop_on_alert)")
    if summary.model_uri:
        print(f"registered as: {summary.model_uri}")
    return 0


def _train_rm(args: argparse.Namespace) -> int:
    from rlsys.preflight import rm_dry_run_report
    from rlsys.rlhf.config import RMConfig, load_rm_config

    config = _config(
        args, RMConfig, load_rm_config, "rlsys train-rm jobs/rm_quickstart.yaml", rm_dry_run_report
    )
    if config is None:
        return 0
    from rlsys.rm_job import run

    summary = run(config)
    print(
        f"rm/heldout_accuracy: {summary.heldout_accuracy:.3f} ({summary.heldout_rankings} held-out rankings)"
    )
    print(f"rm/heldout_margin: {summary.heldout_margin:.3f}")
    print(f"mlflow run id: {summary.run_id}")
    print(f"reward model saved to: {summary.model_dir}")
    return 0


def _sft(args: argparse.Namespace) -> int:
    from rlsys.preflight import sft_dry_run_report
    from rlsys.sft.config import SFTConfig, load_sft_config

    _check_resume(args)
    config = _config(
        args, SFTConfig, load_sft_config, "rlsys sft jobs/sft_quickstart.yaml", sft_dry_run_report
    )
    if config is None:
        return 0
    from rlsys.sft_job import run

    summary = run(config, resume=args.resume)
    print(f"eval/loss: {summary.loss_before:.4f} -> {summary.loss_after:.4f}")
    print(f"train/tokens_per_s: {summary.tokens_per_s:.0f}")
    print(f"mlflow run id: {summary.run_id}")
    print(f"model saved to: {summary.model_dir}")
    if summary.model_uri:
        print(f"registered as: {summary.model_uri}")
    return 0


def _probe(args: argparse.Namespace) -> int:
    from rlsys.probe_config import ProbeConfig, load_probe_config

    config = _config(
        args, ProbeConfig, load_probe_config, "rlsys probe jobs/abstain_probe.yaml", _probe_report
    )
    if config is None:
        return 0
    from rlsys.probe_job import run

    summary = run(config)
    print(
        f"probe/right: {summary.right:.3f}  probe/wrong: {summary.wrong:.3f}  "
        f"probe/abstained: {summary.abstained:.3f}  ({summary.questions} questions)"
    )
    print(f"known: {summary.known}  unknown: {summary.unknown}")
    print(f"mlflow run id: {summary.run_id}")
    print(f"knowledge map saved to: {summary.knowledge_file}")
    print(f"abstention data saved to: {summary.abstention_file}")
    return 0


def _probe_report(config) -> list[str]:
    from rlsys.probe_config import probe_questions

    questions = probe_questions(config)
    return [f"data.questions: {config.data.questions}: {len(questions)} questions to probe"]


def _bootstrap(args: argparse.Namespace) -> int:
    from rlsys.bootstrap import RECIPES, ensure_embedded_model

    if args.recipe not in RECIPES:
        raise ConfigError(f"--recipe: no embedded recipe '{args.recipe}': choose from {sorted(RECIPES)}")
    print(ensure_embedded_model(seed=args.seed, recipe=RECIPES[args.recipe]))
    return 0


def _export_task(args: argparse.Namespace) -> int:
    from rlsys.tasks.export import export_facts, export_task

    if args.train_size < 1 or args.eval_size < 1:
        raise ConfigError("--train-size and --eval-size must be at least 1")
    if args.task == "facts" and args.layout == "sft":
        raise ConfigError("--layout sft: the facts task's conversations come from `rlsys probe`")
    if args.task == "facts" and args.phrasings not in (1, 2):
        raise ConfigError(
            "--phrasings must be 1 or 2: each fact has 3, and eval asks in one training leaves out"
        )
    sizes = {"train_size": args.train_size, "eval_size": args.eval_size, "seed": args.seed}
    if args.task == "facts":
        written = export_facts(
            args.out, layout=args.layout, fmt=args.format, phrasings=args.phrasings, **sizes
        )
    else:
        written = export_task(args.out, layout=args.layout, fmt=args.format, **sizes)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


def _submit(args: argparse.Namespace) -> int:
    from rlsys import submit

    extra_env = dict(_key_value(item) for item in args.env)
    submission = submit.prepare(
        args.job,
        args.overrides,
        working_dir=None if args.working_dir == "none" else args.working_dir or submit.PROJECT_ROOT,
        extra_env=extra_env,
        check_only=args.check,
    )
    for note in submission.notes:
        print(f"rlsys: note: {note}", file=sys.stderr)
    client = submit.connect(args.address)
    job_id = submit.submit(client, submission, args.submission_id)
    print(job_id, flush=True)
    if args.no_wait:
        print(f"rlsys: follow it with `rlsys logs {job_id} --follow`", file=sys.stderr)
        return 0
    try:
        status = submit.follow(client, job_id)
    except KeyboardInterrupt:
        print(f"\nrlsys: stopped following; the job runs on (`rlsys stop {job_id}`)", file=sys.stderr)
        return 130
    print(f"rlsys: job {job_id} {status}", file=sys.stderr)
    return submit.EXIT_STATUS[status]


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--env '{item}' is not KEY=VALUE")
    return key, value


def _status(args: argparse.Namespace) -> int:
    from rlsys.tracking import find_submitted_run, run_progress

    if _MLFLOW_RUN_ID.fullmatch(args.job_id):  # a run of this MLflow store, local or on a cluster
        print("\n".join(run_progress(args.job_id)))
        return 0
    from rlsys import submit

    client = submit.connect(args.address)
    print(submit.describe(client, args.job_id))
    run_id = find_submitted_run(args.job_id)
    if run_id is not None:
        print("\n".join(run_progress(run_id)))
    status = str(client.get_job_status(args.job_id))
    return submit.EXIT_STATUS.get(status, 0)


def _logs(args: argparse.Namespace) -> int:
    from rlsys import submit

    client = submit.connect(args.address)
    if not args.follow:
        print(client.get_job_logs(args.job_id), end="")
        return 0
    return submit.EXIT_STATUS[submit.follow(client, args.job_id)]


def _stop(args: argparse.Namespace) -> int:
    from rlsys import submit

    client = submit.connect(args.address)
    if client.stop_job(args.job_id):
        print(f"rlsys: stopping {args.job_id}; status: {submit.wait(client, args.job_id)}")
    else:
        print(f"rlsys: {args.job_id} was not running; status: {client.get_job_status(args.job_id)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from rlsys.console import quiet, verbose

    if args.verbose:
        os.environ["RLSYS_VERBOSE"] = "1"  # the actors of this job, too
    elif not verbose():
        quiet()
    # The job's own modules (reward functions) import from where it runs, as they would with `python -m`.
    sys.path.insert(0, os.getcwd())
    try:
        return args.handler(args)
    except RlsysError as err:
        print(f"rlsys: error: {err}", file=sys.stderr)
        return err.exit_status


if __name__ == "__main__":
    sys.exit(main())
