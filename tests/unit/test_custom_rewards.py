"""Your own rewards: `module:function` in `verifier.rewards`, the row's columns reaching it, per-row routing,
failures as verdicts (retried sample by sample, with a hard time limit), the loop's error-rate stop, and
chat templates from the model or the job."""

import sys
import textwrap
from pathlib import Path

import pytest
from fakes import FakeLearnerPool, FakeRolloutPool, InMemoryTracker, ThreadedScorePool

from rlsys.checkpoint import CheckpointStore
from rlsys.config import VerifierConfig, load_job
from rlsys.errors import ConfigError, RewardError
from rlsys.loop import RLLoop
from rlsys.models import load_tokenizer, prompt_token_ids
from rlsys.protocols import Pools
from rlsys.reward_registry import gold_problem
from rlsys.rewards import Verifier
from rlsys.types import Prompt

MODULE = '''
import time

from verifiers.rewards import Score


def brevity(responses, golds, timeout_s, *, prompts, difficulty=None, **columns):
    """Shorter is better, scaled by the row's difficulty column; a response saying 'boom' breaks it."""
    if any("boom" in r for r in responses):
        raise ValueError("cannot score boom")
    weights = difficulty or [1.0] * len(responses)
    return [w / (1 + len(r)) for r, w in zip(responses, weights)]


def judged(responses, golds, timeout_s, **columns):
    return [Score(float(r == g), "judged", r == g) for r, g in zip(responses, golds)]


judged.check_gold = lambda gold: None if gold.isalpha() else "a judged gold is a word"


def slow(responses, golds, timeout_s, **columns):
    if any("sleep" in r for r in responses):
        time.sleep(60)
    return [1.0] * len(responses)


def too_many(responses, golds, timeout_s, **columns):
    return [1.0] * (len(responses) + 1)


def format(responses, golds, timeout_s, **columns):  # named like a built-in reward
    return [0.0] * len(responses)


def crashing(responses, golds, timeout_s, **columns):
    raise RuntimeError("always")
'''


@pytest.fixture
def my_rewards(tmp_path, monkeypatch):
    (tmp_path / "my_rewards.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield "my_rewards"
    sys.modules.pop("my_rewards", None)


def _prompt(i: int, gold: str = "4", **columns) -> Prompt:
    return Prompt(f"p{i}", ({"role": "user", "content": "2 + 2?"},), gold, columns=columns)


def test_a_function_of_your_own_scores_with_the_rows_columns(my_rewards):
    verifier = Verifier(VerifierConfig(rewards={f"{my_rewards}:brevity": 2.0, "math": 1.0}, timeout_s=5.0))
    prompts = [_prompt(0, difficulty=1.0), _prompt(1, difficulty=3.0)]
    first, second = verifier.score(prompts, ["#### 4", "#### 5"])
    assert first.components == {"brevity": pytest.approx(1 / 7), "math": 1.0}
    assert second.components["brevity"] == pytest.approx(3 / 7)
    assert first.score == pytest.approx(2 / 7 + 1.0) and first.correct is True and second.correct is False
    assert not first.errors and not second.errors


def test_a_failing_batch_is_retried_sample_by_sample_and_errors_are_verdicts(my_rewards):
    verifier = Verifier(VerifierConfig(rewards={f"{my_rewards}:brevity": 1.0}, timeout_s=5.0))
    rewards = verifier.score([_prompt(i) for i in range(3)], ["ok", "boom", "fine"])
    assert [r.errors != () for r in rewards] == [False, True, False]
    assert "brevity: error: ValueError: cannot score boom" in rewards[1].errors[0]
    assert rewards[1].verdict == "error" and rewards[1].score == 0.0
    assert rewards[0].score == pytest.approx(1 / 3) and rewards[2].score == pytest.approx(1 / 5)


@pytest.mark.parametrize(
    "function, detail",
    [("too_many", "returned 2 scores for 1 responses"), ("crashing", "RuntimeError: always")],
)
def test_a_function_that_misbehaves_fails_every_sample_it_could_not_score(my_rewards, function, detail):
    (first, second) = Verifier(
        VerifierConfig(rewards={f"{my_rewards}:{function}": 1.0}, timeout_s=5.0)
    ).score([_prompt(0), _prompt(1)], ["a", "b"])
    assert detail in first.errors[0] and second.errors


def test_a_function_that_hangs_is_cut_at_its_time_limit(my_rewards):
    verifier = Verifier(VerifierConfig(rewards={f"{my_rewards}:slow": 1.0}, timeout_s=0.5))
    quick, hung = verifier.score([_prompt(0), _prompt(1)], ["fine", "sleep"])
    assert quick.score == 1.0 and not quick.errors
    assert "timeout" in hung.errors[0] and hung.score == 0.0


def test_rows_route_to_their_own_reward(my_rewards):
    verifier = Verifier(VerifierConfig(rewards={"math": 1.0, f"{my_rewards}:judged": 1.0}, timeout_s=5.0))
    prompts = [
        Prompt("a", ({"role": "user", "content": "2 + 2?"},), "4", reward="math"),
        Prompt("b", ({"role": "user", "content": "say hi"},), "hi", reward="judged"),
        Prompt("c", ({"role": "user", "content": "?"},), "x", reward="nope"),
    ]
    math_row, judged_row, unknown = verifier.score(prompts, ["#### 4", "hi", "x"])
    assert set(math_row.components) == {"math"} and set(judged_row.components) == {"judged"}
    assert math_row.correct and judged_row.correct
    assert "asks for reward 'nope'" in unknown.errors[0]


def test_your_reward_may_refuse_golds_it_cannot_use(my_rewards):
    assert gold_problem(f"{my_rewards}:judged", "hello") is None
    assert gold_problem(f"{my_rewards}:judged", "42") == "a judged gold is a word"
    assert gold_problem(f"{my_rewards}:brevity", "42") is None  # no check_gold: every gold will do
    assert gold_problem(f"{my_rewards}:brevity", "  ") == "its gold answer is empty"


def test_your_reward_is_validated_and_named_at_the_door(my_rewards):
    config = load_job(None, [f"verifier.rewards={{'{my_rewards}:brevity': 0.5}}"])
    assert list(config.verifier.rewards) == [f"{my_rewards}:brevity"]
    for rewards, hint in [
        ("{'my_rewards:missing': 1.0}", "cannot be imported"),
        ("{'no_such_module:f': 1.0}", "cannot be imported"),
        ("{mth: 1.0}", "unknown reward 'mth'"),
        ("{math: .nan}", "verifier.rewards.math: Input should be a finite number"),
        ("{format: 1.0, 'my_rewards:format': 1.0}", "both logged as reward/format"),
    ]:
        with pytest.raises(ConfigError, match=hint):
            load_job(None, [f"verifier.rewards={rewards}"])


def test_the_loop_stops_a_step_whose_rewards_mostly_failed(my_rewards, tmp_path):
    config = load_job(
        Path(__file__).resolve().parents[2] / "jobs" / "quickstart.yaml",
        [
            "task.eval_size=4",
            "task.train_size=40",
            "train.prompts_per_step=4",
            "rollout.samples_per_prompt=2",
            "train.steps=2",
            f"train.output_dir={tmp_path}",
            f"verifier.rewards={{math: 1.0, '{my_rewards}:crashing': 0.0}}",
            "verifier.max_error_rate=0.5",
        ],
    )
    pools = Pools(FakeRolloutPool(), ThreadedScorePool(Verifier(config.verifier)), FakeLearnerPool())
    loop = RLLoop(config, pools, InMemoryTracker(), CheckpointStore(tmp_path, "job"))
    with pytest.raises(
        RewardError, match=r"step 1: reward scoring failed on 100% .* crashing: error: RuntimeError"
    ):
        loop.run()
    assert pools.learner.calls == []  # nothing was trained on the zeros


CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
INST = "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"


@pytest.fixture
def tokenizer_dir(tmp_path) -> Path:
    """A word-level tokenizer saved as a model directory would hold it, without a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<|im_start|>", "<|im_end|>", "[INST]", "[/INST]", "user", "assistant", "2", "+", "?"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def test_prompts_render_with_the_models_template_or_the_jobs(tokenizer_dir, tmp_path):
    prompt = Prompt("a", ({"role": "user", "content": "2 + 2 ?"},), "4")
    with pytest.raises(ConfigError, match="has no chat template .* model.chat_template"):
        load_tokenizer(str(tokenizer_dir), None)
    chatml = load_tokenizer(str(tokenizer_dir), CHATML)
    assert chatml.decode(prompt_token_ids(chatml, prompt)).split() == [
        "<|im_start|>",
        "user",
        "2",
        "+",
        "2",
        "?",
        "<|im_end|>",
        "<|im_start|>",
        "assistant",
    ]
    inst = load_tokenizer(str(tokenizer_dir), INST)
    assert inst.decode(prompt_token_ids(inst, prompt)).split() == ["[INST]", "2", "+", "2", "?", "[/INST]"]
    # A model directory with its own template needs none from the job.
    chatml.save_pretrained(tmp_path / "with-template")
    own = load_tokenizer(str(tmp_path / "with-template"), None)
    assert prompt_token_ids(own, prompt) == prompt_token_ids(chatml, prompt)
