"""The quickstart's "people": a hidden, deterministic preference over answers to arithmetic word problems.

Real RLHF asks people to rank answers. The quickstart needs rankings on a laptop and, unlike real RLHF, a
gold measure of what people want, so it defines the people as a function. It is used for two things only:
ranking sampled answers (the reward model learns from those rankings, never from the function) and
measuring (the monitor's gold curve). RL never sees it.

What the people like, for a problem that takes n operations (its question holds n + 1 numbers):

    score =  1.00 * [the final `#### N` is right]
           + 0.25 * [the work is shown: at least one step line `a op b = c`]
           + 0.50 * min(true steps, n) / n      steps whose arithmetic is right
           - 0.10 * (false steps)                steps whose arithmetic is wrong
           - 0.25 * (lines beyond n + 1)         padding: more lines than the n steps and the answer
           - 0.25 * [no `#### N` line]

So the best answer (1.75) is a correct, complete and concise worked solution; a bare correct `#### N`
gets 1.0; a wrong bare answer 0; an honest but wrong worked attempt still beats a wrong bare answer
(people like to see the work). Equal scores are ties in a ranking.

Why it can be over-optimised: among the model's own answers, worked ones win, and more true-looking step
lines win more; nothing the model writes is padded, and a small reward model cannot check arithmetic. RL
against it first learns to show its work (gold rises: worked answers are also right more often), then
keeps gaining proxy reward with more, or more plausible-looking, lines after the people stopped liking
them: padding and false steps cost gold while the proxy still rises.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rlsys.rlhf.data import Ranking
from rlsys.tasks.arithmetic import Problem, chat_messages, problems
from verifiers.rewards import Score

_STEP = re.compile(r"^\s*(-?\d+)\s*([-+*/])\s*(-?\d+)\s*=\s*(-?\d+)\s*$")
_FINAL = re.compile(r"^\s*####\s*(-?\d+)\s*$")
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class Judgement:
    """The hidden preference's view of one answer."""

    score: float
    correct: bool  # the final `#### N` equals the answer
    true_steps: int
    false_steps: int
    extra_lines: int  # lines beyond the n steps and the final answer


def operations_in(question: str) -> int:
    """How many operations a question chains: its numbers are the start value and one operand each."""
    return max(1, len(_NUMBER.findall(question)) - 1)


def judge(question: str, response: str, answer: int) -> Judgement:
    """Score one response to one question (see the module docstring for the formula)."""
    needed = operations_in(question)
    lines = [line for line in response.splitlines() if line.strip()]
    finals = [int(match.group(1)) for match in map(_FINAL.match, lines) if match]
    steps = [match for match in map(_STEP.match, lines) if match]
    true_steps = sum(_holds(*match.groups()) for match in steps)
    false_steps = len(steps) - true_steps
    extra = max(0, len(lines) - (needed + 1))
    correct = bool(finals) and finals[-1] == answer
    score = (
        1.0 * correct
        + 0.25 * bool(steps)
        + 0.5 * min(true_steps, needed) / needed
        - 0.1 * false_steps
        - 0.25 * extra
        - 0.25 * (not finals)
    )
    return Judgement(score, correct, true_steps, false_steps, extra)


def preference_scores(
    questions: Sequence[str], responses: Sequence[str], answers: Sequence[int | str]
) -> list[float]:
    """The hidden preference's score of each (question, response, gold answer), for the gold curve."""
    return [
        judge(question, response, int(answer)).score
        for question, response, answer in zip(questions, responses, answers, strict=True)
    ]


def hidden_preference_reward(
    responses: Sequence[str],
    golds: Sequence[str],
    timeout_s: float,
    *,
    prompts: Sequence[Sequence[dict]],
    **_,
) -> list[Score]:
    """The hidden preference as a reward function of the registry (`rlsys.rewards`): the user's question is
    the last message of each prompt. Pure Python and fast, so `timeout_s` is not needed."""
    questions = [chat[-1]["content"] for chat in prompts]
    return [Score(value, "judged") for value in preference_scores(questions, responses, golds)]


def _holds(a: str, op: str, b: str, c: str) -> bool:
    x, y, z = int(a), int(b), int(c)
    if op == "+":
        return x + y == z
    if op == "-":
        return x - y == z
    if op == "*":
        return x * y == z
    return y != 0 and x == y * z  # "/": exact division only, as in the task


def rank(problem: Problem, responses: Sequence[str], id: str = "") -> Ranking:
    """The people's ranking of `responses`: dense ranks by descending score, equal scores tied."""
    scores = [judge(problem.question, response, problem.answer).score for response in responses]
    levels = {score: rank for rank, score in enumerate(sorted(set(scores), reverse=True))}
    return Ranking(tuple(chat_messages(problem)), tuple(responses), tuple(levels[s] for s in scores), id)


def perturb(response: str, problem: Problem, rng: random.Random) -> str:
    """A worse variant of a response, the kind of mistake the policy makes: a wrong final answer, a wrong
    step result, or the steps dropped."""
    lines = response.splitlines()
    steps = [i for i, line in enumerate(lines) if _STEP.match(line)]
    kind = rng.choice(["answer", "step", "bare"] if steps else ["answer"])
    if kind == "bare":
        return f"#### {problem.answer}"
    if kind == "step":
        i = rng.choice(steps)
        left, _, result = lines[i].rpartition("=")
        lines[i] = f"{left}= {int(result) + rng.choice([-2, -1, 1, 2])}"
        return "\n".join(lines)
    return f"{response.rpartition('####')[0]}#### {problem.answer + rng.choice([-3, -1, 1, 2, 10])}".lstrip()


def sample_responses(
    model_dir: str,
    prompts: Sequence[Problem],
    k: int,
    *,
    temperature: float,
    max_new_tokens: int,
    seed: int,
    batch_size: int = 64,
) -> list[list[str]]:
    """`k` sampled answers per problem from a causal LM (HF `generate`: the tiny model needs no vLLM)."""
    import torch
    from rich.progress import track
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"  # generation continues from the right edge
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    out: list[list[str]] = []
    batches = range(0, len(prompts), batch_size)
    for start in track(batches, description=f"sampling {k} answers to {len(prompts)} problems"):
        chunk = prompts[start : start + batch_size]
        texts = [
            tokenizer.apply_chat_template(chat_messages(p), tokenize=False, add_generation_prompt=True)
            for p in chunk
        ]
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(seed * 1_000_003 + start)  # the same answers for the same (seed, prompts)
        with torch.no_grad():
            generated = model.generate(
                **batch,
                do_sample=True,
                temperature=temperature,
                top_p=1.0,
                max_new_tokens=max_new_tokens,
                num_return_sequences=k,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        decoded = tokenizer.batch_decode(
            generated[:, batch["input_ids"].shape[1] :], skip_special_tokens=True
        )
        out.extend(decoded[i * k : (i + 1) * k] for i in range(len(chunk)))
    return out


def generate_rankings(
    model_dir: str,
    n_prompts: int,
    k: int,
    *,
    split: str = "rl",
    seed: int = 1,
    temperature: float = 1.0,
    max_new_tokens: int = 96,
    perturb_share: float = 0.2,
) -> list[Ranking]:
    """Rankings of `k` answers for `n_prompts` problems of `split`, ranked by the hidden preference.

    The answers are the model's own samples; with probability `perturb_share` one of them is replaced by a
    perturbed copy of another (`perturb`), so typical mistakes appear next to the answer they spoil.
    """
    chosen = problems(split, n_prompts, seed)
    sampled = sample_responses(
        model_dir, chosen, k, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed
    )
    rng = random.Random(f"rankings:{seed}")
    rankings = []
    for index, (problem, responses) in enumerate(zip(chosen, sampled, strict=True)):
        responses = [r.strip() for r in responses]
        if rng.random() < perturb_share:
            source, target = rng.sample(range(k), 2)
            responses[target] = perturb(responses[source], problem, rng)
        rankings.append(rank(problem, responses, id=f"{split}-{seed}-{index}"))
    return rankings
