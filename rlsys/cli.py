"""The `rlsys` command line.

    rlsys run jobs/quickstart.yaml train.steps=20 rollout.replicas=2   # run a job (local Ray, or RAY_ADDRESS)
    rlsys run --help-config                                           # every config key, its type and default
    rlsys bootstrap                                                   # build the embedded model now

Exit status: 0 done, 2 bad input (config, model path), 1 anything else.
"""

import argparse
import sys

from rlsys.errors import ConfigError, ModelNotFoundError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlsys",
        description="Distributed RL fine-tuning of language models: vLLM rollouts, verifiable rewards, "
        "DeepSpeed updates, Ray pools, MLflow tracking.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run an RL job from a YAML file",
        description="Run an RL job. Overrides are key=value with dotted keys, e.g. train.steps=20.",
    )
    run.add_argument("job", nargs="?", help="job YAML (e.g. jobs/quickstart.yaml)")
    run.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    run.add_argument("--help-config", action="store_true", help="list every config key and exit")
    run.add_argument(
        "--resume", action="store_true", help="continue the job's newest checkpoint, in the same MLflow run"
    )
    run.add_argument(
        "--dry-run", action="store_true", help="validate and print the resolved config, then exit"
    )

    boot = commands.add_parser(
        "bootstrap",
        help="build the embedded tiny model (tokenizer, pretraining, SFT) if it is not cached",
        description="Build the embedded model offline (cached in $RLSYS_CACHE_DIR or ~/.cache/rlsys).",
    )
    boot.add_argument("--seed", type=int, default=0, help="seed of the build")
    return parser


def _run(args: argparse.Namespace) -> int:
    from rlsys.config import describe_schema, load_job

    if args.help_config:
        print("\n".join(describe_schema()))
        return 0
    if args.job is None:
        raise ConfigError("name a job YAML, e.g. `rlsys run jobs/quickstart.yaml`")
    config = load_job(args.job, args.overrides)
    if args.dry_run:
        print("\n".join(f"{key} = {value!r}" for key, value in config.flat().items()))
        return 0
    from rlsys.trainer import run

    summary = run(config, resume=args.resume)
    print(f"eval/accuracy: {summary.accuracy_before:.3f} -> {summary.accuracy_after:.3f}")
    print(f"eval/accuracy_sampled: {summary.sampled_before:.3f} -> {summary.sampled_after:.3f}")
    print(f"mlflow run id: {summary.run_id}")
    print(f"policy saved to: {summary.model_dir}")
    return 0


def _bootstrap(args: argparse.Namespace) -> int:
    from rlsys.bootstrap import ensure_embedded_model

    print(ensure_embedded_model(seed=args.seed))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"run": _run, "bootstrap": _bootstrap}
    try:
        return handlers[args.command](args)
    except (ConfigError, ModelNotFoundError) as err:
        print(f"rlsys: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
