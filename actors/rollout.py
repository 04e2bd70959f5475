"""The rollout engine: a vLLM engine that samples groups of completions and takes new weights in place.

`RolloutEngine` is a plain class (built and tested without Ray); `actors.pools.RayRolloutPool` runs it as
Ray actors.
Single-turn sampling is one `LLM.generate` call. With tool calls (`Sampling.max_tool_calls` > 0) the engine is
driven request by request (`LLMEngine.add_request` / `step`, `rlsys.tools.run_turns`): a response that called
its tool waits for the answer while the engine steps the others, so tool time hides behind generation.
Weight sync on CPU goes through `collective_rpc` into each vLLM worker's `reload_weights`: the CPU build
repacks linear weights, so loading through the model's own `load_weights` would fail there. After the load
each worker reports a fingerprint of the weights it now serves (`actors.weights.served_fingerprint`), which
the pool checks against the learner's.

Every sample carries the policy version of the weights that made it. An engine asked for samples of another
version than it holds (it restarted with its initial weights) refuses with `StaleWeightsError` before it
samples; the pool re-syncs it and dispatches the work again.
"""

import os
import time
from collections.abc import Sequence

import torch

from actors.weights import PackedWeights, TensorSlot, WeightCheck, served_fingerprint
from rlsys.models import prompt_token_ids
from rlsys.tools import ToolFormat, ToolRunner, Trajectory, Turn, run_turns
from rlsys.types import Prompt, Sample, Sampling


class StaleWeightsError(RuntimeError):
    """An engine was asked for samples of a policy version it does not hold."""


def _reload_worker_weights(worker, weights: PackedWeights) -> None:
    # Runs inside each vLLM worker (module-level so it pickles by reference for multi-process engines).
    worker.reload_weights(weights_iterator=iter(weights.tensors()), is_checkpoint_format=True)


def _worker_fingerprint(worker, slots: tuple[TensorSlot, ...]) -> dict[str, str]:
    # Runs inside each vLLM worker, after the load: digests of the tensors it now serves.
    return served_fingerprint(worker.get_model().named_parameters(), slots)


class RolloutEngine:
    """One vLLM engine serving `generate` and `sync_weights` for the learner loop."""

    def __init__(
        self,
        model_path: str,
        *,
        seed: int,
        dtype: str = "float32",
        kv_cache_gib: float | None = 0.25,
        gpu_memory_utilization: float = 0.9,
        threads: int = 0,
        chat_template: str | None = None,
        tool_tokens: tuple[str, str] | None = None,
        tool_deadline_s: float = 120.0,
    ) -> None:
        """`chat_template`: the job's template for a model whose tokenizer has none (`rlsys.models`);
        `tool_tokens`: the special tokens that open and close a tool call, when rollouts may call tools;
        `tool_deadline_s`: how long a tool call may go unanswered before the rollout fails."""
        # The in-process engine core: no extra process per engine, which is faster on a small CPU box.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        if threads:
            torch.set_num_threads(threads)
        from vllm import LLM

        self.llm = LLM(
            model=model_path,
            dtype=dtype,
            seed=seed,
            # An explicit KV-cache size: on CPU a utilization fraction counts every process on the node.
            kv_cache_memory_bytes=None if kv_cache_gib is None else int(kv_cache_gib * 2**30),
            gpu_memory_utilization=gpu_memory_utilization,
            enforce_eager=not torch.cuda.is_available(),
            # Prompts are scheduled whole: a partially prefilled seeded request rewinds its random
            # generator, which the CPU generator cannot do ("CPU Generator does not use offset").
            enable_chunked_prefill=False,
            use_tqdm_on_load=False,  # a progress bar in an actor's log is a line per refresh
        )
        self.tokenizer = self.llm.get_tokenizer()
        if chat_template is not None:
            self.tokenizer.chat_template = chat_template
        self.seed = seed
        self.policy_version = 0
        self.tool_format = ToolFormat.of(self.tokenizer, *tool_tokens) if tool_tokens else None
        self.tool_deadline_s = tool_deadline_s
        self._warm_up()

    def _warm_up(self) -> None:
        """The engine's first `generate` pays one-off set-up (about 2 s on CPU, whatever its size); pay it
        while the pools start, beside the learner's own start-up, instead of in the first RL step."""
        from vllm import SamplingParams, TokensPrompt

        prompt = TokensPrompt(prompt_token_ids=self.tokenizer.encode("warm up", add_special_tokens=False))
        params = SamplingParams(n=2, temperature=1.0, max_tokens=2, logprobs=0, seed=self.seed)
        self.llm.generate([prompt], params, use_tqdm=False)

    def ready(self) -> None:
        """Returns once the engine is up and warmed (the pool's start-up check)."""

    def prompt_token_ids(self, prompt: Prompt) -> list[int]:
        return prompt_token_ids(self.tokenizer, prompt)

    def generate(
        self,
        prompts: Sequence[Prompt],
        sampling: Sampling,
        request_seeds: Sequence[int | None] | None = None,
        policy_version: int | None = None,
        tools: ToolRunner | None = None,
    ) -> list[list[Sample]]:
        """Sample `sampling.n` completions of each prompt; one list of samples per prompt, in order.

        `request_seeds` (one per prompt) make a rollout reproducible whatever engine serves it.
        `policy_version`: the version the caller expects the samples to come from; an engine holding another
        raises `StaleWeightsError` at once (None: no check). With `sampling.max_tool_calls` > 0, `tools` runs
        the responses' tool calls.
        """
        from vllm import SamplingParams, TokensPrompt

        if policy_version is not None and policy_version != self.policy_version:
            raise StaleWeightsError(
                f"asked for samples of policy version {policy_version}, holds version {self.policy_version}"
            )
        token_ids = [self.prompt_token_ids(p) for p in prompts]
        if sampling.max_tool_calls:
            return self._generate_with_tools(prompts, token_ids, sampling, request_seeds, tools)
        params = [
            SamplingParams(
                n=sampling.n,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_new_tokens,
                logprobs=0,  # the sampled token's own logprob only
                seed=None if request_seeds is None else request_seeds[i],
            )
            for i in range(len(prompts))
        ]
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=ids) for ids in token_ids], params, use_tqdm=False
        )
        return [
            [self._sample(prompt, ids, completion) for completion in output.outputs]
            for prompt, ids, output in zip(prompts, token_ids, outputs, strict=True)
        ]

    def _sample(self, prompt: Prompt, prompt_ids: list[int], completion) -> Sample:
        logprobs = tuple(
            step[token].logprob for step, token in zip(completion.logprobs, completion.token_ids, strict=True)
        )
        return Sample(
            prompt_id=prompt.id,
            prompt_token_ids=tuple(prompt_ids),
            token_ids=tuple(completion.token_ids),
            text=completion.text,
            logprobs=logprobs,
            finish_reason=completion.finish_reason or "stop",
            policy_version=self.policy_version,
        )

    def _generate_with_tools(
        self,
        prompts: Sequence[Prompt],
        token_ids: list[list[int]],
        sampling: Sampling,
        request_seeds: Sequence[int | None] | None,
        tools: ToolRunner | None,
    ) -> list[list[Sample]]:
        if self.tool_format is None or tools is None:
            raise ValueError("tool calls need the engine's tool tokens and a tool runner")
        groups = run_turns(
            _VllmTurns(self.llm, sampling, self.tool_format.end_id),
            tools,
            token_ids,
            request_seeds or [None] * len(prompts),
            n=sampling.n,
            max_new_tokens=sampling.max_new_tokens,
            max_tool_calls=sampling.max_tool_calls,
            tool_format=self.tool_format,
            tool_deadline_s=self.tool_deadline_s,
        )
        return [
            [self._tool_sample(prompt, t) for t in group]
            for prompt, group in zip(prompts, groups, strict=True)
        ]

    def _tool_sample(self, prompt: Prompt, t: Trajectory) -> Sample:
        return Sample(
            prompt_id=prompt.id,
            prompt_token_ids=tuple(t.prompt_ids),
            token_ids=tuple(t.token_ids),
            text=t.text,
            logprobs=tuple(t.logprobs),
            finish_reason=t.finish_reason,
            policy_version=self.policy_version,
            loss_mask=tuple(t.loss_mask),
            tool_calls=tuple(t.calls),
        )

    def sync_weights(self, weights: PackedWeights, policy_version: int) -> WeightCheck:
        """Load new weights (Hugging Face names) into the running engine; later samples carry the version.

        Returns the learner's fingerprint of the weights beside this engine's fingerprint of what it serves
        after the load, for the pool to compare.
        """
        start = time.perf_counter()
        self.load_weights(weights)
        loaded = time.perf_counter()
        served = self.llm.collective_rpc(_worker_fingerprint, args=(weights.slots,))
        self.policy_version = policy_version
        return WeightCheck(
            version=policy_version,
            learner=weights.fingerprint,
            served=tuple(served),
            load_s=loaded - start,
            fingerprint_s=time.perf_counter() - loaded,
        )

    def load_weights(self, weights: PackedWeights) -> None:
        """Load new weights into every worker of the engine, and drop the KV cache computed with the old."""
        self.llm.collective_rpc(_reload_worker_weights, args=(weights,))
        self.llm.reset_prefix_cache()


class _VllmTurns:
    """vLLM's request-level engine as an `rlsys.tools.TurnEngine`: one request per turn, stopping at the end
    of the turn or at the token that closes a tool call; only finished requests are reported."""

    def __init__(self, llm, sampling: Sampling, call_end_id: int) -> None:
        self.engine = llm.llm_engine
        self.sampling, self.call_end_id = sampling, call_end_id

    def add(self, key: str, token_ids: list[int], max_tokens: int, seed: int | None) -> None:
        from vllm import SamplingParams, TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        params = SamplingParams(
            n=1,
            temperature=self.sampling.temperature,
            top_p=self.sampling.top_p,
            max_tokens=max_tokens,
            logprobs=0,
            seed=seed,
            stop_token_ids=[self.call_end_id],
            output_kind=RequestOutputKind.FINAL_ONLY,
        )
        self.engine.add_request(key, TokensPrompt(prompt_token_ids=token_ids), params)

    def step(self) -> list[Turn]:
        turns = []
        for output in self.engine.step():
            if not output.finished:
                continue
            completion = output.outputs[0]
            logprobs = tuple(
                step[token].logprob
                for step, token in zip(completion.logprobs, completion.token_ids, strict=True)
            )
            turns.append(
                Turn(
                    key=output.request_id,
                    token_ids=tuple(completion.token_ids),
                    logprobs=logprobs,
                    text=completion.text,
                    finish_reason=completion.finish_reason or "stop",
                )
            )
        return turns

    def busy(self) -> bool:
        return self.engine.has_unfinished_requests()
