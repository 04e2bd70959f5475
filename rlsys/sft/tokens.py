"""A conversation as the learner trains on it: token ids, and labels that keep only the assistant's tokens.

The conversation is rendered with the model's chat template, turn by turn, so every prompt is exactly what
a rollout engine is given (`apply_chat_template(..., add_generation_prompt=True)`) and every reply is what
a sampler emits: the reply's content and the end-of-turn token the template closes it with (the model's EOS:
generation stops there). For the embedded model's ChatML:

    <|im_start|>user\\nWhat is 2+3?<|im_end|>\\n<|im_start|>assistant\\n   context  (labels -100)
    #### 5<|im_end|>                                                    reply    (labels = ids)

Whatever the template writes after the end token (a newline, the next user turn) is context for the next
reply. A template that writes no EOS after a reply has the whole rendered turn trained on.
"""

from collections.abc import Sequence
from dataclasses import dataclass

IGNORE_INDEX = -100  # a label the loss skips: context, padding, the first token of a packed document


class TemplateError(ValueError):
    """The chat template does not render a conversation as a growing prefix (so turns cannot be told apart),
    or the conversation holds no assistant reply to train on."""


@dataclass(frozen=True)
class Example:
    """One conversation's token ids and labels (IGNORE_INDEX except on the assistant's reply tokens)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def trained_tokens(self) -> int:
        """How many tokens the loss covers (the reply tokens): the unit of every SFT loss denominator."""
        return sum(label != IGNORE_INDEX for label in self.labels)


def render(tokenizer, messages: Sequence[dict[str, str]], *, generation_prompt: bool) -> str:
    """The chat template's text for `messages` (with the assistant's generation prompt when asked)."""
    return tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=generation_prompt
    )


def encode_chat(tokenizer, messages: Sequence[dict[str, str]]) -> Example:
    """Token ids of a conversation and labels on its assistant replies only (see the module docstring).

    Each assistant turn i contributes the context up to it (rendered `messages[:i]` with the generation
    prompt, minus what earlier turns covered) untrained, then its reply trained. Text is tokenized in those
    pieces, which for a single exchange gives exactly the rollout engine's prompt ids followed by the
    reply's ids and EOS. Raises TemplateError when the template's renderings are not prefixes of each other,
    or when no assistant turn has content.
    """
    eos = tokenizer.eos_token
    ids: list[int] = []
    labels: list[int] = []
    covered = ""  # the rendered text the ids hold so far
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        if not message["content"].strip():
            raise TemplateError(f"message {index} is an assistant turn with no content")
        prompt = render(tokenizer, messages[:index], generation_prompt=True)
        with_reply = render(tokenizer, messages[: index + 1], generation_prompt=False)
        if not prompt.startswith(covered) or not with_reply.startswith(prompt):
            raise TemplateError(
                f"the chat template does not render turn {index} as a continuation of the turns before it, "
                "so its reply cannot be told apart; give a template that renders conversations as growing "
                "prefixes (model.chat_template)"
            )
        turn = with_reply[len(prompt) :]
        end = turn.find(eos) if eos else -1
        reply = turn if end < 0 else turn[: end + len(eos)]
        context_ids = _tokens(tokenizer, prompt[len(covered) :])
        reply_ids = _tokens(tokenizer, reply)
        ids += context_ids + reply_ids
        labels += [IGNORE_INDEX] * len(context_ids) + reply_ids
        covered = prompt + reply
    if not ids:
        raise TemplateError("the conversation has no assistant turn to train on")
    return Example(tuple(ids), tuple(labels))


def _tokens(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []
