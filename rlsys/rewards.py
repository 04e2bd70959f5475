"""The job's reward functions by name, and the verifier that scores samples with their weighted sum.

`verifier.rewards` in a job names functions of this registry with their weights: the verifiers' built-ins
(`math`, `code`, `format`: `verifiers.rewards`) and the quickstart's hidden preference (`hidden_preference`,
`rlsys.rlhf.preference`: the people of the RLHF demo, usually at weight 0 so the reward-hacking monitor can
use it as gold without RL optimising it). Every function takes the batched signature of `verifiers.rewards`
and is given each response's chat as the `prompts` column.
"""

import time
from collections.abc import Sequence

from rlsys.rlhf.preference import hidden_preference_reward
from rlsys.types import Prompt, Reward
from verifiers.rewards import REWARDS, RewardFn

REWARD_FUNCTIONS: dict[str, RewardFn] = {**REWARDS, "hidden_preference": hidden_preference_reward}


class Verifier:
    """Scores responses with the job's reward functions; the verifier pool's actors each hold one."""

    def __init__(self, weights: dict[str, float], timeout_s: float) -> None:
        self.functions = {name: (REWARD_FUNCTIONS[name], weight) for name, weight in weights.items()}
        self.timeout_s = timeout_s

    def ready(self) -> None:
        """Returns once the verifier is constructed (the pool's start-up check)."""

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[Reward]:
        """One Reward per response to `prompts[i]`: the weighted sum of every function, with its components;
        correct when every function that judges correctness says so (None when none does)."""
        start = time.perf_counter()
        golds = [prompt.gold for prompt in prompts]
        chats = [list(prompt.messages) for prompt in prompts]
        per_function = {
            name: fn(responses, golds, self.timeout_s, prompts=chats)
            for name, (fn, _) in self.functions.items()
        }
        elapsed = (time.perf_counter() - start) / max(len(responses), 1)
        rewards = []
        for i in range(len(responses)):
            scores = {name: results[i] for name, results in per_function.items()}
            judged = [s.correct for s in scores.values() if s.correct is not None]
            rewards.append(
                Reward(
                    score=sum(self.functions[name][1] * s.value for name, s in scores.items()),
                    components={name: s.value for name, s in scores.items()},
                    correct=all(judged) if judged else None,
                    verdict=",".join(s.verdict for s in scores.values()),
                    elapsed_s=elapsed,
                )
            )
        return rewards
