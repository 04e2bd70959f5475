"""SFT data at the door: layouts recognised, bad rows named by number with the fix, exit status 2."""

import json
import re
from pathlib import Path

import pytest

from rlsys.cli import main
from rlsys.errors import ConfigError
from rlsys.sft.config import load_sft_config
from rlsys.tasks.export import export_task

ROOT = Path(__file__).resolve().parents[2]
JOB = str(ROOT / "jobs" / "sft_quickstart.yaml")
GOOD = {
    "messages": [{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": "#### 5"}]
}


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the dry run checks that runs/ is writable


def _dry_run(tiny_model_dir, train: Path, *extra: str) -> int:
    return main(["sft", JOB, f"model.path={tiny_model_dir}", f"data.train={train}", *extra, "--dry-run"])


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([GOOD, {"messages": "hello"}], "rows 1, 3 (2 in all): the conversation is not a list"),
        ([GOOD, {"messages": [{"role": "user", "content": "hi"}]}], "no assistant turn to train on"),
        ([GOOD, {"messages": [{"content": "hi"}]}], "a message without a role"),
        ([{"text": "no conversation here"}], "set data.messages_key"),
        (
            [GOOD, {**GOOD, "messages": [GOOD["messages"][0], {"role": "assistant", "content": "9" * 400}]}],
            "longer than data.max_tokens",
        ),
    ],
)
def test_bad_sft_data_exits_2_naming_the_rows(tiny_model_dir, tmp_path, capsys, rows, message):
    train = _jsonl(tmp_path / "train.jsonl", rows * 2)
    assert _dry_run(tiny_model_dir, train, "data.eval=null", "data.eval_fraction=0.25") == 2
    assert message in capsys.readouterr().err


def test_held_out_rows_that_are_also_trained_on_exit_2(tiny_model_dir, tmp_path, capsys):
    files = export_task(tmp_path, layout="sft", fmt="jsonl", train_size=8, eval_size=4)
    train = _jsonl(
        tmp_path / "mixed.jsonl", [json.loads(line) for line in files["eval"].read_text().splitlines()]
    )
    assert _dry_run(tiny_model_dir, train, f"data.eval={files['eval']}") == 2
    assert "also held-out ones" in capsys.readouterr().err


def test_prompt_completion_columns_and_a_dry_run_showing_the_trained_tokens(tiny_model_dir, tmp_path, capsys):
    train = _jsonl(
        tmp_path / "pc.jsonl",
        [{"prompt": f"What is {i} + 1?", "completion": f"#### {i + 1}"} for i in range(8)],
    )
    assert _dry_run(tiny_model_dir, train, "data.eval=null", "data.eval_fraction=0.25") == 0
    out = capsys.readouterr().out
    assert "prompt from 'prompt' (recognised), completion from 'completion' (recognised)" in out
    assert re.search(r"\[\[#### \d+<\|im_end\|>\]\]", out)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        (["data.eval=null"], "data.eval"),
        (["learner.replicas=4", "train.examples_per_step=2"], "learner.replicas"),
        (["learner.lora={rank: 4}"], "learner.lora"),
    ],
)
def test_bad_sft_settings_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        load_sft_config(JOB, override)
