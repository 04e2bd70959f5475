"""SFT's pure parts: the assistant-only mask, packing into blocks, and a loss that packing does not change."""

import pytest
import torch

from rlsys.sft.packing import (
    micro_batches,
    pack_bins,
    packed_batch,
    packing_is_isolated,
    padded_batch,
    sft_loss,
)
from rlsys.sft.tokens import IGNORE_INDEX, Example, TemplateError, encode_chat

CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": "#### 5"},
    {"role": "user", "content": "And 4 - 1?"},
    {"role": "assistant", "content": "#### 3"},
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _trained_text(tokenizer, example: Example) -> list[str]:
    """The decoded runs of consecutive trained tokens."""
    runs, current = [], []
    for token, label in zip(example.input_ids, example.labels, strict=True):
        if label == IGNORE_INDEX:
            if current:
                runs.append(tokenizer.decode(current))
            current = []
        else:
            assert label == token
            current.append(token)
    if current:
        runs.append(tokenizer.decode(current))
    return runs


def test_only_the_assistant_replies_and_their_end_token_are_trained(tokenizer):
    example = encode_chat(tokenizer, CHAT)
    assert _trained_text(tokenizer, example) == ["#### 5<|im_end|>", "#### 3<|im_end|>"]
    # Every token of the conversation is there, in the template's order, up to the last reply's end.
    rendered = tokenizer.apply_chat_template(CHAT, tokenize=False)
    assert rendered.startswith(tokenizer.decode(list(example.input_ids)))
    assert rendered[len(tokenizer.decode(list(example.input_ids))) :] == "\n"
    assert example.trained_tokens == sum(len(tokenizer(run)["input_ids"]) for run in ["#### 5", "#### 3"]) + 2


def test_a_single_exchange_is_the_rollout_prompt_then_the_reply(tokenizer):
    """What the learner trains on is what a rollout engine is given and produces: prompt ids, reply, EOS."""
    messages = CHAT[1:3]
    prompt = tokenizer.apply_chat_template(messages[:1], add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    reply_ids = tokenizer("#### 5", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    example = encode_chat(tokenizer, messages)
    assert list(example.input_ids) == prompt_ids + reply_ids
    assert list(example.labels) == [IGNORE_INDEX] * len(prompt_ids) + reply_ids


@pytest.mark.parametrize(
    "messages, match",
    [
        ([{"role": "user", "content": "hi"}], "no assistant turn"),
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}], "no content"),
    ],
)
def test_a_conversation_with_nothing_to_train_is_refused(tokenizer, messages, match):
    with pytest.raises(TemplateError, match=match):
        encode_chat(tokenizer, messages)


def test_a_template_that_does_not_grow_by_prefixes_is_refused(tokenizer):
    tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    # Renders the turns newest first: the reply of turn 2 is not a continuation of the prompt before it.
    tokenizer.chat_template = (
        "{% for m in messages|reverse %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    with pytest.raises(TemplateError, match="continuation"):
        encode_chat(tokenizer, CHAT[1:3])


@pytest.mark.parametrize(
    "lengths, max_tokens, expected",
    [
        ([5, 5, 5], 10, [[0, 1], [2]]),
        ([7, 3, 6, 4], 10, [[0, 1], [2, 3]]),  # first-fit decreasing fills each block exactly
        ([10], 10, [[0]]),
        ([2, 9, 2, 2], 10, [[1], [0, 2, 3]]),
    ],
)
def test_pack_bins_first_fit_decreasing(lengths, max_tokens, expected):
    assert pack_bins(lengths, max_tokens) == expected


def test_pack_bins_never_overfills_and_keeps_every_document():
    lengths = [((i * 37) % 50) + 1 for i in range(200)]
    bins = pack_bins(lengths, 64)
    assert sorted(i for members in bins for i in members) == list(range(200))
    assert all(sum(lengths[i] for i in members) <= 64 for members in bins)
    with pytest.raises(ValueError, match="does not fit"):
        pack_bins([65], 64)


def _example(ids: list[int], trained_from: int) -> Example:
    return Example(tuple(ids), tuple([IGNORE_INDEX] * trained_from + ids[trained_from:]))


def test_packed_rows_restart_positions_and_never_target_across_documents():
    a, b = _example([5, 6, 7], 1), _example([8, 9], 0)
    batch = packed_batch([[a, b]], pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 0, 1]]
    # b's first token is trained in b alone, but packed it would be predicted from a's last: never.
    assert batch.labels.tolist() == [[IGNORE_INDEX, 6, 7, IGNORE_INDEX, 9]]
    assert batch.attention_mask is None and batch.tokens == 5
    ragged = packed_batch([[a, b], [b]], pad_id=0)
    assert ragged.position_ids.tolist()[1] == [0, 1, 0, 1, 2]  # the padding is a document of its own
    assert ragged.labels.tolist()[1][2:] == [IGNORE_INDEX] * 3 and ragged.tokens == 7


def test_micro_batches_respect_rows_and_tokens():
    examples = [_example(list(range(1, n + 1)), 1) for n in (6, 3, 5, 2, 4)]
    padded = micro_batches(examples, 0, packing=False, max_tokens=8, max_rows=2, max_batch_tokens=10)
    assert [tuple(b.input_ids.shape) for b in padded] == [(1, 6), (2, 5), (2, 4)]
    packed = micro_batches(examples, 0, packing=True, max_tokens=8, max_rows=8)
    assert sum(b.tokens for b in packed) == 20 and all(b.input_ids.shape[1] <= 8 for b in packed)
    assert len(packed) == 1 and packed[0].input_ids.shape[0] == 3  # 20 tokens in three blocks of <= 8


@pytest.fixture(scope="module")
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).eval()


def test_packed_and_unpacked_losses_of_the_same_rows_match(tiny_llama):
    """No attention across documents: the same rows packed into one block, or padded one per row, give the
    same loss and the same gradient."""
    generator = torch.Generator().manual_seed(1)
    examples = [
        _example(torch.randint(1, 64, (n,), generator=generator).tolist(), n // 3) for n in (9, 4, 12, 7, 5)
    ]
    tokens = sum(e.trained_tokens for e in examples)

    def loss_and_grad(batch):
        tiny_llama.zero_grad()
        loss, metrics = sft_loss(tiny_llama(**batch.model_inputs()).logits, batch.labels, tokens)
        loss.backward()
        return loss.item(), tiny_llama.model.embed_tokens.weight.grad.clone(), metrics

    padded_loss, padded_grad, padded_metrics = loss_and_grad(padded_batch(examples, pad_id=0))
    packed_loss, packed_grad, packed_metrics = loss_and_grad(packed_batch([examples], pad_id=0))
    assert packed_loss == pytest.approx(padded_loss, rel=1e-5)
    assert torch.allclose(packed_grad, padded_grad, atol=1e-6)
    # Every reply token is counted once, except the first token of each document, which is never trained.
    assert padded_metrics["tokens"] == packed_metrics["tokens"] == tokens
    # Documents that did see each other would not match: the same rows in one unmasked causal row.
    leaky = packed_batch([examples], pad_id=0).model_inputs()
    del leaky["position_ids"]
    joined = sft_loss(tiny_llama(**leaky).logits, packed_batch([examples], 0).labels, tokens)[0].item()
    assert joined != pytest.approx(padded_loss, rel=1e-5)


def test_losses_of_micro_batches_add_up_to_the_step_mean(tiny_llama):
    """The denominator is the step's reply tokens, so the parts of a step sum to its per-token mean."""
    generator = torch.Generator().manual_seed(2)
    examples = [_example(torch.randint(1, 64, (n,), generator=generator).tolist(), 2) for n in (6, 8, 5, 9)]
    tokens = sum(e.trained_tokens for e in examples)
    with torch.no_grad():
        whole = sft_loss(
            tiny_llama(**padded_batch(examples, 0).model_inputs()).logits,
            padded_batch(examples, 0).labels,
            tokens,
        )[0]
        parts = [
            sft_loss(tiny_llama(**b.model_inputs()).logits, b.labels, tokens)[0]
            for b in micro_batches(examples, 0, packing=True, max_tokens=16, max_rows=1)
        ]
    assert len(parts) > 1 and sum(parts).item() == pytest.approx(whole.item(), rel=1e-5)


def test_the_embedded_architecture_keeps_packed_documents_apart(tiny_llama):
    assert packing_is_isolated(tiny_llama, vocab_size=64)
