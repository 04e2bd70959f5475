"""The policy model a job loads: its directory, and the chat template its prompts are rendered with.

Prompts are rendered with the policy tokenizer's own chat template (`apply_chat_template`, generation
prompt added), so a Qwen, a Llama or the embedded model each get their format. A model without a template
needs one from the job (`model.chat_template`: the template, or the path of a .jinja file).
"""

from pathlib import Path

from rlsys.config import EMBEDDED_MODEL, ModelConfig, RolloutConfig
from rlsys.errors import ConfigError
from rlsys.tools import ToolFormat, tool_turn_text
from rlsys.types import Prompt


def resolve_model(model: ModelConfig) -> str:
    """The model directory a job loads: its `model.path`, or the embedded model (built on first use)."""
    if model.path != EMBEDDED_MODEL:
        return str(Path(model.path).expanduser().resolve())
    from rlsys.bootstrap import RECIPES, ensure_embedded_model

    return str(ensure_embedded_model(seed=model.seed, recipe=RECIPES[model.recipe]))


def job_chat_template(model: ModelConfig) -> str | None:
    """The job's own template text (`model.chat_template`, read from its file when it names one)."""
    template = model.chat_template
    if template is not None and template.endswith(".jinja"):
        path = Path(template).expanduser()
        if not path.is_file():
            raise ConfigError(f"model.chat_template: no template file at '{template}'")
        return path.read_text()
    return template


def load_tokenizer(model_dir: str, template: str | None):
    """The policy's tokenizer, with a chat template to render prompts (raises ConfigError when there is
    none: neither the model's nor the job's)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if template is not None:
        tokenizer.chat_template = template
    if not tokenizer.chat_template:
        raise ConfigError(
            f"the model at {model_dir} has no chat template to render prompts with: give one as "
            f"model.chat_template (the template, or the path of a .jinja file)"
        )
    return tokenizer


def prompt_token_ids(tokenizer, prompt: Prompt) -> list[int]:
    """A prompt rendered with the tokenizer's chat template (generation prompt added), as token ids."""
    text = tokenizer.apply_chat_template(list(prompt.messages), tokenize=False, add_generation_prompt=True)
    return tokenizer.encode(text, add_special_tokens=False)


def check_tool_calls(tokenizer, rollout: RolloutConfig) -> None:
    """With `rollout.max_tool_calls`, the policy's tokenizer must know the tool-call tokens as special tokens
    and its chat template must render a tool turn (raises ConfigError naming the key and the fix)."""
    if not rollout.max_tool_calls:
        return
    try:
        ToolFormat.of(tokenizer, rollout.tool_call_start, rollout.tool_call_end)
    except ValueError as err:
        key = "tool_call_start" if repr(rollout.tool_call_start) in str(err) else "tool_call_end"
        raise ConfigError(
            f"rollout.{key}: {err}: set the tokens the model calls tools with, use a model trained with tool "
            f"calls (the embedded one: model.recipe=tools), or set rollout.max_tool_calls=0"
        ) from None
    from jinja2 import TemplateError

    try:
        tool_turn_text(tokenizer.apply_chat_template, "0")
    except (TemplateError, ValueError) as err:  # a template that refuses a tool role, or drops the content
        raise ConfigError(
            f"rollout.max_tool_calls: the model's chat template cannot render a tool turn ({err}): give one "
            f"that can as model.chat_template, or set rollout.max_tool_calls=0"
        ) from None
