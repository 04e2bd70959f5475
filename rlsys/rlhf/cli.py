"""`rlsys train-rm`: the reward-model command, kept here so `rlsys/cli.py` only registers it.

    rlsys train-rm jobs/rm_quickstart.yaml train.epochs=1 data.generate.prompts=500
    rlsys train-rm --help-config
    python -m rlsys.rlhf.train_rm jobs/rm_quickstart.yaml       # the same, without the top-level CLI

Exit status: 0 done, 2 bad input (config, preference data), 1 anything else.
"""

import argparse
import sys

from rlsys.errors import ConfigError, ModelNotFoundError


def add_train_rm_command(commands) -> argparse.ArgumentParser:
    """Add `train-rm` to the subparsers of `rlsys`; the handler is `train_rm_command`."""
    parser = commands.add_parser(
        "train-rm",
        help="train a reward model from rankings or preference pairs",
        description="Train a scalar reward model (Bradley–Terry or Plackett–Luce) with DeepSpeed; logs to "
        "MLflow and saves a Hugging Face model directory. Overrides are key=value with dotted keys.",
    )
    parser.add_argument("job", nargs="?", help="reward-model job YAML (e.g. jobs/rm_quickstart.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.add_argument("--help-config", action="store_true", help="list every config key and exit")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the resolved config")
    return parser


def train_rm_command(args: argparse.Namespace) -> int:
    from rlsys.cli import config_for
    from rlsys.rlhf.config import RMConfig, load_rm_config

    config = config_for(args, RMConfig, load_rm_config, "rlsys train-rm jobs/rm_quickstart.yaml")
    if config is None:
        return 0
    from rlsys.rlhf.train_rm import run

    summary = run(config)
    print(
        f"rm/heldout_accuracy: {summary.heldout_accuracy:.3f} ({summary.heldout_rankings} held-out rankings)"
    )
    print(f"rm/heldout_margin: {summary.heldout_margin:.3f}")
    print(f"mlflow run id: {summary.run_id}")
    print(f"reward model saved to: {summary.model_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`train-rm` on its own: the arguments after `rlsys train-rm`."""
    from rlsys.rlhf.data import PreferenceDataError

    parser = argparse.ArgumentParser(prog="rlsys")
    add_train_rm_command(parser.add_subparsers(dest="command", required=True))
    try:
        return train_rm_command(parser.parse_args(["train-rm", *(argv or [])]))
    except (ConfigError, ModelNotFoundError, PreferenceDataError) as err:
        print(f"rlsys: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
