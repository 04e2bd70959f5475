"""Teach the facts model to say "I don't know": probe what it knows, fine-tune it on the abstention mix, then
RL with the abstain reward; and, beside it, RL alone from the built model, the comparison.

    python scripts/abstain_quickstart.py           # seed 0: 5-10 minutes on 2 cores (+5 to build the model)
    python scripts/abstain_quickstart.py --seed 1 --rl-steps 100

The facts model (`model.recipe: facts`, built on first use) knows the towns and trades of the people its
text stated and answers every question, making up a town or trade for anyone else. The chain:

1. `rlsys export-task data/facts --task facts ...`: training questions (stated and unstated people) and two
   eval sets: `stated` (what the model may know) and `held_out` (people no stage sees: any answer is made up);
2. `rlsys probe jobs/facts_probe.yaml`: 8 answers to each training question, judged right, wrong or
   abstaining; its abstention mix: the model's own right answers where it knows, "I don't know." where it is
   always wrong;
3. `rlsys sft jobs/sft_quickstart.yaml` on that mix (model.recipe=facts);
4. `rlsys run jobs/abstain_quickstart.yaml` from the fine-tuned model (the abstain reward: right 1, abstain
   0.3, wrong 0);

and `rlsys run jobs/abstain_quickstart.yaml` from the built model, for RL alone. Each step's MLflow run is
kept (experiments facts_probe, abstain_sft, abstain_quickstart). The last lines print, for the built model,
after SFT, after the chain's RL and after RL alone, the greedy answers on each eval set: accuracy on stated
people, and the share of held-out people given a made-up answer (every answer there is wrong), then

    made_up_before=X made_up_after=Y stated_accuracy_before=A stated_accuracy_after=B
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the jobs (the facts model is built at 0)"
    )
    parser.add_argument("--rl-steps", type=int, default=60, help="RL steps of each RL run (default 60)")
    parser.add_argument("--sft-steps", type=int, default=600, help="SFT steps on the mix (default 600)")
    parser.add_argument("--sft-lr", type=float, default=1e-3, help="SFT learning rate (default 1e-3)")
    parser.add_argument(
        "--phrasings", type=int, default=2, help="phrasings of each training fact (1 or 2; default 2)"
    )
    parser.add_argument("--data", type=Path, default=Path("data/facts"), help="where the task files go")
    parser.add_argument("--runs", default="runs", help="output_dir of every job")
    args = parser.parse_args()

    from rlsys import job, probe_job, sft_job
    from rlsys.config import load_job
    from rlsys.console import console
    from rlsys.probe_config import load_probe_config
    from rlsys.sft.config import load_sft_config
    from rlsys.tasks.export import export_facts

    files = export_facts(
        args.data, layout="plain", fmt="jsonl", train_size=150, eval_size=300, phrasings=args.phrasings
    )
    seed = f"seed={args.seed}"
    probe = probe_job.run(
        load_probe_config(
            ROOT / "jobs" / "facts_probe.yaml",
            [seed, f"data.questions={files['train']}", f"output_dir={args.runs}"],
        )
    )
    console.log(f"probe: {probe.known} questions known, {probe.unknown} unknown -> {probe.abstention_file}")
    sft = sft_job.run(
        load_sft_config(
            ROOT / "jobs" / "sft_quickstart.yaml",
            [
                seed,
                "name=abstain_sft",
                "model.recipe=facts",
                f"data.train={probe.abstention_file}",
                "data.eval=null",
                "data.eval_fraction=0.1",
                "data.max_tokens=64",
                f"learner.lr={args.sft_lr}",
                f"train.steps={args.sft_steps}",
                "train.checkpoint_every=0",
                f"train.output_dir={args.runs}",
                "tracking.experiment=abstain_sft",
                "tracking.registered_model=null",
            ],
        )
    )
    rl_job = ROOT / "jobs" / "abstain_quickstart.yaml"
    common = [
        seed,
        f"task.train={files['train']}",
        f"task.eval={{stated: {files['eval_stated']}, held_out: {files['eval_held_out']}}}",
        f"train.steps={args.rl_steps}",
        f"train.output_dir={args.runs}",
    ]
    chain = job.run(load_job(rl_job, [*common, f"model.path={sft.model_dir}", "name=abstain_after_sft"]))
    alone = job.run(load_job(rl_job, [*common, "name=abstain_rl_only"]))

    def answers(summary, when: int) -> tuple[float, float]:
        """(accuracy on stated people, share of held-out people given a made-up answer)."""
        accuracy = summary.abstention["eval/stated/accuracy"][when]
        return accuracy, 1.0 - summary.abstention["eval/held_out/abstain_rate"][when]

    rows = {
        "built model": answers(alone, 0),
        "after the probe's SFT": answers(chain, 0),
        "after SFT, then RL": answers(chain, 1),
        "after RL alone": answers(alone, 1),
    }
    for name, (accuracy, made_up) in rows.items():
        console.log(
            f"{name:>22}: stated accuracy {accuracy:.3f}  held-out people answered (made up) {made_up:.3f}"
        )
    (before_accuracy, before_made_up), (after_accuracy, after_made_up) = (
        rows["built model"],
        rows["after SFT, then RL"],
    )
    print(
        f"made_up_before={before_made_up:.3f} made_up_after={after_made_up:.3f} "
        f"stated_accuracy_before={before_accuracy:.3f} stated_accuracy_after={after_accuracy:.3f}"
    )


if __name__ == "__main__":
    main()
