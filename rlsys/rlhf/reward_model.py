"""The reward model: the policy's architecture with a scalar head, read at the reply's last token.

It is `AutoModelForSequenceClassification` with one label, initialised from any causal-LM checkpoint (the
embedded model or a Hugging Face directory): the transformer body is loaded, the `score` head
(hidden -> 1, no bias) is new. Transformers reads the score at the last non-padding token, which is the
reply's end-of-turn token because every sequence is encoded as

    chat template(prompt, generation prompt) + reply + <|im_end|>

exactly what the policy produced, in training and in scoring alike (`encode`). A plain HF forward
scores: no vLLM needed. The directory it is saved to loads with `AutoModelForSequenceClassification`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from rlsys import atomic
from rlsys.rlhf.data import Messages, Ranking
from rlsys.rlhf.losses import RANKING_LOSSES, pair_metrics
from rlsys.rlhf.monitor import DriftReference, Spread

INFO_FILE = "reward_model.json"  # training facts saved next to the weights (loss, held-out accuracy, base)


def init_reward_model(base_path: str, dtype: torch.dtype = torch.float32, seed: int = 0):
    """A scalar-head model with the body of the causal LM at `base_path` and a freshly drawn head."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    torch.manual_seed(seed)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "score.weight newly initialized" is the point here, not a warning
    try:
        model = AutoModelForSequenceClassification.from_pretrained(base_path, num_labels=1, dtype=dtype)
    finally:
        hf_logging.set_verbosity(verbosity)
    if model.config.pad_token_id is None:
        raise ValueError(f"{base_path}: the model config has no pad_token_id; the scalar head needs one")
    return model


def load_reward_model(path: str, dtype: torch.dtype = torch.float32):
    """A saved reward model and its tokenizer, in eval mode."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(path, dtype=dtype).eval()
    return model, AutoTokenizer.from_pretrained(path)


def encode(
    tokenizer, prompt: Messages | Sequence[dict[str, str]], response: str, max_length: int
) -> list[int]:
    """Token ids of prompt + reply + end-of-turn; an over-long sequence loses its start, never its end."""
    prompt_ids = tokenizer.apply_chat_template(list(prompt), add_generation_prompt=True, tokenize=True)
    if not isinstance(prompt_ids, list):  # transformers 5 returns an encoding, 4 a list
        prompt_ids = list(prompt_ids["input_ids"])
    reply_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    return (list(prompt_ids) + reply_ids + [tokenizer.eos_token_id])[-max_length:]


def collate(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (N, T) input ids and attention mask."""
    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[row, : len(ids)] = 1
    return input_ids, mask


def forward_scores(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(N,) scalar rewards; gradients flow when the caller allows them."""
    device = next(model.parameters()).device
    return model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).logits[:, 0]


@torch.no_grad()
def score(
    model,
    tokenizer,
    prompts: Sequence[Sequence[dict[str, str]]],
    responses: Sequence[str],
    *,
    batch_size: int = 64,
    max_length: int = 384,
) -> list[float]:
    """The reward of each (prompt messages, response), in order; batches sorted by length to pad less."""
    if len(prompts) != len(responses):
        raise ValueError(
            f"{len(prompts)} prompts but {len(responses)} responses; pass one prompt per response"
        )
    encoded = [encode(tokenizer, p, r, max_length) for p, r in zip(prompts, responses, strict=True)]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out = [0.0] * len(encoded)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        input_ids, mask = collate([encoded[i] for i in rows], tokenizer.pad_token_id)
        for i, value in zip(rows, forward_scores(model, input_ids, mask).float().tolist(), strict=True):
            out[i] = value
    return out


@dataclass(frozen=True)
class EncodedRanking:
    sequences: tuple[tuple[int, ...], ...]  # token ids of each response, prompt included
    ranks: tuple[int, ...]


def encode_rankings(tokenizer, rankings: Sequence[Ranking], max_length: int) -> list[EncodedRanking]:
    return [
        EncodedRanking(
            tuple(tuple(encode(tokenizer, r.prompt, resp, max_length)) for resp in r.responses), r.ranks
        )
        for r in rankings
    ]


def ranking_tensors(batch: Sequence[EncodedRanking], pad_id: int):
    """Inputs of one step: (N, T) ids and mask of every response, and (B, K) ranks and validity."""
    sizes = [len(item.ranks) for item in batch]
    width = max(sizes)
    input_ids, mask = collate([seq for item in batch for seq in item.sequences], pad_id)
    ranks = torch.zeros((len(batch), width), dtype=torch.long)
    valid = torch.zeros((len(batch), width), dtype=torch.bool)
    for row, item in enumerate(batch):
        ranks[row, : sizes[row]] = torch.tensor(item.ranks)
        valid[row, : sizes[row]] = True
    return input_ids, mask, ranks, valid, sizes


def unflatten(scores: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """(N,) scores of the responses in batch order -> (B, K) padded with zeros (masked by `valid`)."""
    return torch.nn.utils.rnn.pad_sequence(list(torch.split(scores, sizes)), batch_first=True)


def ranking_micro_batches(
    rankings: Sequence[EncodedRanking], max_rankings: int, max_tokens: int | None = None
) -> list[list[EncodedRanking]]:
    """Consecutive chunks of `rankings`, one forward each: at most `max_rankings` rankings and, with
    `max_tokens`, at most that many padded tokens (responses x longest response; a longer ranking goes
    alone). A ranking is never split: its loss needs every one of its scores. Costs no tensors, so the pool
    counts every rank's forwards with it before sending the work."""
    chunks: list[list[EncodedRanking]] = []
    rows = longest = 0
    for ranking in rankings:
        ranking_longest = max(len(seq) for seq in ranking.sequences)
        grown_rows, grown_longest = rows + len(ranking.sequences), max(longest, ranking_longest)
        if (
            not chunks
            or len(chunks[-1]) >= max_rankings
            or (max_tokens is not None and grown_rows * grown_longest > max_tokens)
        ):
            chunks.append([ranking])
            rows, longest = len(ranking.sequences), ranking_longest
        else:
            chunks[-1].append(ranking)
            rows, longest = grown_rows, grown_longest
    return chunks


def heldout_metrics(loss: str, scores: Sequence[Sequence[float]], ranks: Sequence[Sequence[int]]) -> dict:
    """Loss (`RANKING_LOSSES[loss]`) and pair metrics over every held-out ranking at once (`scores[i]`: the
    scores of ranking i's responses, ranked `ranks[i]`), and where the scores lie: their median and robust
    spread are the reward-hacking monitor's reference for outlying scores."""
    pad = torch.nn.utils.rnn.pad_sequence
    rewards = pad([torch.tensor(row, dtype=torch.float32) for row in scores], batch_first=True)
    ranks_t = pad([torch.tensor(row) for row in ranks], batch_first=True)
    valid = pad([torch.ones(len(row), dtype=torch.bool) for row in ranks], batch_first=True)
    value, _ = RANKING_LOSSES[loss](rewards, ranks_t, valid)
    spread = Spread.of(rewards[valid].tolist())
    return {
        "loss": value.item(),
        **pair_metrics(rewards, ranks_t, valid),
        "score_median": spread.median,
        "score_scale": spread.scale,
    }


def save_reward_model(
    model, tokenizer, directory: str | Path, info: dict, state_dict: dict[str, torch.Tensor] | None = None
) -> Path:
    """Write an HF-loadable directory, atomically: weights, config, tokenizer, and `reward_model.json` with
    `info`. A killed save leaves only a staging folder, never a directory that looks like a reward model.
    `state_dict`: the weights to write instead of the model's own (a ZeRO-3 model's, gathered)."""
    with atomic.directory(directory) as staging:
        model.save_pretrained(staging, state_dict=state_dict)
        tokenizer.save_pretrained(staging)
        (staging / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return Path(directory)


def reward_model_info(directory: str | Path) -> dict:
    """What `rlsys train-rm` recorded about a reward model (empty for one trained elsewhere)."""
    info_file = Path(directory) / INFO_FILE
    return json.loads(info_file.read_text()) if info_file.is_file() else {}


def training_reference(directory: str | Path) -> DriftReference:
    """What the reward model saw in training (scores, answer lengths), as far as `rlsys train-rm` recorded."""
    info = reward_model_info(directory)
    scores = Spread(info["score_median"], info["score_scale"]) if "score_median" in info else None
    return DriftReference(scores, info.get("mean_response_tokens"))
