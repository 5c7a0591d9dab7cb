# Trusted harness, run inside the bubblewrap sandbox (py-sandbox.ts) as: python3 -I -S -B harness.py
# It reads one job (code, entrypoint, test inputs, limits) as JSON from fd 0, sets its own limits,
# then runs the student's code and reports one JSON object per line on fd 3.
#
# Nothing here is a security boundary: the student's code runs in this same process and can tamper
# with anything, including this file's functions and fd 3. That is fine because the job holds no
# secret (expected values never enter the sandbox), and the host only takes raw observations from
# these frames (a return value, captured output, an error text), judges them itself, and enforces
# time with its own watchdog. The sandbox (namespaces, read-only filesystem, rlimits) is the boundary.
#
# Only C modules are imported: `json` and `signal` pull in re, enum and functools, which doubled the
# interpreter's start-up CPU time (7 ms -> 15 ms per submission on the reference machine).
import _json
import _signal
import builtins
import io
import os
import resource
import sys
import time
import types

RESULTS_FD = 3
MAX_OUTPUT = 1_000_000
MAX_VALUE = 1_000_000
MAX_DEPTH = 200


class _ScanContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = {}

    @staticmethod
    def parse_constant(name):
        raise ValueError("unexpected JSON constant " + name)


def _no_default(value):
    raise TypeError("not JSON serializable")


_scan = _json.make_scanner(_ScanContext())
_encode = _json.make_encoder(None, _no_default, _json.encode_basestring_ascii, None, ":", ",", False, False, False)


def json_loads(text):
    value, end = _scan(text, 0)
    if end != len(text):
        raise ValueError("trailing data in the job")
    return value


def json_dumps(value):
    return "".join(_encode(value, 0))


def emit(frame):
    data = (json_dumps(frame) + "\n").encode("ascii")
    while data:
        written = os.write(RESULTS_FD, data)
        data = data[written:]


class TimeLimit(BaseException):
    pass


class OutputLimit(Exception):
    pass


class Capture(io.TextIOBase):
    """sys.stdout for the student: bounded, in memory."""

    def __init__(self):
        self.parts = []
        self.size = 0
        self.truncated = False

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not " + type(text).__name__)
        if self.truncated:
            raise OutputLimit("Output limit exceeded")
        room = MAX_OUTPUT - self.size
        if len(text) > room:
            self.parts.append(text[:room])
            self.size = MAX_OUTPUT
            self.truncated = True
            raise OutputLimit("Output limit exceeded")
        self.parts.append(text)
        self.size += len(text)
        return len(text)

    def text(self):
        return "".join(self.parts)


class Sink(io.TextIOBase):
    """sys.stderr: nothing written to it is judged."""

    def writable(self):
        return True

    def write(self, text):
        return len(text)


def to_json(value, depth=0):
    """The JSON form of a return value, built from exact builtin types only (no student methods run)."""
    if depth > MAX_DEPTH:
        raise ValueError("the return value is nested too deeply")
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value
    if t is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("the return value contains NaN or Infinity, which JSON cannot hold")
        return value
    if t is list:
        return [to_json(v, depth + 1) for v in list.__iter__(value)]
    if t is tuple:
        return [to_json(v, depth + 1) for v in tuple.__iter__(value)]
    if t is dict:
        out = {}
        for k, v in dict.items(value):
            if type(k) is not str:
                raise ValueError("the return value has a dict key that is not a string: " + type(k).__name__)
            out[k] = to_json(v, depth + 1)
        return out
    # Subclasses of the builtins are read through the builtin type, never through their own methods.
    if isinstance(value, bool):
        return bool(int.__index__(value))
    if isinstance(value, int):
        return int.__index__(value)
    if isinstance(value, float):
        return to_json(float.__float__(value), depth + 1)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, list):
        return to_json(list(list.__iter__(value)), depth + 1)
    if isinstance(value, tuple):
        return to_json(list(tuple.__iter__(value)), depth + 1)
    if isinstance(value, dict):
        return to_json(dict(dict.items(value)), depth + 1)
    raise ValueError("the return value is a " + t.__name__ + ", which has no JSON form")


def describe(error):
    name = type(error).__name__
    try:
        text = str(error)
    except BaseException:
        text = ""
    line = None
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<submission>":
            line = tb.tb_lineno
        tb = tb.tb_next
    if isinstance(error, SyntaxError) and error.lineno:
        line = error.lineno
        text = error.msg
    message = name + (": " + text[:2000] if text else "")
    return message + (" (line %d)" % line if line else "")


def on_alarm(signum, frame):
    raise TimeLimit()


def set_limits(job):
    mb = 1024 * 1024
    # RLIMIT_DATA counts the heap and private mappings (not the interpreter's shared libraries), so
    # it is close to "the memory the program may use"; the interpreter itself needs about 8 MB.
    data = (job["memoryMb"] + job.get("headroomMb", 24)) * mb
    resource.setrlimit(resource.RLIMIT_DATA, (data, data))
    # Shared mappings (mmap.mmap(-1, n) is MAP_SHARED) and memfds are not DATA: also cap the address
    # space, with room for the interpreter's code and libraries (about 15 MB mapped at start).
    space = data + 64 * mb
    resource.setrlimit(resource.RLIMIT_AS, (space, space))
    cpu = job["cpuSeconds"]
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_NPROC, (1, 1))  # no fork, no threads
    resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))
    resource.setrlimit(resource.RLIMIT_FSIZE, (mb, mb))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def read_job():
    chunks = []
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return json_loads(b"".join(chunks).decode("utf-8"))


def _exit(code=None):
    raise SystemExit(code)


def main():
    # `python -S` skips site, which is what normally defines exit() and quit().
    builtins.exit = builtins.quit = _exit
    job = read_job()
    emit({"t": "hello"})
    set_limits(job)
    _signal.signal(_signal.SIGALRM, on_alarm)
    time_s = job["timeMs"] / 1000.0
    tests = job["tests"]
    start = job["startIndex"]
    sys.stdout = Capture()
    sys.stderr = Sink()
    sys.stdin = io.StringIO("")

    try:
        code = compile(job["code"], "<submission>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as e:
        emit({"t": "fatal", "message": describe(e)})
        return

    module = None
    # Loaded once, before any test runs: what the program does at load time (and so an error
    # message from loading) cannot depend on a test's input, hidden ones included.
    if any(t["kind"] == "call" for t in tests[start:]):
        emit({"t": "phase", "phase": "load"})
        module = types.ModuleType("submission")
        module.__file__ = "<submission>"
        sys.modules["submission"] = module
        sys.stdout = Capture()
        try:
            _signal.setitimer(_signal.ITIMER_REAL, time_s)
            exec(code, module.__dict__)
            _signal.setitimer(_signal.ITIMER_REAL, 0)
        except TimeLimit:
            emit({"t": "fatal", "message": "Loading the program took longer than the time limit (%d ms)." % job["timeMs"]})
            return
        except MemoryError:
            _signal.setitimer(_signal.ITIMER_REAL, 0)
            emit({"t": "fatal", "message": "The program ran out of memory while loading (limit %d MB)." % job["memoryMb"]})
            return
        except BaseException as e:
            _signal.setitimer(_signal.ITIMER_REAL, 0)
            emit({"t": "fatal", "message": "The program raised an exception while loading: " + describe(e)})
            return
        # No function to call: the program cannot be graded at all (an error, not N failed tests).
        name = job["entrypoint"] or ""
        if name not in module.__dict__:
            emit({"t": "fatal", "message": "entrypoint `%s` is not defined" % name[:100]})
            return
        if not callable(module.__dict__[name]):
            kind = type(module.__dict__[name]).__name__
            emit({"t": "fatal", "message": "entrypoint `%s` is not a function (it is %s %s)"
                  % (name[:100], "an" if kind[:1] in "aeiou" else "a", kind)})
            return

    for index in range(start, len(tests)):
        test = tests[index]
        emit({"t": "phase", "phase": index})
        capture = Capture()
        sys.stdout = capture
        began = time.perf_counter()
        frame = None
        try:
            _signal.setitimer(_signal.ITIMER_REAL, time_s)
            if test["kind"] == "call":
                fn = module.__dict__.get(job["entrypoint"] or "")
                if not callable(fn):
                    raise NameError("the program defines no top-level function named %s" % job["entrypoint"])
                result = fn(*test["args"])
                _signal.setitimer(_signal.ITIMER_REAL, 0)
                text = json_dumps(to_json(result))
                if len(text) > MAX_VALUE:
                    frame = {"kind": "raised", "error": "The return value is too large."}
                else:
                    frame = {"kind": "value", "json": text}
            else:
                sys.stdin = io.StringIO(test["stdin"])
                try:
                    exec(code, {"__name__": "__main__", "__builtins__": builtins, "__file__": "<submission>"})
                except SystemExit:
                    pass
                _signal.setitimer(_signal.ITIMER_REAL, 0)
                frame = {"kind": "stdout", "stdout": capture.text(), "truncated": capture.truncated}
        except TimeLimit:
            frame = {"kind": "timeout"}
        except MemoryError:
            _signal.setitimer(_signal.ITIMER_REAL, 0)
            frame = {"kind": "memory"}
        except OutputLimit:
            _signal.setitimer(_signal.ITIMER_REAL, 0)
            frame = {"kind": "stdout", "stdout": capture.text(), "truncated": True}
        except BaseException as e:
            _signal.setitimer(_signal.ITIMER_REAL, 0)
            if capture.truncated:
                frame = {"kind": "stdout", "stdout": capture.text(), "truncated": True}
            else:
                frame = {"kind": "raised", "error": describe(e)}
        frame["durationMs"] = (time.perf_counter() - began) * 1000.0
        frame["t"] = "outcome"
        frame["index"] = index
        emit(frame)
    emit({"t": "done"})


main()
