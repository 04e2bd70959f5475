"""The isolation probe: what this host offers, a refusal naming the reason, weaker modes named in verdicts.

CI sets ``RLSYS_REQUIRE_SANDBOX``: ``1`` makes missing namespaces or seccomp a failure here instead of a skip
of the sandbox's tests; ``full`` requires the per-run cgroup too.
"""

import os
import subprocess
import sys

import pytest

from verifiers.code import IsolationUnavailable, SandboxConfig, run_tests
from verifiers.code import sandbox as sandbox_module
from verifiers.code.cgroup import find_parent
from verifiers.code.isolation import SYSTEM_PYTHON, Host, probe
from verifiers.code.seccomp_filter import DENIED

ADD = "def add(a, b):\n    return a + b\n"
REQUIRED = {"1": ("namespaces", "seccomp"), "full": ("namespaces", "seccomp", "cgroup")}


def test_sandbox_is_available_where_required():
    host = probe(sys.executable)
    wanted = os.environ.get("RLSYS_REQUIRE_SANDBOX", "")
    if wanted not in ("", *REQUIRED):
        pytest.fail(f"RLSYS_REQUIRE_SANDBOX must be one of {sorted(REQUIRED)}, not {wanted!r}")
    missing = {m: r for m, r in host.missing.items() if m in REQUIRED.get(wanted, ())}
    assert not missing, f"RLSYS_REQUIRE_SANDBOX={wanted} but the sandbox probe found: {missing}"
    if not wanted and ("namespaces" in host.missing or "seccomp" in host.missing):
        pytest.skip(f"no sandbox here: {host.missing}")


def fake_host(missing: dict[str, str]) -> Host:
    real = probe(sys.executable)
    return Host(real.bwrap, real.as_root, real.python, real.read_only, real.seccomp_bpf, None, missing)


def test_a_missing_mechanism_refuses_unless_allowed(monkeypatch):
    if probe(sys.executable).refusal(("cgroup",)):
        pytest.skip("needs a working sandbox")
    monkeypatch.setattr(sandbox_module, "probe", lambda *_: fake_host({"cgroup": "no cgroup for this test"}))
    with pytest.raises(IsolationUnavailable, match="cgroup: no cgroup for this test"):
        run_tests(ADD, "assert add(1, 1) == 2", 5)
    verdict = run_tests(ADD, "assert add(1, 1) == 2", 5, config=SandboxConfig(allow_missing=("cgroup",)))
    assert verdict.passed
    assert "+seccomp+NO-CGROUP(no cgroup for this test)+rlimits" in verdict.isolation


def test_namespaces_cannot_be_waived(monkeypatch):
    host = fake_host({"namespaces": "bwrap is broken for this test"})
    monkeypatch.setattr(sandbox_module, "probe", lambda *_: host)
    config = SandboxConfig(allow_missing=("seccomp", "cgroup"))
    with pytest.raises(IsolationUnavailable, match="namespaces: bwrap is broken"):
        run_tests(ADD, "assert add(1, 1) == 2", 5, config=config)


def test_probe_names_what_each_mechanism_lacks():
    host = probe(sys.executable)
    assert set(host.missing) <= {"namespaces", "seccomp", "cgroup"}
    assert all(reason for reason in host.missing.values())
    assert ("NO-CGROUP(" in host.label()) == ("cgroup" in host.missing)


@pytest.mark.skipif(not os.path.exists(SYSTEM_PYTHON), reason=f"no {SYSTEM_PYTHON}")
def test_seccomp_filter_has_a_rule_for_every_listed_call():
    script = "import sys; sys.path.insert(0, sys.argv[1]); import seccomp_filter as f; "
    script += "f.build().export_pfc(sys.stdout)"
    code_dir = os.path.dirname(sandbox_module.__file__)
    run = subprocess.run([SYSTEM_PYTHON, "-I", "-c", script, code_dir], capture_output=True, text=True)
    if run.returncode != 0:
        pytest.skip(f"libseccomp's Python bindings are not installed: {run.stderr.strip()[-200:]}")
    listed = [name for names in DENIED.values() for name in names]
    assert [name for name in listed if f'syscall "{name}"' not in run.stdout] == []
    assert "action ALLOW;" in run.stdout and "action ERRNO(1);" in run.stdout


def test_cgroup_parent_needs_the_controllers(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    (tmp_path / "cgroup.procs").write_text("")
    parent, reason = find_parent(str(tmp_path))
    if "no cgroup v2 file system" in reason:
        pytest.skip(reason)
    assert parent is None and "memory controller" in reason
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    parent, reason = find_parent(str(tmp_path))
    assert (parent, reason) == (str(tmp_path), "")
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
