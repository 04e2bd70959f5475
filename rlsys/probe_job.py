"""`rlsys probe JOB`: find out what the model knows; write the data that teaches it to say what it does not.

    rlsys probe jobs/abstain_probe.yaml                          # locally (a Ray runtime of its own)
    rlsys probe jobs/abstain_probe.yaml model.path=runs/.../model rollout.samples_per_prompt=16
    ray job submit --address http://HEAD:8265 --working-dir . -- rlsys probe jobs/abstain_probe.yaml

For every question of `data.questions` the rollout pool (vLLM) samples `rollout.samples_per_prompt` answers
at `rollout.temperature`, and the verifier pool sorts each with the `abstain` reward into right, abstained or
wrong. Per question that gives the share right, wrong and abstaining: the knowledge map (`probe.jsonl`, and a
histogram of per-question accuracy in MLflow). From it, `abstain_sft.jsonl` for `rlsys sft`: the model's
own most common right answer to each question it knows (right in `probe.known_at` of its samples), and
`probe.abstain_answer` to each one it gets consistently wrong (`probe.unknown_at`); questions in between are
left out (`rlsys.abstention`). Both files go to <output_dir>/<name>/<run id>/, written atomically.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from actors.cluster import session, start_named_pools
from actors.pools import RayRolloutPool, RayVerifierPool
from rlsys import atomic
from rlsys.abstention import abstention_examples, knowledge
from rlsys.console import console
from rlsys.job import stop_on_sigterm
from rlsys.metrics import mean
from rlsys.models import job_chat_template, load_tokenizer, resolve_model
from rlsys.order import request_seed
from rlsys.plots import knowledge_map
from rlsys.probe_config import ProbeConfig, probe_questions
from rlsys.prompt_files import content_digest
from rlsys.scoring import sample_and_score
from rlsys.tracking import Tracker
from rlsys.types import Sampling


@dataclass(frozen=True)
class ProbeSummary:
    run_id: str
    questions: int
    right: float  # mean share of sampled answers right, wrong, abstaining
    wrong: float
    abstained: float
    known: int  # questions that went into the abstention data with a right answer
    unknown: int  # ... with the abstention answer
    knowledge_file: str
    abstention_file: str


def run(config: ProbeConfig) -> ProbeSummary:
    """Sample, sort and count every question's answers; write the knowledge map and the abstention data."""
    stop_on_sigterm()
    model_path = resolve_model(config.model)
    template = job_chat_template(config.model)
    load_tokenizer(model_path, template)  # a model without a chat template fails here, not in an engine
    questions = probe_questions(config)
    console.log(f"{len(questions)} questions from {config.data.questions}")
    rollout = config.rollout
    sampling = Sampling(
        n=rollout.samples_per_prompt,
        temperature=rollout.temperature,
        top_p=rollout.top_p,
        max_new_tokens=rollout.max_new_tokens,
    )
    with session(), Tracker(config.tracking, run_name=config.tracking.run_name or config.name) as tracker:
        stop_on_sigterm()  # connecting installs Ray's own handler, which aborts the driver
        tracker.log_params({**config.flat(), "model.resolved_path": model_path})
        tracker.log_params(
            {"data.source": f"{config.data.questions} sha256:{content_digest(config.data.questions)}"}
        )
        pools, seconds = start_named_pools(
            config,
            {
                "rollout": lambda: RayRolloutPool(
                    model_path, rollout, dtype=config.model.dtype, seed=config.seed, chat_template=template
                ),
                "verifier": lambda: RayVerifierPool(config.verifier),
            },
        )
        console.log(f"pools started in {seconds:.1f}s; sampling {sampling.n} answers to each question")
        seeds = [request_seed(config.seed, 0, i) for i in range(len(questions))]
        try:
            scored = sample_and_score(pools["rollout"], [pools["verifier"]], questions, sampling, seeds)
        finally:  # on a cluster, or in a process that keeps its Ray runtime, the actors go now
            for pool in pools.values():
                pool.shutdown()
        known = [
            knowledge(question, group, rewards)
            for question, group, rewards in zip(questions, scored.groups, scored.rewards, strict=True)
        ]
        settings = config.probe
        examples = abstention_examples(
            known,
            known_at=settings.known_at,
            unknown_at=settings.unknown_at,
            abstain_answer=settings.abstain_answer,
        )
        out = Path(config.output_dir).resolve() / config.name / tracker.run_id
        knowledge_file, abstention_file = out / "probe.jsonl", out / "abstain_sft.jsonl"
        atomic.write_text(knowledge_file, "".join(json.dumps(k.row()) + "\n" for k in known))
        atomic.write_text(abstention_file, "".join(json.dumps(e) + "\n" for e in examples))
        abstaining = sum(e["messages"][-1]["content"] == settings.abstain_answer for e in examples)
        summary = ProbeSummary(
            run_id=tracker.run_id,
            questions=len(known),
            right=mean(k.right for k in known),
            wrong=mean(k.wrong for k in known),
            abstained=mean(k.abstained for k in known),
            known=len(examples) - abstaining,
            unknown=abstaining,
            knowledge_file=str(knowledge_file),
            abstention_file=str(abstention_file),
        )
        tracker.log_metrics(
            {
                "probe/right": summary.right,
                "probe/wrong": summary.wrong,
                "probe/abstained": summary.abstained,
                "probe/known_questions": summary.known,
                "probe/unknown_questions": summary.unknown,
                "probe/generate_s": scored.generate_s,
            },
            step=0,
        )
        tracker.log_figure(
            knowledge_map([k.right for k in known], [k.abstained for k in known], sampling.n),
            "plots/knowledge_map.png",
        )
        tracker.log_artifacts(out, "probe")
    return summary
