"""The reward functions a job can name in `verifier.rewards`: the registry of built-ins, your own given as
`module:function`, the name each is logged under, and which gold answers each can use.

The registry: the verifiers' built-ins (`math`, `code`, `format`: `verifiers.rewards`) and the quickstart's
people (`hidden_preference`, `rlsys.rlhf.preference`). `gold_problem` says why a gold answer is unusable by a
reward (a code reward given a bare number), so bad rows are refused when the data is loaded.
"""

import ast
from collections.abc import Callable

from rlsys.errors import RlsysError
from rlsys.killable import import_target
from rlsys.rlhf.preference import hidden_preference_reward
from verifiers.rewards import REWARDS, RewardFn, parse_code_gold

REWARD_FUNCTIONS: dict[str, RewardFn] = {**REWARDS, "hidden_preference": hidden_preference_reward}


class RewardNotFound(RlsysError):
    """A reward name that is neither in the registry nor an importable `module:function`."""


def component_name(key: str) -> str:
    """The name a reward is logged under: its registry name, or the function's own name for
    `module:function` (which must import and be callable)."""
    if key in REWARD_FUNCTIONS:
        return key
    module, sep, attribute = key.partition(":")
    if not sep or not module or not attribute:
        raise RewardNotFound(
            f"unknown reward '{key}': choose from {sorted(REWARD_FUNCTIONS)} or give your own as "
            f"'module:function'"
        )
    try:
        function = import_target(key)
    except (ImportError, AttributeError) as err:
        raise RewardNotFound(
            f"reward '{key}' cannot be imported ({type(err).__name__}: {err}): the module must be "
            f"importable from the directory the job runs in"
        ) from None
    if not callable(function):
        raise RewardNotFound(f"reward '{key}' is not a function")
    return attribute


def _code_gold_problem(gold: str) -> str | None:
    tests, _ = parse_code_gold(gold)
    try:
        tree = ast.parse(tests)
    except SyntaxError as err:
        return f"its tests are not valid Python ({err.msg}, line {err.lineno})"
    if not any(isinstance(node, ast.Assert) for node in ast.walk(tree)):
        return "its tests hold no assert statement, so any program would pass them"
    return None


def _integer_gold_problem(gold: str) -> str | None:
    return None if gold.strip().lstrip("-").isdigit() else "the hidden preference needs an integer answer"


_GOLD_CHECKS: dict[str, Callable[[str], str | None]] = {
    "code": _code_gold_problem,
    "hidden_preference": _integer_gold_problem,
}


def gold_problem(key: str, gold: str) -> str | None:
    """Why reward `key` cannot score against `gold` (None: it can). A function of your own may define
    `check_gold(gold) -> str | None` to refuse golds it cannot use."""
    if not gold.strip():
        return "its gold answer is empty"
    if key in REWARD_FUNCTIONS:
        check = _GOLD_CHECKS.get(key)
    else:
        check = getattr(import_target(key), "check_gold", None)  # optional by contract
    return check(gold) if check is not None else None
