"""Tool output in a response is not trained on: its tokens leave the response mask, the token count the loss
divides by, and the gradient (policy loss and KL alike); the learner's loss is taken exactly as it is in
`actors.learner.LearnerRank.train_step`."""

import pytest
import torch

from rlsys.algorithms.aggregation import GlobalCounts
from rlsys.algorithms.logprobs import token_logprobs
from rlsys.algorithms.objective import objective_for
from rlsys.batch import pack, response_token_count, training_batch
from rlsys.config import AlgorithmConfig
from rlsys.types import Reward, Sample, TrainSequence

# Prompt [5, 6], then a response: 2 policy tokens (a tool call), 3 tool-output tokens, 2 policy tokens.
PROMPT = (5, 6)
RESPONSE = (7, 8, 20, 21, 22, 9, 10)
MASK = (1, 1, 0, 0, 0, 1, 1)


def _sequence(advantage: float = 1.0, mask=MASK) -> TrainSequence:
    logprobs = tuple(-0.5 if m else 0.0 for m in mask)
    return TrainSequence(PROMPT, RESPONSE, advantage, logprobs, mask)


def test_pack_turns_the_loss_mask_into_the_response_mask():
    batch = pack([_sequence(), TrainSequence((1,), (2, 3), -1.0, (-0.1, -0.2))], pad_id=0)
    # Targets start at the prompt's last position: response token j sits at target index 1 + j.
    assert batch.response_mask[0].tolist() == [0, 1, 1, 0, 0, 0, 1, 1]
    assert batch.response_mask[1].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]  # no mask: every response token
    assert response_token_count([_sequence()]) == 4


def test_training_batch_carries_each_samples_mask():
    samples = [
        Sample("p", PROMPT, RESPONSE, "#### 1", (-0.5,) * 7, "stop", 0, loss_mask=MASK),
        Sample("p", PROMPT, (7, 2), "#### 2", (-0.5, -0.5), "stop", 0),
    ]
    rewards = [Reward(1.0, correct=True), Reward(0.0, correct=False)]
    sequences, kept = training_batch([samples], [rewards], AlgorithmConfig())
    assert kept == 1.0 and [s.loss_mask for s in sequences] == [MASK, ()]


@pytest.mark.parametrize("kl_coef", [0.0, 0.5])
def test_tool_tokens_get_no_gradient(kl_coef):
    algorithm = AlgorithmConfig(kl_coef=kl_coef)
    objective = objective_for(algorithm)
    batch = pack([_sequence(1.0), _sequence(-0.5)], pad_id=0)
    torch.manual_seed(0)
    logits = torch.randn(2, batch.targets.shape[1], 32, requires_grad=True)  # (B, T, V): the policy's output
    logprobs = token_logprobs(logits, batch.targets)
    counts = GlobalCounts(tokens=response_token_count([_sequence(), _sequence()]), sequences=2)
    reference = logprobs.detach() + 0.3 if kl_coef else None  # a reference the policy has drifted from
    loss, metrics = objective(
        logprobs,
        logprobs.detach(),  # on-policy, as the learner takes it: ratio 1
        batch.advantages,
        batch.response_mask,
        counts,
        kl_coef=kl_coef,
        ref_logprobs=reference,
    )
    loss.backward()
    per_position = logits.grad.abs().sum(dim=-1)  # (B, T)
    tool_positions = [3, 4, 5]  # targets 20, 21, 22
    policy_positions = [1, 2, 6, 7]
    assert torch.all(per_position[:, tool_positions] == 0)
    assert torch.all(per_position[:, policy_positions] > 0)
    # The policy loss is -advantage per token, averaged over the policy's 4 tokens of each sequence, not 7.
    assert counts.tokens == 8
    assert metrics["policy_loss"] == pytest.approx((4 * -1.0 + 4 * 0.5) / 8)
