"""What `rlsys run --dry-run` shows after the config, before any actor starts: the data as read (rows,
columns, how the keys were resolved), a few prompts rendered with the policy's chat template with their token
counts, and the prompts that leave too little of the model's context for an answer.

    rlsys run jobs/dataset_quickstart.yaml --dry-run
"""

import json
from itertools import islice
from pathlib import Path

from rlsys.bootstrap.build import embedded_model_dir
from rlsys.bootstrap.recipes import RECIPES
from rlsys.checkpoint import CheckpointStore
from rlsys.config import EMBEDDED_MODEL, JobConfig
from rlsys.data import load_task
from rlsys.models import check_tool_calls, job_chat_template, load_tokenizer, prompt_token_ids, resolve_model
from rlsys.rlhf.config import RMConfig
from rlsys.rlhf.data import load_pairs, load_rankings, split_heldout
from rlsys.sft.config import SFTConfig
from rlsys.sft.data import load_sft_data
from rlsys.sft.tokens import IGNORE_INDEX, encode_chat

_SHOWN_PROMPTS = 3
_MEASURED_PROMPTS = 1000  # training prompts whose length is checked against the model's context


def _embedded_missing(model) -> bool:
    """Whether the job's model is the embedded one and not built yet (data that needs its tokenizer waits)."""
    return (
        model.path == EMBEDDED_MODEL
        and not embedded_model_dir(seed=model.seed, recipe=RECIPES[model.recipe]).is_dir()
    )


def dry_run_report(config: JobConfig) -> list[str]:
    """What `rlsys run --dry-run` prints after the config: the data as read, and a few prompts rendered
    with the policy's chat template with their token counts (when the model is at hand)."""
    CheckpointStore(config.train.output_dir, config.name).check_writable()
    task = load_task(config.task, config.verifier)
    lines = list(task.report)
    model = config.model
    if _embedded_missing(model):
        return [
            *lines,
            "prompts not rendered: the embedded model is built on the first run (`rlsys bootstrap`)",
        ]
    model_path = resolve_model(model)
    tokenizer = load_tokenizer(model_path, job_chat_template(model))
    check_tool_calls(tokenizer, config.rollout)
    for prompt in islice(task.train, _SHOWN_PROMPTS):
        ids = prompt_token_ids(tokenizer, prompt)
        lines.append(f"prompt {prompt.id} ({len(ids)} tokens), gold {prompt.gold!r}:")
        lines.extend(f"  | {line}" for line in tokenizer.decode(ids).splitlines())
    context = _context_length(model_path)
    if context is None:
        return [*lines, "prompt lengths not checked: the model's config states no context length"]
    budget = context - config.rollout.max_new_tokens
    measured = [*islice(task.train, _MEASURED_PROMPTS), *next(iter(task.evals.values()))]
    too_long = [p.id for p in measured if len(prompt_token_ids(tokenizer, p)) > budget]
    lines.append(
        f"{len(too_long)} of {len(measured)} prompts checked leave fewer than rollout.max_new_tokens "
        f"({config.rollout.max_new_tokens}) of the model's {context}-token context"
        + (f": {too_long[:5]}" if too_long else "")
    )
    return lines


def _context_length(model_path: str) -> int | None:
    """The model's context in tokens, from whichever key its config uses (None: it states none)."""
    config = json.loads((Path(model_path) / "config.json").read_text())
    keys = ("max_position_embeddings", "n_positions", "seq_length", "max_sequence_length")
    return next((int(config[key]) for key in keys if key in config), None)


def rm_dry_run_report(config: RMConfig) -> list[str]:
    """What `rlsys train-rm --dry-run` shows after the config: a rankings file read and split (every
    problem in it named by line), or that rankings will be generated."""
    data = config.data
    if data.path is None:
        return [f"rankings: generated on the first run ({data.generate.prompts} prompts)"]
    rankings = (load_rankings if data.format == "ranking" else load_pairs)(data.path)
    train, heldout = split_heldout(rankings, data.heldout_share)
    return [f"rankings: {data.path}: {len(rankings)} ({len(train)} train, {len(heldout)} held out)"]


def sft_dry_run_report(config: SFTConfig) -> list[str]:
    """What `rlsys sft --dry-run` shows after the config: every row read, encoded and checked with the model's
    chat template, and two conversations as the learner sees them, the trained tokens between [[ and ]]."""
    CheckpointStore(config.train.output_dir, config.name).check_writable()
    if _embedded_missing(config.model):
        return ["conversations not checked: the embedded model (its tokenizer) is built on the first run"]
    tokenizer = load_tokenizer(resolve_model(config.model), job_chat_template(config.model))
    data = load_sft_data(config.data, tokenizer, config.seed)
    lines = list(data.report)
    for position in range(min(2, len(data.train))):
        example = encode_chat(tokenizer, data.train[position])
        lines.append(f"conversation {position} ({len(example)} tokens, {example.trained_tokens} trained):")
        lines.extend(f"  | {line}" for line in _marked(tokenizer, example).splitlines())
    return lines


def _marked(tokenizer, example) -> str:
    """The example's text with each run of trained tokens between [[ and ]]."""
    text, run, trained = "", [], False
    for token, label in [*zip(example.input_ids, example.labels, strict=True), (None, IGNORE_INDEX)]:
        if (label != IGNORE_INDEX) != trained:
            text += tokenizer.decode(run) + ("[[" if not trained else "]]")
            run, trained = [], not trained
        if token is not None:
            run.append(token)
    return text + tokenizer.decode(run)
