"""Multi-turn rollouts with tool calls on a real vLLM engine and the real sandbox, then through Ray.

- In one process: every response is exactly the ids vLLM generated, turn by turn, with the tool turns
  between them, and Hugging Face's log-probs of the policy's own tokens (tool turns in context) equal the
  sampler's;
- Through Ray: the rollout pool sends its tool calls to the verifier pool's actors, the learner trains on
  the masked responses, and its `logprob_mismatch` stays at numeric noise; PPO's critic values the same
  responses and both train on GAE's per-token figures, which leave tool output out.
"""

import math

import pytest
import torch

import actors.rollout
from actors.pools import RayCriticPool, RayLearnerPool, RayRolloutPool, RayVerifierPool
from actors.rollout import RolloutEngine
from rlsys.batch import training_batch, with_gae
from rlsys.config import AlgorithmConfig, LearnerConfig, RanksConfig, RolloutConfig, VerifierConfig
from rlsys.metrics import tool_metrics
from rlsys.scoring import sample_and_score
from rlsys.tasks.tool_arithmetic import chat_messages, problems
from rlsys.tools import TOOL_CALL_END, TOOL_CALL_START, SandboxTools, ToolLimits
from rlsys.types import Prompt, Sampling, TrainSequence
from verifiers.code import SandboxConfig

pytestmark = pytest.mark.integration

SAMPLING = Sampling(n=3, temperature=1.0, max_new_tokens=80, max_tool_calls=2)


def _prompts(n: int) -> list[Prompt]:
    return [
        Prompt(f"t{i}", tuple(chat_messages(p)), str(p.answer)) for i, p in enumerate(problems("rl", n, 0))
    ]


def test_responses_are_the_engine_ids_with_tool_turns_between(tiny_tool_model_dir, monkeypatch):
    generated = {}  # request key -> the Turn vLLM finished it with
    original = actors.rollout._VllmTurns.step

    def recording(self):
        turns = original(self)
        generated.update({turn.key: turn for turn in turns})
        return turns

    monkeypatch.setattr(actors.rollout._VllmTurns, "step", recording)
    engine = RolloutEngine(
        str(tiny_tool_model_dir),
        seed=0,
        kv_cache_gib=0.05,
        threads=1,
        tool_tokens=(TOOL_CALL_START, TOOL_CALL_END),
    )
    tools = SandboxTools(ToolLimits(2.0, 128, 100), SandboxConfig(allow_missing=("cgroup",)), threads=2)
    try:
        groups = engine.generate(_prompts(4), SAMPLING, [1, 2, 3, 4], tools=tools)
    finally:
        tools.close()
    samples = [s for group in groups for s in group]
    assert tool_metrics(samples)["tool/used_share"] > 0.5  # the fixture's model opens a call at once
    fmt = engine.tool_format
    for i, group in enumerate(groups):
        for j, sample in enumerate(group):
            turns = [
                generated[f"{i}-{j}-{k}"]
                for k in range(len(sample.tool_calls) + 1)
                if f"{i}-{j}-{k}" in generated
            ]
            expected, mask, logprobs = [], [], []
            for k, turn in enumerate(turns):
                expected += turn.token_ids
                mask += [1] * len(turn.token_ids)
                logprobs += turn.logprobs
                if k < len(sample.tool_calls):
                    tool_ids = fmt.tool_turn_ids(sample.tool_calls[k].output)[
                        : SAMPLING.max_new_tokens - len(expected)
                    ]
                    expected += tool_ids
                    mask += [0] * len(tool_ids)
                    logprobs += [0.0] * len(tool_ids)
            assert list(sample.token_ids) == expected
            assert list(sample.loss_mask) == mask and list(sample.logprobs) == logprobs
            assert sample.text == turns[-1].text or sample.finish_reason in ("length", "tool_limit")

    # The learner's view: Hugging Face's log-probs of the policy's own tokens, tool turns in the context.
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_tool_model_dir, dtype=torch.float32)
    drift = []
    for s in samples:
        ids = torch.tensor([list(s.prompt_token_ids) + list(s.token_ids)])
        with torch.no_grad():
            logits = model(ids).logits[0, len(s.prompt_token_ids) - 1 : -1]
        learner = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(s.token_ids)[:, None])[:, 0]
        drift += [abs(a - b) for a, b, m in zip(learner.tolist(), s.logprobs, s.loss_mask, strict=True) if m]
    assert sum(drift) / len(drift) < 0.05


def test_a_grpo_and_a_ppo_step_with_tools_through_ray(tiny_tool_model_dir, ray_runtime):
    model_dir = str(tiny_tool_model_dir)
    verifier = RayVerifierPool(
        VerifierConfig(replicas=2, num_cpus=0.1, rewards={"math": 1.0}, tool_threads=2), runs_tools=True
    )
    rollout_config = RolloutConfig(num_cpus=0.5, kv_cache_gib=0.05, max_tool_calls=2, tool_timeout_s=2.0)
    rollout = RayRolloutPool(model_dir, rollout_config, dtype="float32", seed=0, tools=verifier)
    learner = RayLearnerPool(
        model_dir, LearnerConfig(num_cpus=0.3, micro_batch_size=8), AlgorithmConfig(), dtype="float32", seed=0
    )
    ray_runtime.get([ref for pool in (rollout, verifier, learner) for ref in pool.ready_refs()])
    prompts = _prompts(4)
    scored = sample_and_score(rollout, [verifier], prompts, SAMPLING, seeds=[1, 2, 3, 4])
    samples = [s for group in scored.groups for s in group]
    assert tool_metrics(samples)["tool/calls_per_sample"] > 0.5
    assert all(len(s.loss_mask) == len(s.token_ids) for s in samples if s.tool_calls)
    # Fixed advantages: a barely trained model rarely answers right, and the plumbing is under test.
    sequences, _ = training_batch(
        scored.groups, scored.rewards, AlgorithmConfig(drop_uninformative_groups=False)
    )
    sequences = [
        TrainSequence(
            s.prompt_token_ids, s.token_ids, 1.0 if i % 2 else -1.0, s.sampler_logprobs, loss_mask=s.loss_mask
        )
        for i, s in enumerate(sequences)
    ]
    metrics = learner.train_step(sequences, kl_coef=0.0)
    assert metrics["grad_norm"] > 0 and metrics["logprob_mismatch"] < 0.05

    # PPO on the same responses: the critic values every token, GAE gives tool output no advantage and no
    # return, and both the critic and the policy train on the per-token figures.
    critic = RayCriticPool(
        model_dir, RanksConfig(num_cpus=0.3, micro_batch_size=8), value_clip=0.2, dtype="float32", seed=1
    )
    ray_runtime.get(critic.ready_refs())
    values = critic.values(sequences)
    assert [len(v) for v in values] == [len(s.token_ids) for s in sequences]
    trained, _ = with_gae(sequences, values, gamma=1.0, lam=0.95)
    tool_positions = [(t, j) for t in trained for j, own in enumerate(t.loss_mask) if not own]
    assert tool_positions and all(t.token_advantages[j] == t.returns[j] == 0.0 for t, j in tool_positions)
    assert math.isfinite(critic.train_step(trained)["value_loss"])
    assert learner.train_step(trained, kl_coef=0.0)["grad_norm"] > 0
