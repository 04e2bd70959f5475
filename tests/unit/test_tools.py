"""Tool calls in rollouts (`rlsys.tools`): the tool turn, the multi-turn engine loop on a scripted engine,
and tools that hang, crash, flood their output or attack the host, run in the real sandbox."""

import sys
import threading
import time
from concurrent.futures import Future

import pytest

from rlsys.bootstrap.families import FAMILIES
from rlsys.bootstrap.tokenizer import train_tokenizer
from rlsys.errors import PoolError
from rlsys.tools import (
    TOOL_CALL_END,
    TOOL_CALL_START,
    SandboxTools,
    ToolFormat,
    ToolLimits,
    Turn,
    run_turns,
    tool_output,
    tool_turn_text,
    turn_seed,
)
from rlsys.types import ToolCall
from verifiers.code import SandboxConfig
from verifiers.code.isolation import probe

SANDBOX = SandboxConfig(allow_missing=("cgroup",))
NO_SANDBOX = probe(sys.executable).refusal(SANDBOX.allow_missing)


@pytest.fixture(scope="module")
def tokenizer():
    text = ["What is 12 times 34?", "print(12 * 34)", "408", "#### 408"] * 20
    return FAMILIES["tools"].train_tokenizer(text, 300)


@pytest.fixture(scope="module")
def fmt(tokenizer):
    return ToolFormat.of(tokenizer)


def test_tool_output_joins_output_and_error_and_marks_a_cut():
    assert tool_output("408\n", "", "", 100) == "408"
    assert tool_output("1\n", "", "NameError: name 'y' is not defined", 100) == (
        "1\nNameError: name 'y' is not defined"
    )
    cut = tool_output("x" * 50, "", "", 10)
    assert cut.startswith("x" * 10) and cut.endswith("[output truncated]") and "x" * 11 not in cut


def test_the_tool_turn_is_what_the_chat_template_renders_between_two_assistant_turns(tokenizer):
    assert tool_turn_text(tokenizer.apply_chat_template, "408") == (
        "<|im_end|>\n<|im_start|>tool\n408<|im_end|>\n<|im_start|>assistant\n"
    )


def test_a_tokenizer_without_the_tool_tokens_is_refused():
    plain = train_tokenizer(["print(1)"] * 5, 270)
    with pytest.raises(ValueError, match=r"no special token '<\|tool_call\|>'"):
        ToolFormat.of(plain)


def test_the_snippet_is_what_follows_the_opening_token(tokenizer, fmt):
    ids = tokenizer.encode(f"I will compute.{TOOL_CALL_START}print(12 * 34){TOOL_CALL_END}")
    assert ids[-1] == fmt.end_id
    assert fmt.snippet(ids) == "print(12 * 34)"


class ScriptedEngine:
    """A `TurnEngine` whose requests produce scripted turns: `script(key, prompt ids)` gives a request's
    generated ids; a request finishes after `delay` engine steps (or `delay(key)`). Records every step and
    request."""

    def __init__(self, script, delay=2, step_s: float = 0.0) -> None:
        self.script, self.delay, self.step_s = script, delay, step_s
        self.running: dict[str, list] = {}
        self.requests: list[tuple[str, list[int], int, int | None]] = []
        self.steps = 0

    def add(self, key, token_ids, max_tokens, seed):
        self.requests.append((key, list(token_ids), max_tokens, seed))
        ids = self.script(key, token_ids)[:max_tokens]
        delay = self.delay(key) if callable(self.delay) else self.delay
        self.running[key] = [ids, delay, len(ids) == max_tokens]

    def step(self):
        self.steps += 1
        time.sleep(self.step_s)
        done = []
        for key, state in list(self.running.items()):
            state[1] -= 1
            if state[1] <= 0:
                del self.running[key]
                ids, cut = state[0], state[2]
                done.append(
                    Turn(
                        key,
                        tuple(ids),
                        tuple(-0.1 * (i + 1) for i in range(len(ids))),
                        "",
                        "length" if cut else "stop",
                    )
                )
        return done

    def busy(self):
        return bool(self.running)


class SlowTools:
    """A `ToolRunner` answering `print(a * b)` snippets after `seconds`, on threads; counts engine steps taken
    while each call was out."""

    def __init__(self, engine: ScriptedEngine, seconds: float = 0.05) -> None:
        self.engine, self.seconds, self.steps_while_out = engine, seconds, []

    def submit(self, code):
        answer: Future = Future()

        def run():
            before = self.engine.steps
            time.sleep(self.seconds)
            self.steps_while_out.append(self.engine.steps - before)
            a, b = code.removeprefix("print(").removesuffix(")").split(" * ")
            answer.set_result(ToolCall(code, str(int(a) * int(b)), False, self.seconds))

        threading.Thread(target=run).start()
        return answer


def _calls_then_answers(tokenizer, fmt):
    """Turn 0 of every response calls the tool; the turn after a tool turn answers."""
    call = tokenizer.encode(f"{TOOL_CALL_START}print(12 * 34){TOOL_CALL_END}")
    answer = tokenizer.encode("#### 408") + [tokenizer.eos_token_id]

    def script(key, prompt_ids):
        return answer if key.endswith("-1") else call

    return script, call, answer


def test_a_trajectory_is_the_engine_ids_and_the_tool_turn_between_them(tokenizer, fmt):
    script, call, answer = _calls_then_answers(tokenizer, fmt)
    engine = ScriptedEngine(script)
    tools = SlowTools(engine)
    prompts = [[5, 6, 7], [8, 9]]
    groups = run_turns(
        engine, tools, prompts, [11, None], n=2, max_new_tokens=100, max_tool_calls=2,
        tool_format=fmt, tool_deadline_s=10,
    )  # fmt: skip
    tool_ids = fmt.tool_turn_ids("408")
    for prompt, group in zip(prompts, groups, strict=True):
        assert len(group) == 2
        for t in group:
            assert t.prompt_ids == prompt
            assert t.token_ids == call + tool_ids + answer  # exactly the engine's ids, tool turn between
            assert t.loss_mask == [1] * len(call) + [0] * len(tool_ids) + [1] * len(answer)
            assert t.logprobs[len(call) : len(call) + len(tool_ids)] == [0.0] * len(tool_ids)
            assert t.logprobs[: len(call)] == pytest.approx([-0.1 * (i + 1) for i in range(len(call))])
            assert [c.output for c in t.calls] == ["408"] and t.finish_reason == "stop"
    # A continuation is the prompt, everything so far, with the remaining budget and a seed of its own.
    continued = [r for r in engine.requests if r[0] == "0-1-1"][0]
    assert continued[1] == prompts[0] + call + tool_ids
    assert continued[2] == 100 - len(call) - len(tool_ids)
    assert continued[3] == turn_seed(11, 1, 1) != turn_seed(11, 1, 0)
    assert [r[3] for r in engine.requests if r[0].startswith("1-")] == [None] * 4


def test_the_engine_keeps_generating_while_a_tool_runs(tokenizer, fmt):
    call = tokenizer.encode(f"{TOOL_CALL_START}print(2 * 3){TOOL_CALL_END}")
    long_answer = tokenizer.encode("#### 6") + [tokenizer.eos_token_id]

    def script(key, prompt_ids):
        return call if key == "0-0-0" else long_answer

    # Response 0 calls at once; the others answer without a call but take many engine steps to do it.
    engine = ScriptedEngine(script, delay=lambda key: 1 if key.startswith("0-") else 60, step_s=0.005)
    tools = SlowTools(engine, seconds=0.1)
    run_turns(
        engine, tools, [[1], [2], [3]], [0, 1, 2], n=1, max_new_tokens=50, max_tool_calls=1,
        tool_format=fmt, tool_deadline_s=10,
    )  # fmt: skip
    assert tools.steps_while_out[0] >= 5  # the other responses kept the engine stepping meanwhile


def test_a_call_beyond_the_limit_ends_the_response(tokenizer, fmt):
    call = tokenizer.encode(f"{TOOL_CALL_START}print(1 * 2){TOOL_CALL_END}")
    engine = ScriptedEngine(lambda key, ids: call)
    [[t]] = run_turns(
        engine, SlowTools(engine, 0.0), [[1]], [0], n=1, max_new_tokens=200, max_tool_calls=2,
        tool_format=fmt, tool_deadline_s=10,
    )  # fmt: skip
    assert len(t.calls) == 2 and t.finish_reason == "tool_limit"
    assert sum(t.loss_mask) == 3 * len(call)


def test_the_budget_covers_tool_output(tokenizer, fmt):
    call = tokenizer.encode(f"{TOOL_CALL_START}print(1 * 2){TOOL_CALL_END}")
    engine = ScriptedEngine(lambda key, ids: call)
    budget = len(call) + 2  # the tool turn does not fit
    [[t]] = run_turns(
        engine, SlowTools(engine, 0.0), [[1]], [0], n=1, max_new_tokens=budget, max_tool_calls=3,
        tool_format=fmt, tool_deadline_s=10,
    )  # fmt: skip
    assert len(t.token_ids) == budget and t.finish_reason == "length" and t.text == ""


def test_a_tool_that_never_answers_fails_the_rollout(tokenizer, fmt):
    call = tokenizer.encode(f"{TOOL_CALL_START}print(1 * 2){TOOL_CALL_END}")
    engine = ScriptedEngine(lambda key, ids: call, delay=1)

    class Lost:
        def submit(self, code):
            return Future()  # never settled

    with pytest.raises(PoolError, match="no answer within 0.2 s"):
        run_turns(
            engine, Lost(), [[1]], [0], n=1, max_new_tokens=50, max_tool_calls=1,
            tool_format=fmt, tool_deadline_s=0.2,
        )  # fmt: skip


LIMITS = ToolLimits(timeout_s=2.0, memory_mb=128, output_chars=200)
HOSTILE = {
    "hangs": ("while True:\n    pass", "time limit"),
    "sleeps": ("import time\ntime.sleep(60)", "time limit"),
    "crashes": ("import ctypes\nctypes.string_at(0)", ""),
    "raises": ("print(1)\nraise ValueError('boom')", "ValueError: boom"),
    "floods": ("print('x' * 10_000_000)", "[output truncated]"),
    "forks": ("import os\nwhile True:\n    os.fork()", ""),
    "reads the host": ("print(open('/etc/shadow').read())", "FileNotFoundError"),
    "calls out": ("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)", "OSError"),
    "allocates": ("x = bytearray(4 << 30)", "MemoryError"),
}


@pytest.mark.skipif(bool(NO_SANDBOX), reason=f"no sandbox here: {NO_SANDBOX}")
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_tool_call_is_an_error_the_policy_reads(name):
    code, expected = HOSTILE[name]
    runner = SandboxTools(LIMITS, SANDBOX, threads=1)
    try:
        call = runner.submit(code).result(timeout=60)
    finally:
        runner.close()
    assert call.error or name == "floods", call
    assert expected in call.output and len(call.output) <= LIMITS.output_chars + len(" [output truncated]")
    assert call.seconds < 30


@pytest.mark.skipif(bool(NO_SANDBOX), reason=f"no sandbox here: {NO_SANDBOX}")
def test_responses_survive_hostile_calls_and_read_the_errors(tokenizer, fmt):
    """Four responses call four hostile snippets in the real sandbox; each reads its error and answers."""
    snippets = ["while True:\n    pass", "raise SystemExit(3)", "print('y' * 10**7)", "import os\nos.fork()"]
    calls = [tokenizer.encode(f"{TOOL_CALL_START}{s}{TOOL_CALL_END}") for s in snippets]
    answer = tokenizer.encode("#### 0") + [tokenizer.eos_token_id]
    engine = ScriptedEngine(lambda key, ids: answer if key.endswith("-1") else calls[int(key.split("-")[0])])
    runner = SandboxTools(LIMITS, SANDBOX, threads=4)
    try:
        groups = run_turns(
            engine, runner, [[1]] * 4, [0, 1, 2, 3], n=1, max_new_tokens=400, max_tool_calls=1,
            tool_format=fmt, tool_deadline_s=60,
        )  # fmt: skip
    finally:
        runner.close()
    outputs = [group[0].calls[0].output for group in groups]
    assert "time limit" in outputs[0] and "SystemExit: 3" in outputs[1]
    assert outputs[2].endswith("[output truncated]")
    assert [group[0].finish_reason for group in groups] == ["stop"] * 4
    assert all(group[0].token_ids[-len(answer) :] == answer for group in groups)


def _unprivileged_python() -> list[str] | None:
    """A command running the system's Python as `nobody`, when this test runs as root on a host that has
    one with the seccomp bindings (the project's venv under /root is not readable by other users)."""
    import os
    import shutil
    import subprocess

    setpriv, python = shutil.which("setpriv"), "/usr/bin/python3"
    if os.getuid() != 0 or setpriv is None or not os.path.exists(python):
        return None
    command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", python]
    probe_seccomp = subprocess.run([*command, "-c", "import seccomp"], capture_output=True, timeout=60)
    return command if probe_seccomp.returncode == 0 else None


UNPRIVILEGED = _unprivileged_python()


@pytest.mark.skipif(UNPRIVILEGED is None, reason="needs root, setpriv and the system's python3-seccomp")
def test_a_tool_call_runs_for_a_user_without_root():
    """As on a cluster node where the verifier runs as an ordinary user: bubblewrap makes a user namespace."""
    import subprocess
    from pathlib import Path

    script = (
        "from rlsys.tools import ToolLimits, run_tool\n"
        "from verifiers.code import SandboxConfig\n"
        "call = run_tool('import os\\nprint(3817 * 46, os.getuid())', ToolLimits(5.0, 128, 100),"
        " SandboxConfig(allow_missing=('cgroup',)))\n"
        "print(repr(call.output), call.error)\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [*UNPRIVILEGED, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(root), "HOME": "/tmp", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "'175582 1000' False"  # uid 1000 inside its own user namespace
