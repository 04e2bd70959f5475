"""PPO's critic math against hand-computed values: token-level rewards, the clipped value loss (its gradient
and its sharding), explained variance, `with_gae` over a batch, packing per-token fields, and the config of a
job with a critic."""

import pytest
import torch

from rlsys.algorithms.aggregation import GlobalCounts
from rlsys.algorithms.value import clipped_value_loss, explained_variance, token_level_rewards
from rlsys.batch import pack, padding_of, with_gae
from rlsys.config import load_job
from rlsys.errors import ConfigError
from rlsys.types import TrainSequence


def test_the_reward_sits_on_the_last_response_token():
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    rewards = token_level_rewards(torch.tensor([1.0, 0.5, 2.0]), mask)
    assert rewards.tolist() == [[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0]]


VALUES = torch.tensor([[0.5, 0.0]])
OLD = torch.tensor([[0.2, 0.1]])
RETURNS = torch.tensor([[1.0, 0.0]])


def test_value_clipping_by_hand():
    # Token 1: unclipped (0.5 - 1)^2 = 0.25; clipped 0.2 + 0.2 = 0.4, (0.4 - 1)^2 = 0.36: the max is 0.36.
    # Token 2: unclipped 0; clipped 0.1 - 0.1 = 0.0, also 0. Loss 1/2 * (0.36 + 0) / 2 tokens.
    values = VALUES.clone().requires_grad_(True)
    loss, metrics = clipped_value_loss(values, OLD, RETURNS, torch.ones(1, 2), GlobalCounts(2, 1), clip=0.2)
    assert loss.item() == pytest.approx(0.09)
    assert metrics == pytest.approx({"value_loss": 0.09, "value_clip_fraction": 0.5, "values": 0.25})
    loss.backward()
    # Token 1's loss is the clipped term, flat in the value: no gradient (PPO's clip stops the move).
    assert values.grad[0].tolist() == pytest.approx([0.0, 0.0])


def test_without_clipping_the_loss_is_half_the_squared_error():
    values = VALUES.clone().requires_grad_(True)
    loss, metrics = clipped_value_loss(values, OLD, RETURNS, torch.ones(1, 2), GlobalCounts(2, 1), clip=None)
    assert loss.item() == pytest.approx(0.0625)  # 1/2 * 0.25 / 2
    assert metrics["value_clip_fraction"] == 0.0
    loss.backward()
    assert values.grad[0].tolist() == pytest.approx([-0.25, 0.0])  # (V - R) / 2 tokens


def test_sharded_value_loss_sums_to_the_whole_batch():
    torch.manual_seed(0)
    values, old, returns = torch.randn(4, 5), torch.randn(4, 5), torch.randn(4, 5)
    mask = (torch.rand(4, 5) > 0.3).float()
    counts = GlobalCounts(int(mask.sum()), 4)
    whole, _ = clipped_value_loss(values, old, returns, mask, counts, clip=0.2)
    halves = [
        clipped_value_loss(values[rows], old[rows], returns[rows], mask[rows], counts, clip=0.2)[0]
        for rows in (slice(0, 2), slice(2, 4))
    ]
    assert sum(halves).item() == pytest.approx(whole.item())


def test_explained_variance_by_hand():
    returns = torch.tensor([[1.0, 0.0, 1.0, 0.0, 5.0]])
    values = torch.tensor([[0.9, 0.1, 0.6, 0.2, -5.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])  # the last token is padding, its error ignored
    # Residuals 0.1 -0.1 0.4 -0.2: mean 0.05, variance 0.21 / 4; the returns' variance 0.25.
    assert explained_variance(values, returns, mask) == pytest.approx(1 - 0.0525 / 0.25)
    assert explained_variance(returns, returns, mask) == pytest.approx(1.0)
    assert explained_variance(torch.full_like(returns, 0.5), returns, mask) == pytest.approx(0.0)
    assert explained_variance(values, torch.ones_like(returns), mask) is None


def _sequence(prompt: int, response: int, reward: float) -> TrainSequence:
    return TrainSequence(tuple(range(prompt)), tuple(range(10, 10 + response)), reward, (-1.0,) * response)


def test_with_gae_gives_each_token_its_advantage_return_and_value():
    sequences = [_sequence(2, 3, 1.0), _sequence(4, 2, 0.0)]
    trained, explained = with_gae(sequences, [(0.5, 0.6, 0.8), (0.2, 0.4)], gamma=1.0, lam=0.5)
    # The first is gae.py's worked example; the second: deltas 0.2, -0.4, so A = 0.2 + 0.5 * -0.4, -0.4.
    assert trained[0].token_advantages == pytest.approx((0.25, 0.3, 0.2))
    assert trained[0].returns == pytest.approx((0.75, 0.9, 1.0))
    assert trained[1].token_advantages == pytest.approx((0.0, -0.4))
    assert trained[1].returns == pytest.approx((0.2, 0.0))
    assert trained[1].values == pytest.approx((0.2, 0.4))
    returns = torch.tensor([0.75, 0.9, 1.0, 0.2, 0.0])
    values = torch.tensor([0.5, 0.6, 0.8, 0.2, 0.4])
    expected = 1 - (returns - values).var(unbiased=False) / returns.var(unbiased=False)
    assert explained == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="one value per response token"):
        with_gae(sequences, [(0.5, 0.6), (0.2, 0.4)], gamma=1.0, lam=0.5)


def test_pack_places_per_token_fields_on_the_response_targets():
    (trained,), _ = with_gae([_sequence(2, 3, 1.0)], [(0.5, 0.6, 0.8)], gamma=1.0, lam=0.5)
    batch = pack([trained, padding_of(trained)], pad_id=0)
    # Prompt of 2 tokens: response token j is predicted at target index 1 + j.
    assert batch.advantages[0].tolist() == pytest.approx([0.0, 0.25, 0.3, 0.2])
    assert batch.returns[0].tolist() == pytest.approx([0.0, 0.75, 0.9, 1.0])
    assert batch.old_values[0].tolist() == pytest.approx([0.0, 0.5, 0.6, 0.8])
    assert batch.response_mask[1].sum() == 0  # the padding copy carries them, with no weight
    plain = pack([_sequence(2, 3, 1.0)], pad_id=0)
    assert plain.advantages.shape == (1,) and plain.returns is None and plain.old_values is None
    with pytest.raises(ValueError, match="some sequences"):
        pack([trained, _sequence(2, 3, 1.0)], pad_id=0)


def test_ppo_trains_a_critic_sized_like_the_learner():
    job = load_job(None, ["algorithm.name=ppo", "learner.num_cpus=0.5", "learner.lora={}"])
    assert job.critic.model_dump() == job.learner.model_dump(exclude={"lora"})
    assert job.pools()["critic"] is job.critic and job.critic.num_cpus == 0.5
    assert load_job(None, ["algorithm.name=ppo", "critic.replicas=2", "critic.lr=1e-3"]).critic.lr == 1e-3
    assert load_job(None, []).critic is None


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["critic.lr=1e-3"], "critic"),
        (["algorithm.gamma=0.9"], "algorithm.gamma"),
        (["algorithm.name=rloo", "algorithm.value_clip=null"], "algorithm.value_clip"),
        (["algorithm.name=ppo", "algorithm.policy_loss=gspo"], "algorithm.policy_loss"),
        (["algorithm.name=ppo", "algorithm.kl_in_reward=true"], "algorithm.kl_in_reward"),
        (["algorithm.name=ppo", "critic.lora={}"], "critic.lora"),  # the critic trains every weight
        (["algorithm.name=ppo", "critic.replicas=1000", "train.prompts_per_step=2"], "critic.replicas"),
    ],
)
def test_critic_keys_that_would_do_nothing_are_refused(overrides, key):
    with pytest.raises(ConfigError, match=key):
        load_job(None, overrides)


def test_with_gae_credits_the_turn_before_a_tool_call_with_the_final_reward():
    # Policy tokens, 2 tool-output tokens, policy tokens: the reward lands on the last policy token and flows
    # back through the tool output to the first turn (gamma = lambda = 1: every policy token's advantage is
    # the reward minus its own value); the tool tokens get no advantage and no return.
    tool_call = TrainSequence((0, 1), (10, 11, 12, 13, 14), 1.0, (-1.0,) * 5, loss_mask=(1, 1, 0, 0, 1))
    (trained,), _ = with_gae([tool_call], [(0.5, 0.6, 9.0, 9.0, 0.8)], gamma=1.0, lam=1.0)
    assert trained.token_advantages == pytest.approx((0.5, 0.4, 0.0, 0.0, 0.2))
    assert trained.returns == pytest.approx((1.0, 1.0, 0.0, 0.0, 1.0))
    batch = pack([trained], pad_id=0)
    assert batch.response_mask[0].tolist() == [0.0, 1.0, 1.0, 0.0, 0.0, 1.0]
