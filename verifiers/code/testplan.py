"""Split tests into individually reported tests, on the host, before they enter the sandbox.

Each top-level statement holding an ``assert`` (of ``check``'s body with an entry point, of the module
otherwise) becomes ``try: <stmt>; __record__(i, None) except Exception as e: __record__(i, e)``, so every
test runs and reports even when an earlier one fails. Done here rather than in the harness so that the
sandbox never imports ``ast`` (milliseconds per run), and cached because RL batches repeat tests.
"""

import ast
import functools
from dataclasses import dataclass

_MAX_NAME = 300


@dataclass(frozen=True)
class PreparedTests:
    source: str
    """The rewritten tests, compiled and run by the harness."""
    units: tuple[tuple[str, int], ...]
    """``(name, line)`` of each test: its source with whitespace collapsed, and its line in the tests."""
    whole_module: bool
    """No statement holds an ``assert``: the tests are one test that passes if they run to the end."""


@functools.lru_cache(maxsize=4096)
def prepare(tests: str, entry_point: str | None) -> PreparedTests:
    """Rewrite ``tests``; raises ``SyntaxError`` or ``ValueError`` when they are malformed."""
    tree = ast.parse(tests, "<tests>")
    body = tree.body
    if entry_point is not None:
        checks = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
        if not checks:
            raise ValueError("tests with an entry point must define check(candidate)")
        body = checks[-1].body
    units = []
    for index, stmt in enumerate(body):
        if any(isinstance(node, ast.Assert) for node in ast.walk(stmt)):
            text = ast.get_source_segment(tests, stmt) or ast.unparse(stmt)
            units.append((" ".join(text.split())[:_MAX_NAME], stmt.lineno))
            body[index] = _recorded(stmt, len(units) - 1)
    whole_module = not units
    if whole_module:
        units.append(("tests run to completion", 1))
    source = ast.unparse(ast.fix_missing_locations(tree))
    compile(source, "<tests>", "exec")  # fail here, not in the sandbox
    return PreparedTests(source, tuple(units), whole_module)


def _recorded(stmt: ast.stmt, unit: int) -> ast.stmt:
    def record(arg: ast.expr) -> ast.stmt:
        return ast.Expr(ast.Call(ast.Name("__record__", ast.Load()), [ast.Constant(unit), arg], []))

    handler = ast.ExceptHandler(
        ast.Name("Exception", ast.Load()), "__exc__", [record(ast.Name("__exc__", ast.Load()))]
    )
    return ast.Try([stmt, record(ast.Constant(None))], [handler], [], [])
