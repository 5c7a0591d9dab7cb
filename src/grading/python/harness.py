# The in-box harness (py-sandbox.ts), run inside bubblewrap as: python3 -I -S -B harness.py MEMORY_MB
# It reads one request per line on fd 0 and answers one JSON line per request on fd 3:
#   {"op": "load", "n": NONCE, "code": ..., "entrypoint": ..., "module": bool}
#       -> {"t": "loaded", "n": NONCE} | {"t": "fatal", "n": NONCE, "message": ...}
#   {"op": "test", "n": NONCE, "kind": "call", "args": "<JSON text of the argument list>"}
#   {"op": "test", "n": NONCE, "kind": "io", "stdin": "..."}
#       -> {"t": "result", "n": NONCE, "kind": "value" | "stdout" | "raised" | "memory", ...}
#
# Nothing here is trusted once the student's code has run: it shares this process and can rewrite
# these functions, read this frame or write to fd 3. The design makes that pointless rather than
# impossible (the host, py-sandbox.ts, enforces it):
#   - the host sends a test's inputs only when that test runs, so nothing here ever holds another
#     test's inputs, and never holds an expected value;
#   - the host accepts one reply per request, tagged with that request's random nonce, so a frame
#     forged now cannot answer a later request, and it judges the raw value itself;
#   - the host owns time: it kills the box when a test outlives its limit, whatever is written here.
#
# Only C modules are imported: `json` and `signal` pull in re, enum and functools, which doubled the
# interpreter's start-up CPU time (7 ms -> 15 ms per submission on the reference machine).
import _json
import builtins
import io
import os
import resource
import sys
import types

REQUESTS_FD = 0
RESULTS_FD = 3
MAX_OUTPUT = 1_000_000
MAX_SHOWN_OUTPUT = 4_096
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
        raise ValueError("trailing data")
    return value


def json_dumps(value):
    return "".join(_encode(value, 0))


def emit(frame):
    data = (json_dumps(frame) + "\n").encode("ascii")
    while data:
        written = os.write(RESULTS_FD, data)
        data = data[written:]


_pending = b""


def read_request():
    """The next request line from the host, or None at end of input."""
    global _pending
    while b"\n" not in _pending:
        chunk = os.read(REQUESTS_FD, 1 << 16)
        if not chunk:
            return None
        _pending += chunk
    line, _pending = _pending.split(b"\n", 1)
    return json_loads(line.decode("utf-8"))


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


def set_limits(memory_mb):
    # A second layer under the box-wide rlimits the host set before bubblewrap started (those cover
    # every process of the box; these are tighter for this one). RLIMIT_DATA counts the heap and
    # private mappings (not the interpreter's shared libraries), so it is close to "the memory the
    # program may use"; the interpreter itself needs about 8 MB.
    mb = 1024 * 1024
    data = (memory_mb + 24) * mb
    resource.setrlimit(resource.RLIMIT_DATA, (data, data))
    resource.setrlimit(resource.RLIMIT_NPROC, (1, 1))  # no fork, no threads
    resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))
    resource.setrlimit(resource.RLIMIT_FSIZE, (mb, mb))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _exit(code=None):
    raise SystemExit(code)


def shown(capture):
    text = capture.text()
    return text[:MAX_SHOWN_OUTPUT], capture.size


def load(request):
    """Compiles the program, and for call tests runs it once as a module; the reply or an error text."""
    try:
        code = compile(request["code"], "<submission>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        return None, None, describe(e)
    if not request["module"]:
        return code, None, None
    module = types.ModuleType("submission")
    module.__file__ = "<submission>"
    sys.modules["submission"] = module
    sys.stdout = Capture()
    try:
        exec(code, module.__dict__)
    except MemoryError:
        return None, None, "The program ran out of memory while loading."
    except BaseException as e:
        return None, None, "The program raised an exception while loading: " + describe(e)
    # No function to call: the program cannot be graded at all (an error, not N failed tests).
    name = request["entrypoint"] or ""
    if name not in module.__dict__:
        return None, None, "entrypoint `%s` is not defined" % name[:100]
    entry = module.__dict__[name]
    if not callable(entry):
        kind = type(entry).__name__
        return None, None, "entrypoint `%s` is not a function (it is %s %s)" % (
            name[:100], "an" if kind[:1] in "aeiou" else "a", kind)
    return code, entry, None


def run_test(request, code, entry):
    capture = Capture()
    sys.stdout = capture
    try:
        if request["kind"] == "call":
            result = entry(*json_loads(request["args"]))
            text = json_dumps(to_json(result))
            if len(text) > MAX_VALUE:
                frame = {"kind": "raised", "error": "The return value is too large."}
            else:
                frame = {"kind": "value", "json": text}
        else:
            sys.stdin = io.StringIO(request["stdin"])
            try:
                exec(code, {"__name__": "__main__", "__builtins__": builtins, "__file__": "<submission>"})
            except SystemExit:
                pass
            frame = {"kind": "stdout", "stdout": capture.text(), "truncated": capture.truncated}
    except MemoryError:
        frame = {"kind": "memory"}
    except OutputLimit:
        frame = {"kind": "stdout", "stdout": capture.text(), "truncated": True}
    except BaseException as e:
        if capture.truncated:
            frame = {"kind": "stdout", "stdout": capture.text(), "truncated": True}
        else:
            frame = {"kind": "raised", "error": describe(e)}
    sys.stdin = io.StringIO("")
    frame["output"], frame["outputSize"] = shown(capture)
    return frame


def main():
    set_limits(int(sys.argv[1]))
    # `python -S` skips site, which is what normally defines exit() and quit().
    builtins.exit = builtins.quit = _exit
    sys.stderr = Sink()
    sys.stdin = io.StringIO("")
    devnull = os.open("/dev/null", os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    emit({"t": "hello"})
    code = entry = None
    while True:
        request = read_request()
        if request is None:
            return
        nonce = request["n"]
        if request["op"] == "load":
            code, entry, error = load(request)
            if error is not None:
                emit({"t": "fatal", "n": nonce, "message": error})
                return
            emit({"t": "loaded", "n": nonce})
        else:
            frame = run_test(request, code, entry)
            frame["t"] = "result"
            frame["n"] = nonce
            emit(frame)


main()
