"""Tool calls of rollouts, run by the verifier pool's actors (`rlsys.tools.ToolRunner` over Ray).

A rollout engine that meets a tool call sends the snippet to a verifier actor, which runs it in its code
sandbox (`rlsys.rewards.Verifier.run_tool`) in a concurrency group of its own: up to `verifier.tool_threads`
calls at once per actor, beside its scoring, which stays one batch at a time. Tools therefore run where the
sandbox is installed and sized (the verifier nodes), under the verifier's sandbox policy, and scale with the
verifier pool; the engines' nodes (GPUs) need neither bubblewrap nor spare CPUs.
"""

from concurrent.futures import Future

from ray.exceptions import RayActorError

from rlsys.errors import PoolError
from rlsys.tools import ToolLimits
from rlsys.types import ToolCall

TOOL_GROUP = "tools"  # the verifier actors' concurrency group for tool calls


class VerifierTools:
    """Sends tool calls to verifier actors, round robin; a call whose actor died goes to the next one, up to
    `attempts` times. Built by the driver, shipped to each rollout engine with its work."""

    def __init__(self, actors: list, limits: ToolLimits, attempts: int = 3) -> None:
        self.actors, self.limits, self.attempts = list(actors), limits, attempts
        self.sent = 0

    def submit(self, code: str) -> Future[ToolCall]:
        answer: Future[ToolCall] = Future()
        self._send(code, answer, attempt=0)
        return answer

    def _send(self, code: str, answer: Future[ToolCall], attempt: int) -> None:
        actor = self.actors[self.sent % len(self.actors)]
        self.sent += 1
        call = actor.run_tool.options(concurrency_group=TOOL_GROUP).remote(code, self.limits).future()

        def settle(done: Future) -> None:
            try:
                answer.set_result(done.result())
            except RayActorError as err:
                if attempt + 1 < self.attempts:
                    self._send(code, answer, attempt + 1)
                else:
                    answer.set_exception(
                        PoolError(f"verifier pool: a tool call failed {self.attempts} times: {err}")
                    )
            except Exception as err:  # the sandbox cannot run on that node: the rollout fails with the reason
                answer.set_exception(PoolError(f"verifier pool: a tool call could not run: {err}"))

        call.add_done_callback(settle)
