"""The verifier worker: scores samples with the job's weighted reward functions.

A plain class; `actors.pools` runs replicas of it as Ray actors. The heavy lifting (sympy in killable worker
processes, the code sandbox) lives in `verifiers/`.
"""

import time
from collections.abc import Sequence

from rlsys.types import Reward
from verifiers.rewards import REWARDS


class Verifier:
    def __init__(self, weights: dict[str, float], timeout_s: float) -> None:
        self.functions = {name: (REWARDS[name], weight) for name, weight in weights.items()}
        self.timeout_s = timeout_s

    def score(self, responses: Sequence[str], golds: Sequence[str]) -> list[Reward]:
        """One Reward per response: the weighted sum of every reward function, with its components."""
        start = time.perf_counter()
        per_function = {
            name: fn(responses, golds, self.timeout_s) for name, (fn, _) in self.functions.items()
        }
        elapsed = (time.perf_counter() - start) / max(len(responses), 1)
        rewards = []
        for i in range(len(responses)):
            scores = {name: results[i] for name, results in per_function.items()}
            judged = [s for s in scores.values() if s.correct is not None]
            rewards.append(
                Reward(
                    score=sum(self.functions[name][1] * s.value for name, s in scores.items()),
                    components={name: s.value for name, s in scores.items()},
                    correct=bool(judged) and all(s.correct for s in judged),
                    verdict=",".join(s.verdict for s in scores.values()),
                    elapsed_s=elapsed,
                )
            )
        return rewards
