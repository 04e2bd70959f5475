"""The trusted side of a sandboxed run, executed inside the sandbox (see ``sandbox.py`` for the threat model).

Launched by ``sandbox.py`` as ``python -I -S -c <bootstrap>`` inside bubblewrap, which has already built the
namespaces, the file-system view and the seccomp filter. Standard library only; the module is imported as a
top-level module by the bootstrap, so it has no package-relative imports. Process layout::

    server (pid 1 of the sandbox; never reads a run's data)  --fd 3: repr() lines-->  sandbox.py in the host
       | forks, per run
       v
    harness (trusted; runs the tests)  --fd 3-->
       | requests / replies (length-prefixed frames of the tagged binary codec below)
       v
    worker (untrusted program; rlimits, its own cgroup, no fd 3, never sees the tests)

A sandbox serves runs one after another (``serve``): starting bubblewrap and an interpreter costs far more
than a run of a small program, and a tool-calling rollout makes many. For each run the server forks a fresh
harness, which reads the run's config and job from stdin. The harness forks the worker *before* reading the
tests (so the worker's memory never holds them), sends it the program, and then runs the tests itself. When
the tests are done it closes the worker's input, and the program must then exit as it would on its own (its
non-daemon threads and exit handlers run) before the deadline: one still running then is a timeout, whatever
its tests said. Once the harness has ended, the server kills every other process of the sandbox and empties
the working directory before it reports the sandbox ready: a run finds the sandbox as the first run did.

Every name the tests use that the tests do not define (``candidate``, helper functions of the program) is a
``Remote`` handle: calling it sends the arguments to the worker, and the result comes back decoded into plain
``None``/``bool``/``int``/``float``/``complex``/``str``/``bytes``/``list``/``tuple``/``set``/``frozenset``/
``dict`` values built by the harness, so a comparison in a test runs harness code only. Objects that do not
encode stay in the worker and come back as handles that refuse comparison and truth testing.
"""

import _signal
import atexit
import builtins
import ctypes
import marshal
import os
import resource
import select
import sys
import time

# Imports are kept to modules that load in well under a millisecond: every sandbox starts an interpreter,
# and ``ast``, ``json``, ``signal`` or ``enum`` would each add several milliseconds to its start.
RESULT_FD = 3
_SIGKILL, _SIGXCPU = 9, 24  # Linux numbers
_MAX_TEXT = 300  # characters kept of an exception message
_MAX_DEPTH = 200  # nesting of a decoded value

_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS = 1, 38


class CodecError(ValueError):
    """A value that cannot cross the sandbox boundary, or a malformed message."""


class WorkerGone(BaseException):
    """The worker died or broke the protocol (not an Exception, so tests cannot catch it)."""


class Deadline(BaseException):
    """The run's wall-clock time is over."""


class RemoteError(Exception):
    """An exception raised in the worker whose type is not re-created in the harness."""


# ---------------------------------------------------------------------------------------------------------
# Codec: a small tagged binary format. The decoder builds nothing but plain built-in values (and handles via
# ``resolve``), checks every length against the data, and bounds nesting; it is the trust boundary.

_CONTAINERS = {list: b"l", tuple: b"t", set: b"S", frozenset: b"z"}
_BUILDERS = {b"l": list, b"t": tuple, b"S": set, b"z": frozenset}


def encode(value: object, refs: "dict[int, object] | None" = None) -> bytes:
    """Encode a plain value; with ``refs``, other objects are stored there and sent as handles."""
    out: list[bytes] = []
    _encode(value, refs, out)
    return b"".join(out)


def _size(n: int) -> bytes:
    return n.to_bytes(4, "big")


def _encode(value: object, refs: "dict[int, object] | None", out: list[bytes]) -> None:
    if value is None or value is True or value is False:
        out.append(b"N" if value is None else b"T" if value else b"F")
    elif isinstance(value, int):
        number = int.__index__(value)
        data = number.to_bytes((number.bit_length() + 8) // 8, "big", signed=True)
        out += (b"i", _size(len(data)), data)
    elif isinstance(value, float):
        data = float.hex(float.__float__(value)).encode()
        out += (b"f", _size(len(data)), data)
    elif isinstance(value, complex):
        out.append(b"c")
        _encode(float(complex.__complex__(value).real), refs, out)
        _encode(float(complex.__complex__(value).imag), refs, out)
    elif isinstance(value, str):
        data = str.encode(value, "utf-8", "surrogatepass")
        out += (b"s", _size(len(data)), data)
    elif isinstance(value, (bytes, bytearray)):
        out += (b"b", _size(len(value)), bytes(value))
    elif isinstance(value, dict):
        out += (b"d", _size(dict.__len__(value)))
        for key, item in dict.items(value):
            _encode(key, refs, out)
            _encode(item, refs, out)
    elif isinstance(value, Remote):
        out += (b"r", _size(value.ref), b"\x01")
    else:
        for cls, tag in _CONTAINERS.items():
            if isinstance(value, cls):
                items = list(cls.__iter__(value))
                out += (tag, _size(len(items)))
                for item in items:
                    _encode(item, refs, out)
                return
        if refs is None:
            raise CodecError(f"cannot send a {type(value).__name__} into the sandbox")
        refs[len(refs)] = value
        out += (b"r", _size(len(refs) - 1), b"\x01" if callable(value) else b"\x00")


def decode(data: bytes, resolve) -> object:
    """Rebuild a value from ``encode`` output; ``resolve(ref, is_callable)`` turns a handle into an object."""
    value, end = _decode(data, 0, resolve, 0)
    if end != len(data):
        raise CodecError("trailing bytes")
    return value


def _take(data: bytes, pos: int, size: int) -> tuple[bytes, int]:
    chunk = data[pos : pos + size]
    if len(chunk) != size:
        raise CodecError("truncated value")
    return chunk, pos + size


def _decode(data: bytes, pos: int, resolve, depth: int) -> tuple[object, int]:
    if depth > _MAX_DEPTH:
        raise CodecError("value nested too deeply")
    tag, pos = _take(data, pos, 1)
    if tag in (b"N", b"T", b"F"):
        return (None, True, False)[b"NTF".index(tag)], pos
    if tag == b"c":
        real, pos = _decode(data, pos, resolve, depth + 1)
        imag, pos = _decode(data, pos, resolve, depth + 1)
        if type(real) is not float or type(imag) is not float:
            raise CodecError("malformed complex")
        return complex(real, imag), pos
    raw, pos = _take(data, pos, 4)
    size = int.from_bytes(raw, "big")
    if tag == b"r":
        flag, pos = _take(data, pos, 1)
        return resolve(size, flag == b"\x01"), pos
    if tag in (b"i", b"f", b"s", b"b"):
        chunk, pos = _take(data, pos, size)
        try:
            if tag == b"i":
                return int.from_bytes(chunk, "big", signed=True), pos
            if tag == b"f":
                return float.fromhex(chunk.decode("ascii")), pos
            return (chunk.decode("utf-8", "surrogatepass") if tag == b"s" else chunk), pos
        except ValueError as exc:  # also UnicodeDecodeError
            raise CodecError(f"malformed value: {exc}") from None
    if tag not in _BUILDERS and tag != b"d":
        raise CodecError(f"unknown tag {tag!r}")
    if size > len(data) - pos:  # every item takes at least one byte: no huge allocation from a forged count
        raise CodecError("truncated container")
    items = []
    for _ in range(size * 2 if tag == b"d" else size):
        item, pos = _decode(data, pos, resolve, depth + 1)
        items.append(item)
    try:
        if tag == b"d":
            return dict(zip(items[::2], items[1::2], strict=True)), pos
        return _BUILDERS[tag](items), pos
    except TypeError as exc:  # an unhashable key or member
        raise CodecError(str(exc)) from None


def frame(payload: bytes, limit: int) -> bytes:
    """A 4-byte big-endian length, then ``payload`` (at most ``limit`` bytes)."""
    if len(payload) > limit:
        raise CodecError(f"message of {len(payload)} bytes exceeds the limit of {limit}")
    return _size(len(payload)) + payload


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_frame(fd: int, limit: int, deadline: float | None = None) -> bytes:
    """Read one framed payload; ``EOFError`` at end of stream, ``Deadline`` when time runs out."""
    size = int.from_bytes(_read_exact(fd, 4, deadline), "big")
    if size > limit:
        raise CodecError(f"message of {size} bytes exceeds the limit of {limit}")
    return _read_exact(fd, size, deadline)


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    chunks, remaining = [], size
    while remaining:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not _readable_within(fd, left):
                raise Deadline()
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("stream closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------------------------------------------------
# Worker: the untrusted program's process.


def _raised(exc: BaseException) -> tuple:
    return ("raised", type(exc).__name__, str(exc)[:_MAX_TEXT])


def worker_main(cfg: dict, requests: int, replies: int) -> None:
    """Confine this process, serve the harness's requests until its end of input, then exit. Never returns."""
    try:
        _confine_worker(cfg, keep=(requests, replies))
    except BaseException as exc:  # not confined: the program must not run
        os.write(2, f"sandbox worker setup failed: {exc!r}\n".encode())
        os._exit(70)
    _serve(cfg, requests, replies)
    _exit_as_a_program()


def _exit_as_a_program() -> None:
    """Do what the interpreter does at exit that a program can see: wait for its non-daemon threads, run its
    exit handlers, flush its output; a program that never finishes them never exits. The rest of a normal
    exit, tearing down every module, costs tens of milliseconds per run on a loaded host: skipped."""
    threading = sys.modules.get("threading")
    if threading is not None:
        threading._shutdown()  # what the interpreter itself calls at exit
    atexit._run_exitfuncs()
    sys.stdout.flush()  # should the program have broken them, the exception ends the process just the same
    sys.stderr.flush()
    os._exit(0)


def _confine_worker(cfg: dict, keep: tuple[int, ...]) -> None:
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    start = 3
    for fd in sorted(keep):
        os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, os.sysconf("SC_OPEN_MAX"))
    if cfg["cgroup_fd"] is not None:
        os.write(cfg["cgroup_fd"], b"0")  # join the run's cgroup before anything of the program runs
        os.close(cfg["cgroup_fd"])
    os.setsid()
    limits = {
        resource.RLIMIT_CPU: (cfg["cpu_s"], cfg["cpu_s"] + 1),
        resource.RLIMIT_AS: (cfg["memory_bytes"],) * 2,
        # Counted per uid within the sandbox's user namespace (or its own uid as root), where the server and
        # the harness are the two other processes.
        resource.RLIMIT_NPROC: (cfg["max_processes"] + 2,) * 2,
        resource.RLIMIT_FSIZE: (cfg["max_file_bytes"],) * 2,
        resource.RLIMIT_NOFILE: (cfg["max_open_files"],) * 2,
        resource.RLIMIT_CORE: (0, 0),
        resource.RLIMIT_MEMLOCK: (0, 0),
        resource.RLIMIT_MSGQUEUE: (0, 0),
    }
    for which, value in limits.items():
        resource.setrlimit(which, value)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    libc.prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
    sys.path[:] = [p for p in sys.path if p != cfg["harness_dir"]] + list(cfg["import_paths"])
    os.environ.clear()
    os.environ.update(cfg["env"])


def _readable_within(fd: int, seconds: float | None) -> bool:
    """Whether `fd` has data, its end, or (a pidfd) its process's exit within `seconds` (None: however long
    it takes): every wait inside the sandbox. Should the verifier die meanwhile (it alone holds the read end
    of the events pipe, and a pipe whose readers are gone reports an error to its writer), the sandbox ends
    at once, whether or not the parent-death signal reached it (a uid change clears that signal until it is
    set again)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.register(RESULT_FD, 0)  # no events asked: only the error and hang-up conditions, always reported
    events = poller.poll(None if seconds is None else seconds * 1000)
    if any(ready == RESULT_FD for ready, _ in events):
        os._exit(1)  # in the server, pid 1, its exit ends every process of the sandbox
    return bool(events)


def _serve(cfg: dict, requests: int, replies: int) -> None:
    """Requests are ``(id, op, *fields)``; replies ``(id, "value", v)``, ``(id, "missing")`` or
    ``(id, "raised", exception type name, message)``."""
    limit = cfg["max_value_bytes"]
    program = {"__name__": "__main__", "__builtins__": builtins}
    refs: dict[int, object] = {}

    def resolve(ref: int, _is_callable: bool) -> object:
        if ref not in refs:
            raise CodecError(f"unknown handle {ref}")
        return refs[ref]

    while True:
        try:
            request = decode(read_frame(requests, limit), resolve)
        except EOFError:
            return
        try:
            reply = _handle(request, program, refs)
        except BaseException as exc:  # the program's own failure, including sys.exit, is a reply
            reply = _raised(exc)
        try:
            data = frame(encode((request[0], *reply), refs), limit)
        except (CodecError, RecursionError, MemoryError) as exc:
            data = frame(encode((request[0], *_raised(exc))), limit)
        sys.stdout.flush()
        sys.stderr.flush()
        write_all(replies, data)


def _handle(request: tuple, program: dict, refs: dict) -> tuple:
    op, *fields = request[1:]
    if op == "load":
        exec(compile(fields[0], "<program>", "exec"), program)
        return ("value", None)
    if op == "get":
        return ("value", program[fields[0]]) if fields[0] in program else ("missing",)
    target = fields[0]
    if op == "call":
        return ("value", target(*fields[1], **fields[2]))
    if op == "getattr":
        return ("value", getattr(target, fields[1]))
    if op == "list":
        return ("value", list(target))
    raise CodecError(f"unknown request {op!r}")


# ---------------------------------------------------------------------------------------------------------
# Harness: runs the tests, talking to the worker through Remote handles.


class Channel:
    """The harness's end of the request/reply pipes, with the run's deadline."""

    def __init__(self, requests: int, replies: int, worker_pid: int, deadline: float, cfg: dict):
        self.requests, self.replies, self.worker_pid = requests, replies, worker_pid
        self.deadline, self.limit, self.cpu_s, self.next_id = (
            deadline,
            cfg["max_value_bytes"],
            cfg["cpu_s"],
            0,
        )
        self.gone: str | None = None

    def ask(self, op: str, *fields: object) -> tuple:
        """Send one request and return the reply after its id; ``WorkerGone`` / ``Deadline`` end the run."""
        if self.gone is not None:
            raise WorkerGone(self.gone)
        self.next_id += 1
        try:
            payload = encode((self.next_id, op, *fields))
        except CodecError as exc:
            raise TypeError(str(exc)) from None
        try:
            write_all(self.requests, frame(payload, self.limit))
            data = read_frame(self.replies, self.limit, self.deadline)
            reply = decode(data, lambda ref, is_callable: Remote(self, ref, is_callable))
        except (BrokenPipeError, EOFError):
            self.gone = self._death_reason()
            raise WorkerGone(self.gone) from None
        except (CodecError, RecursionError) as exc:
            self.gone = f"protocol violation: {exc}"
            raise WorkerGone(self.gone) from None
        if type(reply) is not tuple or len(reply) < 2 or reply[0] != self.next_id:
            self.gone = "protocol violation: malformed reply"
            raise WorkerGone(self.gone)
        return reply[1:]

    def value(self, op: str, *fields: object) -> object:
        """The value of a request; an exception in the program is raised here."""
        return self.result(self.ask(op, *fields))

    @staticmethod
    def result(reply: tuple) -> object:
        """The value in a reply, or the program's exception raised."""
        if reply[0] == "value" and len(reply) == 2:
            return reply[1]
        if reply[0] == "raised" and len(reply) == 3:
            raise _exception(reply[1], reply[2])
        raise RemoteError(f"unexpected reply {str(reply[0])[:_MAX_TEXT]}")

    def _death_reason(self) -> str:
        try:
            _, status = os.waitpid(self.worker_pid, 0)
        except ChildProcessError:
            return "the program's process ended"
        return _ended(status, self.cpu_s)


def _ended(status: int, cpu_s: int) -> str:
    """How the program's process ended, from its wait status; ``cpu-limit`` when its CPU time ran out."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if sig == _SIGXCPU or (sig == _SIGKILL and usage.ru_utime + usage.ru_stime >= cpu_s):
            return "cpu-limit"
        return f"the program's process was killed by signal {sig}"
    return f"the program's process exited with code {os.WEXITSTATUS(status)}"


def _exception(name: object, message: object) -> Exception:
    """Re-create a built-in exception raised in the worker, so tests that expect an exception still work."""
    cls = getattr(builtins, name, None) if type(name) is str else None
    text = str(message)[:_MAX_TEXT]
    excluded = (StopIteration, StopAsyncIteration, Warning)
    if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(cls, excluded):
        try:
            return cls(text)
        except TypeError:
            pass
    return RemoteError(f"{str(name)[:_MAX_TEXT]}: {text}")


class Remote:
    """A handle on an object in the worker: call it, read attributes, iterate; never compare it."""

    def __init__(self, channel: Channel, ref: int, is_callable: bool):
        self._channel, self.ref, self._callable = channel, ref, is_callable

    def __call__(self, *args, **kwargs):
        return self._channel.value("call", self, args, kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._channel.value("getattr", self, name)

    def __iter__(self):
        return iter(self._channel.value("list", self))

    def _refuse(self, *_args):
        raise TypeError("objects that stay in the sandbox cannot be compared or tested for truth")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __len__ = _refuse
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<sandboxed object #{self.ref}>"


class ProgramNamespace(dict):
    """Globals of the tests: a name they do not define is looked up in the program (the worker)."""

    def __init__(self, channel: Channel):
        super().__init__(__name__="__tests__", __builtins__=builtins)
        self._channel = channel

    def __missing__(self, name: str) -> object:
        if hasattr(builtins, name):
            raise KeyError(name)  # CPython then falls back to the builtins
        reply = self._channel.ask("get", name)
        if reply[0] == "missing":
            raise KeyError(name)
        return self._channel.result(reply)


def run_harness(channel: Channel, job: dict, report) -> tuple[str, str]:
    """Load the program in the worker, run the prepared tests, ``report`` each result; return the status and
    its detail as the tests see them (the program's exit is judged after).

    ``job["tests"]`` is the tests' source as rewritten by ``testplan.prepare``: each test reports itself
    through ``__record__(index, exception or None)``.
    """
    entry_point, units = job["entry_point"], job["units"]
    reply = channel.ask("load", job["code"])
    if reply[0] != "value":
        return "error", f"program failed to load: {str(reply[1:])[:_MAX_TEXT]}"
    failed = 0

    def record(unit: int, exc: Exception | None) -> None:
        nonlocal failed
        failed += exc is not None
        detail = "" if exc is None else f"{type(exc).__name__}: {str(exc)[:_MAX_TEXT]}"
        report({"t": "test", "i": unit, "passed": exc is None, "detail": detail})

    namespace = ProgramNamespace(channel)
    namespace["__record__"] = record
    if entry_point is not None:
        reply = channel.ask("get", entry_point)
        if reply[0] == "missing":
            return "fail", f"the program does not define {entry_point!r}"
        candidate = channel.result(reply)
    exec(compile(job["tests"], "<tests>", "exec"), namespace)
    if entry_point is not None:
        namespace["check"](candidate)
    if job["whole_module"]:
        record(0, None)
    return "pass" if failed == 0 else "fail", f"{len(units) - failed}/{len(units)} tests passed"


# ---------------------------------------------------------------------------------------------------------
# Process setup.


def serve() -> None:
    """Entry point inside the sandbox, as its pid 1: serve runs until the host closes stdin.

    Stdin holds a setup frame (``{"uid": as root, the sandbox's own uid, else None; "workdir": the tmpfs}``),
    then for each run a config frame and a job frame (marshal), read by that run's harness. Each run ends
    with a ``ready`` event on fd 3 carrying the harness's wait status and resource use, and ``reusable``:
    False when the sandbox could not be brought back to its first state, or the harness died before it had
    read its job (what is left on stdin is no longer framed); the server then exits and the host starts
    another sandbox.
    """
    setup = marshal.loads(read_frame(0, 1 << 16))
    libc = ctypes.CDLL(None, use_errno=True)
    if setup["uid"] is not None:  # as root: no capabilities left after this, and a uid no other sandbox has
        os.setgroups([])
        os.setresgid(setup["uid"], setup["uid"], setup["uid"])
        os.setresuid(setup["uid"], setup["uid"], setup["uid"])
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    # Set here because a uid change clears the one bubblewrap set: the sandbox ends with the verifier.
    libc.prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
    # As pid 1 the server receives only signals it handles: Python's SIGINT handler would let the program
    # interrupt it.
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
    while True:  # each harness is forked ahead of its run and waits on stdin for the run's frames
        consumed_r, consumed_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(consumed_r)
            _run_once(consumed_w)
        os.close(consumed_w)
        handle = os.pidfd_open(pid)
        _readable_within(handle, None)  # the harness's end; or the host's, which ends the sandbox at once
        os.close(handle)
        _, status, usage = os.wait4(pid, 0)
        framed = os.read(consumed_r, 1) == b"1"
        os.close(consumed_r)
        reusable = framed and _clear(setup["workdir"])
        ready = {"t": "ready", "wait_status": status, "reusable": reusable}
        ready.update(cpu_s=usage.ru_utime + usage.ru_stime, max_rss_kb=usage.ru_maxrss)
        write_all(RESULT_FD, (repr(ready) + "\n").encode())
        if not reusable:
            os._exit(0)  # as pid 1, its exit ends whatever is left


def _clear(workdir: str) -> bool:
    """Kill every process of the sandbox but this one, reap them, and empty ``workdir``; False when that
    cannot be done within a second (deep or unremovable trees, a process that will not die)."""
    deadline = time.monotonic() + 1.0
    while True:
        try:
            os.kill(-1, _SIGKILL)  # from pid 1: every other process of the pid namespace
        except ProcessLookupError:
            pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            break  # every process of the namespace descends from pid 1: none is left
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    try:
        _empty(workdir, deadline)
    except (OSError, RecursionError, TimeoutError):
        return False
    return True


def _empty(directory: str, deadline: float) -> None:
    """Delete what ``directory`` holds, without following links; directories are made writable first (the
    program may have locked them, and its files are this process's own)."""
    for entry in os.scandir(directory):
        if time.monotonic() > deadline:
            raise TimeoutError(directory)
        if entry.is_dir(follow_symlinks=False):
            os.chmod(entry.path, 0o700)
            _empty(entry.path, deadline)
            os.rmdir(entry.path)
        else:
            os.unlink(entry.path)


def _run_once(consumed: int) -> None:
    """One run, in a harness process forked from the server: config and job (marshal frames) on stdin, the
    run's time starting when the config has come; events on fd 3; ``consumed`` gets a byte once the job is
    read. Never returns.

    Events are ``repr`` lines of dicts of strings, ints and bools, read back with ``ast.literal_eval``.
    """
    try:
        cfg = marshal.loads(read_frame(0, 1 << 20))
    except EOFError:
        os._exit(0)  # the host closed the sandbox
    started = time.monotonic()
    deadline = started + cfg["timeout_s"]
    results = os.fdopen(RESULT_FD, "w", buffering=1)

    def report(event: dict) -> None:
        results.write(repr(event) + "\n")

    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(RESULT_FD)
        worker_main(cfg, req_r, rep_w)
    os.close(req_r)
    os.close(rep_w)
    if cfg["cgroup_fd"] is not None:
        os.close(cfg["cgroup_fd"])
    job = marshal.loads(read_frame(0, cfg["max_job_bytes"]))
    os.write(consumed, b"1")
    os.close(consumed)
    report({"t": "plan", "tests": job["units"]})
    channel = Channel(req_w, rep_r, pid, deadline, cfg)
    try:
        status, detail = run_harness(channel, job, report)
    except Deadline:
        status, detail = "timeout", f"time limit of {cfg['timeout_s']} s exceeded"
    except WorkerGone as exc:
        status = "timeout" if str(exc) == "cpu-limit" else "fail"
        detail = "cpu time limit exceeded" if status == "timeout" else str(exc)
    except Exception as exc:  # the tests themselves stopped early: the remaining tests did not run
        status, detail = "fail", f"tests stopped: {type(exc).__name__}: {exc}"[:600]
    if channel.gone is None and status != "timeout":
        os.close(req_w)
        ended = _await_exit(pid, deadline, cfg["cpu_s"])
        if ended is not None:
            status, detail = "timeout", f"{ended} (the tests said: {status}, {detail})"
    report({"t": "end", "status": status, "detail": detail})
    results.close()
    os._exit(0)  # skip interpreter teardown; the server then ends whatever of the run is left


def _await_exit(pid: int, deadline: float, cpu_s: int) -> str | None:
    """Wait until the deadline for the program's process to end; None when it did, else why it counts as a
    timeout. How it ended otherwise (exit code, signal) plays no part in the verdict."""
    handle = os.pidfd_open(pid)
    left = deadline - time.monotonic()
    if left <= 0 or not _readable_within(handle, left):
        return "the program did not exit within the time limit"
    _, status = os.waitpid(pid, 0)
    if _ended(status, cpu_s) == "cpu-limit":
        return "cpu time limit exceeded while the program was exiting"
    return None


if __name__ == "__main__":
    serve()
