"""What a step's rollout and a held-out evaluation log and print: pure functions over samples and rewards."""

from collections.abc import Iterable, Sequence

from rlsys.abstention import abstention_metrics
from rlsys.types import Prompt, Reward, Sample, TrainSequence


def mean(values: Iterable[float]) -> float:
    """The arithmetic mean; 0.0 for no values (a metric of an empty batch)."""
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def rollout_metrics(
    groups: Sequence[Sequence[Sample]], rewards: Sequence[Sequence[Reward]]
) -> dict[str, float]:
    """`train/*` figures of a step's samples: reward, accuracy, length, truncation; `reward/<name>` each;
    `rollout/prompts` and `rollout/samples`, the counts scored (what an audit of lost samples checks)."""
    samples = [s for group in groups for s in group]
    flat = [r for group in rewards for r in group]
    scores = [r.score for r in flat]
    average = mean(scores)
    metrics = {
        "train/reward_mean": average,
        "train/reward_std": mean((x - average) ** 2 for x in scores) ** 0.5,
        "train/accuracy": mean(bool(r.correct) for r in flat),
        "train/response_length": mean(len(s.token_ids) for s in samples),
        "train/truncated_share": mean(s.finish_reason == "length" for s in samples),
        "verifier/error_rate": mean(bool(r.errors) for r in flat),
        "rollout/prompts": len(groups),
        "rollout/samples": len(samples),
    }
    # Rows may name their own reward: each component is averaged over the samples it scored.
    for name in dict.fromkeys(name for r in flat for name in r.components):
        metrics[f"reward/{name}"] = mean(r.components[name] for r in flat if name in r.components)
    return metrics


def staleness_metrics(trained: Sequence[TrainSequence], sample_staleness: Sequence[int]) -> dict[str, float]:
    """How stale a step's samples were: `train/staleness`, updates behind per trained response token,
    sum_i L_i s_i / sum_i L_i; `train/staleness_max` over every sample of the step, trained or not."""
    tokens = sum(len(s.token_ids) for s in trained)
    return {
        "train/staleness": sum(len(s.token_ids) * s.staleness for s in trained) / tokens if tokens else 0.0,
        "train/staleness_max": float(max(sample_staleness, default=0)),
    }


def answer_metrics(
    greedy: Sequence[Sample], greedy_rewards: Sequence[Reward], sampled_rewards: Iterable[Reward]
) -> dict[str, float]:
    """`eval/*` figures: accuracy of one greedy answer per prompt and of the sampled ones, answer length, and
    the share of worked answers (several lines) against bare ones: how often the model chooses to think.
    With the `abstain` reward, also the greedy answers' `eval/abstain_rate` and `eval/hallucination_rate`
    (`rlsys.abstention`)."""
    return {
        "eval/accuracy": mean(bool(r.correct) for r in greedy_rewards),
        "eval/accuracy_sampled": mean(bool(r.correct) for r in sampled_rewards),
        "eval/response_length": mean(len(s.token_ids) for s in greedy),
        "eval/multiline_share": mean(s.text.strip().count("\n") > 0 for s in greedy),
        **{f"eval/{key}": value for key, value in abstention_metrics(greedy_rewards).items()},
    }


def tool_metrics(samples: Sequence[Sample]) -> dict[str, float]:
    """`tool/*` figures of a step's samples (for a job whose responses may call tools): calls per sample,
    the share of calls that failed, the share of samples that called at least once, and `time/tool_s`, the
    seconds the calls took, summed (they overlap generation and each other)."""
    calls = [call for s in samples for call in s.tool_calls]
    return {
        "tool/calls_per_sample": len(calls) / max(len(samples), 1),
        "tool/error_rate": mean(call.error for call in calls),
        "tool/used_share": mean(bool(s.tool_calls) for s in samples),
        "time/tool_s": sum(call.seconds for call in calls),
    }


def eval_tool_metrics(
    greedy: Sequence[Sample], greedy_rewards: Sequence[Reward], sampled: Sequence[Sample]
) -> dict[str, float]:
    """`eval/tool/*` figures: how the greedy answers use the tool (as `tool_metrics`), how often sampled
    answers do, and the greedy accuracy of answers with and without a call: whether the tool is what pays."""
    used = [(bool(s.tool_calls), bool(r.correct)) for s, r in zip(greedy, greedy_rewards, strict=True)]
    step = tool_metrics(greedy)
    return {
        "eval/tool/calls_per_sample": step["tool/calls_per_sample"],
        "eval/tool/error_rate": step["tool/error_rate"],
        "eval/tool/used_share": step["tool/used_share"],
        "eval/tool/used_share_sampled": mean(bool(s.tool_calls) for s in sampled),
        "eval/tool/accuracy_with_tool": mean(right for called, right in used if called),
        "eval/tool/accuracy_without_tool": mean(right for called, right in used if not called),
    }


def step_line(step: int, total: int, metrics: dict[str, float]) -> str:
    """The console line of a step (with the share of samples that called a tool, in a job that may)."""
    tools = f"tools {metrics['tool/used_share']:.2f}  " if "tool/used_share" in metrics else ""
    return (
        f"step {step}/{total}  reward {metrics['train/reward_mean']:.3f}  "
        f"acc {metrics['train/accuracy']:.3f}  len {metrics['train/response_length']:.0f}  {tools}"
        f"gen {metrics['time/generate_s']:.2f}s  verify {metrics['time/verify_s']:.2f}s  "
        f"train {metrics['time/train_s']:.2f}s  "
        f"sync {metrics['time/sync_s']:.2f}s  step {metrics['time/step_s']:.2f}s"
    )


def sample_rows(
    step: int,
    prompts: Sequence[Prompt],
    groups: Sequence[Sequence[Sample]],
    rewards: Sequence[Sequence[Reward]],
    limit: int,
) -> list[dict]:
    """The first completion of each of the first `limit` prompts, for the samples table; a completion that
    called tools lists each call and what it read back."""
    rows = []
    for prompt, group, scored in list(zip(prompts, groups, rewards, strict=True))[:limit]:
        row = {
            "step": step,
            "prompt": prompt.messages[-1]["content"],
            "gold": prompt.gold,
            "completion": group[0].text,
            "reward": scored[0].score,
            "verdict": scored[0].verdict,
            "policy_version": group[0].policy_version,
        }
        if group[0].tool_calls:
            row["tool_calls"] = [{"code": call.code, "output": call.output} for call in group[0].tool_calls]
        rows.append(row)
    return rows
