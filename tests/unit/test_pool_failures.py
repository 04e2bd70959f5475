"""What a user reads when an actor fails: one line, the library's own reason, the log's place."""

from actors.dispatch import actor_failure, cause_line

# What Ray's ActorDiedError says of an actor whose constructor raised (colours and traceback included).
INIT_FAILED = (
    "The actor died because of an error raised in its creation task, \x1b[36mray::RolloutEngine.__init__()"
    "\x1b[39m (pid=7904, ip=192.0.2.2, actor_id=a2df76, repr=<actors.rollout.RolloutEngine object>)\n"
    '  File "/venv/vllm/v1/attention/backends/cpu_attn.py", line 88, in __init__\n'
    "    raise ValueError(msg)\n"
    "ValueError: Unsupported CPU attention configuration: head size 8\n"
    "  (see the supported head sizes above)\n"
)
KILLED = (
    "The actor died unexpectedly before finishing this task.\n\tclass_name: Verifier\n\tactor_id: 3044c1\n"
    "\tpid: 7154\nThe actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR"
)


def test_the_reason_is_the_last_exception_line_of_the_cause():
    assert (
        cause_line(RuntimeError(INIT_FAILED))
        == "ValueError: Unsupported CPU attention configuration: head size 8"
    )
    assert cause_line(RuntimeError(KILLED)).startswith(
        "The actor is dead because its worker process has died"
    )
    assert cause_line(RuntimeError("")) == "RuntimeError"


def test_an_actor_failure_is_one_line_naming_pool_actor_reason_and_log():
    line = actor_failure("rollout", "engine 0", "to start", RuntimeError(INIT_FAILED))
    assert "\n" not in line
    assert line.startswith("rollout pool: engine 0 failed to start: ValueError: Unsupported CPU attention")
    assert line.endswith("worker-*-7904.err on 192.0.2.2)")
