"""The public API: fast path, worker pool, batch form, timeouts as verdicts."""

import pickle

import pytest

from verifiers.math import MathVerdict, verify, verify_batch
from verifiers.math.pool import WorkerPool

pytestmark = pytest.mark.timeout(120)

GSM_RESPONSE = "Tom has 3 boxes of 7.\n3 * 7 = 21\n21 * 2 = 42\n#### 42"


def test_fast_path_decides_plain_numbers_in_process() -> None:
    verdict = verify("42", GSM_RESPONSE)
    assert verdict.correct and verdict.status == "correct" and verdict.extracted == "42"
    assert verdict.detail == "fast path"
    assert verify("21", GSM_RESPONSE).status == "incorrect"  # 21 is an intermediate result


@pytest.mark.parametrize(
    ("gold", "response", "status"),
    [
        ("1000.99", "1000,99", "correct"),  # a decimal comma against a single number
        ("1,22", "1.22", "correct"),
        ("0,111", "0.111", "correct"),
        ("1,000", "1.000", "incorrect"),  # a thousands separator stays one
        ("\\frac{\\sqrt{3}}{2}", "0.866", "correct"),
        ("\\frac{2}{3}", "0.667", "correct"),
        ("\\frac{2}{3}", "0.666", "incorrect"),
        ("2/3", "0.67", "incorrect"),  # two significant digits: not graded as a rounding
    ],
)
def test_number_conventions(gold: str, response: str, status: str) -> None:
    assert verify(gold, response).status == status


def test_no_answer() -> None:
    verdict = verify("42", "I am not sure.")
    assert verdict.status == "no_answer" and not verdict.correct


def test_verdict_is_small_and_picklable() -> None:
    verdict = verify("\\frac{1}{2}", "The answer is $0.5$.")
    assert verdict.status == "correct" and verdict.answer_parsed is not None
    assert pickle.loads(pickle.dumps(verdict)) == verdict


def test_verdict_rejects_unknown_status_and_rule() -> None:
    with pytest.raises(ValueError):
        MathVerdict("maybe")
    with pytest.raises(ValueError):
        MathVerdict("correct", rule="vibes")


def test_verdict_names_the_rule_that_decided() -> None:
    pairs = [
        ("42", GSM_RESPONSE),
        ("\\frac{\\sqrt{3}}{2}", "so $\\boxed{0.866}$"),
        ("x^2-1", "\\boxed{(x-1)(x+1)}"),
        ("B", "I'd pick B, since A and C overcount."),
        ("09:15", "9:15 a.m."),
        ("\\text{Monday}", "\\boxed{\\text{monday}}"),
        ("7", "#### 8"),
        ("3", "no idea"),
    ]
    verdicts = verify_batch(pairs, workers=2)
    assert [v.rule for v in verdicts] == [
        "exact",
        "numeric_tolerance",
        "symbolic",
        "choice",
        "clock",
        "text",
        "exact",
        "",
    ]
    assert [v.correct for v in verdicts] == [True] * 6 + [False] * 2


def test_batch_keeps_order_and_mixes_paths() -> None:
    pairs = [
        ("42", GSM_RESPONSE),
        ("\\frac{\\sqrt{3}}{2}", "so $\\boxed{\\frac{\\sqrt3}{2}}$"),
        ("x^2-1", "\\boxed{(x-1)(x+1)}"),
        ("7", "#### 8"),
        ("\\{1, 2\\}", "The answer is $\\{2, 1\\}$."),
        ("3", "no idea"),
    ]
    statuses = [v.status for v in verify_batch(pairs, workers=2)]
    assert statuses == ["correct", "correct", "correct", "incorrect", "correct", "no_answer"]


@pytest.mark.parametrize(
    "response",
    [
        "The answer is $10**10**10$.",
        "\\boxed{10^{10^{10^{10}}}}",
        "\\boxed{" + "{" * 3000 + "1" + "}" * 3000 + "}",
        "\\boxed{" + "x+" * 100_000 + "1}",
        "1 " * 1_000_000 + "\nThe answer is $\\sqrt{2}$",
    ],
)
def test_adversarial_input_yields_a_verdict(response: str) -> None:
    verdict = verify("1", response, timeout_s=1.0)
    assert verdict.status in ("timeout", "incorrect", "error")
    assert not verdict.correct


def test_worker_is_replaced_after_a_timeout() -> None:
    pool = WorkerPool(1)
    try:
        assert pool.run(("2", "\\sqrt{4}"), 30.0).reply[1].status == "correct"
        first = pool.pids()
        assert pool.run(("1", "10^{10^{10^{10}}}"), 0.5).kind == "timeout"
        assert pool.pids() == []  # the stuck worker was killed, not returned to the pool
        assert pool.run(("2", "\\sqrt{4}"), 30.0).reply[1].status == "correct"
        assert pool.started == 2 and pool.pids() != first
    finally:
        pool.close()


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError):
        verify("1", "1", timeout_s=0)
