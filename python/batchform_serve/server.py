"""The pre-fork HTTP server: N worker processes share one listening socket; each loads the model
once at start-up and serves keep-alive connections on threads (TCP_NODELAY, one write per
response). `/ping` answers 200 only once every worker has loaded the model. Workers share their
load, so a new connection goes to the least loaded one (see WorkerServer).
"""
import ctypes
import gc
import json
import multiprocessing
import os
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn
from typing import Any, List, Mapping, MutableMapping, Optional, Tuple, Type

from . import codecs, container_modules
from .handlers import Handlers, StartupError, find_code_directory, load_user_module
from .requirements import install_requirements

# The exit status of a server (or worker) whose model cannot be loaded.
MODEL_LOAD_FAILED = 3


def exit_code(status: int) -> int:
    """os.waitstatus_to_exitcode, which Python 3.8 lacks: the code, or minus the signal."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def log(message: str) -> None:
    print(f"batchform_serve[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


class Settings:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.port = int(environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
        self.host = environ.get("BATCHFORM_BIND_HOST", "127.0.0.1")
        self.workers = max(1, int(environ.get("SAGEMAKER_MODEL_SERVER_WORKERS") or os.cpu_count() or 1))
        self.model_dir = environ.get("SM_MODEL_DIR", "/opt/ml/model")
        self.program = environ.get("SAGEMAKER_PROGRAM") or "inference.py"
        self.program_was_named = bool(environ.get("SAGEMAKER_PROGRAM"))
        # The framework image the model names (sklearn, xgboost, pytorch, huggingface): its defaults.
        self.framework = environ.get("BATCHFORM_FRAMEWORK") or "sklearn"
        self.code_dir = find_code_directory(self.model_dir, environ)
        self.default_accept = environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or codecs.JSON
        self.max_payload_mb = int(environ.get("SAGEMAKER_MAX_PAYLOAD_IN_MB") or 6)
        self.body_limit = (int(environ.get("SAGEMAKER_MAX_PAYLOAD_IN_MB") or 100) or 100) << 20
        # BATCHFORM_PRELOAD_MODEL=true: model_fn runs once, in the supervisor, before the fork.
        self.preload = environ.get("BATCHFORM_PRELOAD_MODEL", "").strip().lower() in ("true", "1", "yes")
        self.preload_on_gpu = environ.get("BATCHFORM_PRELOAD_ON_GPU", "").strip().lower() in ("true", "1", "yes")
        self.instance_type = environ.get("BATCHFORM_INSTANCE_TYPE", "")


def limit_threads(workers: int, environ: MutableMapping[str, str]) -> None:
    """Without this every worker starts a BLAS/OpenMP pool the size of the machine."""
    per_worker = str(max(1, (os.cpu_count() or 1) // workers))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        environ.setdefault(name, per_worker)


# A worker's load, as all workers see it: its open connections, plus LOADING until its model is
# loaded; GONE while its slot has no live worker.
LOADING, GONE = 1 << 20, 1 << 30
# How long a busier worker leaves a waiting connection to the least loaded one before taking it.
FAIR_ACCEPT_WAIT = 0.05


class WorkerServer(ThreadingMixIn, HTTPServer):
    """One worker's server on the listening socket all workers share. Left to the kernel, a
    waiting connection goes to whichever worker asks first, and one worker can end up with both
    of the engine's connections while the other idles (a job then takes twice as long). So a
    worker takes a connection only when no worker is less loaded, or once the less loaded one
    has left it waiting for FAIR_ACCEPT_WAIT."""

    daemon_threads = True

    def __init__(
        self, listener: socket.socket, handler: Type[BaseHTTPRequestHandler], loaded: threading.Event, loads: Any,
        slot: int,
    ) -> None:
        super().__init__(listener.getsockname()[:2], handler, bind_and_activate=False)
        self.socket.close()
        self.socket = listener
        self.loaded = loaded  # the handlers' event, set once the model is loaded
        self.loads, self.slot = loads, slot
        self.connections = 0
        self.lock = threading.Lock()
        self.publish()

    def publish(self) -> None:
        self.loads[self.slot] = self.connections + (0 if self.loaded.is_set() else LOADING)

    def model_loaded(self) -> None:
        with self.lock:
            self.loaded.set()
            self.publish()

    def count_connection(self, change: int) -> None:
        with self.lock:
            self.connections += change
            self.publish()

    def serve_fairly(self) -> None:
        deferred_since = None
        with selectors.PollSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            while True:
                if not selector.select(timeout=1.0):
                    continue
                if self.loads[self.slot] > min(self.loads):
                    now = time.monotonic()
                    deferred_since = deferred_since or now
                    if now - deferred_since < FAIR_ACCEPT_WAIT:
                        time.sleep(0.002)
                        continue
                deferred_since = None
                # Accepts unless another worker was quicker (the listener does not block).
                self._handle_request_noblock()

    def get_request(self) -> Tuple[socket.socket, Any]:
        connection, address = self.socket.accept()
        connection.setblocking(True)
        return connection, address

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        self.count_connection(+1)
        super().process_request(request, client_address)

    def process_request_thread(self, request: socket.socket, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.count_connection(-1)


def make_handler(handlers: Handlers, settings: Settings, loads: Any) -> Type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            pass

        def respond(
            self, status: int, body: bytes = b"", content_type: str = "text/plain",
            headers: Optional[Mapping[str, str]] = None,
        ) -> None:
            lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}",
                     f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
            lines += [f"{key}: {value}" for key, value in (headers or {}).items()]
            # One write: headers and body in one segment (no Nagle/delayed-ACK stall).
            self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

        def read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                parts, total = [], 0
                while True:
                    line = self.rfile.readline(1024)
                    try:
                        size = int(line.split(b";", 1)[0].strip(), 16)
                    except ValueError:
                        raise codecs.BadRequest(f"bad chunk size line {line[:40]!r} in a chunked request body")
                    if size < 0:
                        raise codecs.BadRequest("negative chunk size in a chunked request body")
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(parts)
                    total += size
                    if total > settings.body_limit:
                        raise codecs.BadRequest("request body over the payload limit")
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            if length > settings.body_limit:
                raise codecs.BadRequest("request body over the payload limit")
            return self.rfile.read(length)

        def do_GET(self) -> None:
            if self.path == "/ping":
                self.respond(200 if max(loads) < LOADING else 503)
            elif self.path == "/execution-parameters":
                if handlers.execution_parameters_fn:
                    parameters = handlers.execution_parameters_fn()
                else:
                    parameters = {"MaxConcurrentTransforms": len(loads), "BatchStrategy": "MULTI_RECORD",
                                  "MaxPayloadInMB": settings.max_payload_mb}
                body = parameters if isinstance(parameters, (bytes, str)) else json.dumps(parameters)
                self.respond(200, body.encode() if isinstance(body, str) else body, codecs.JSON)
            else:
                self.respond(404, b"not found")

        def do_POST(self) -> None:
            if self.path != "/invocations":
                self.respond(404, b"not found")
                return
            if not handlers.loaded.is_set():
                self.respond(503, b"the model is still loading; wait for /ping to answer 200")
                return
            try:
                body = self.read_body()
                status, payload, content_type, headers = handlers.transform(body, self.headers, settings.default_accept)
                self.respond(status, payload, content_type or settings.default_accept, headers)
            except Exception as error:  # every failure becomes an HTTP answer the engine can report
                status = getattr(error, "status_code", None)
                status = status if isinstance(status, int) and 400 <= status < 600 else 500
                message = f"{type(error).__name__}: {error}"
                if status == 500:
                    frame = traceback.extract_tb(error.__traceback__)[-1:]
                    where = f" (at {frame[0].filename}:{frame[0].lineno})" if frame else ""
                    log(f"/invocations failed: {message}{where}")
                self.respond(status, message.encode("utf-8", "replace")[:4096])

    return Handler


def is_gpu_instance_type(instance_type: str) -> bool:
    """SageMaker's GPU families (ml.p*, ml.g*), as Batchform decides where GPUs go."""
    family = instance_type.split(".")[1] if instance_type.count(".") >= 1 else ""
    return family.startswith(("p", "g"))


def preload_model(handlers: Handlers, settings: Settings) -> None:
    """Runs model_fn once in the supervisor, so the forked workers share the loaded model
    copy-on-write (like gunicorn's --preload). Raises StartupError where that is unsafe."""
    if is_gpu_instance_type(settings.instance_type) and not settings.preload_on_gpu:
        raise StartupError(
            f"BATCHFORM_PRELOAD_MODEL=true on a GPU instance type ({settings.instance_type}): a CUDA context "
            "made before fork does not work in the workers. Leave preloading off, or set "
            "BATCHFORM_PRELOAD_ON_GPU=true if model_fn does not touch the GPU"
        )
    threads = threading.active_count()
    started = time.monotonic()
    try:
        handlers.load_model()
    except Exception as error:
        traceback.print_exc()
        raise StartupError(f"model_fn failed: {type(error).__name__}: {error}") from error
    if threading.active_count() > threads:
        raise StartupError(
            "BATCHFORM_PRELOAD_MODEL=true, but model_fn started threads "
            f"({threading.active_count() - threads} more running); threads do not survive fork, so the workers "
            "would hang on their locks. Leave preloading off for this model"
        )
    handlers.preloaded = True
    gc.freeze()  # the loaded model's objects stay on pages the workers share
    log(f"model loaded once, before forking, in {time.monotonic() - started:.2f} s (BATCHFORM_PRELOAD_MODEL)")


def run_worker(listener: socket.socket, handlers: Handlers, settings: Settings, loads: Any, slot: int) -> None:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    # Die with the supervisor, even if it is killed outright.
    libc = ctypes.CDLL(None)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    # Serve at once, so /ping answers promptly (503) while the model loads.
    server = WorkerServer(listener, make_handler(handlers, settings, loads), handlers.loaded, loads, slot)
    threading.Thread(target=server.serve_fairly, daemon=True).start()
    if handlers.preloaded:
        server.model_loaded()
        threading.Event().wait()
    started = time.monotonic()
    try:
        handlers.load_model()
    except Exception as error:
        traceback.print_exc()
        reason = f"model_fn failed: {type(error).__name__}: {error}"
        log(reason)
        # The supervisor repeats it last, after the other workers are gone, so the tail of the log
        # Batchform quotes in the FailureReason names the real error.
        FAILURE.value = reason.encode("utf-8", "replace")[: len(FAILURE) - 1]
        os._exit(MODEL_LOAD_FAILED)
    server.model_loaded()
    log(f"model loaded in {time.monotonic() - started:.2f} s")
    threading.Event().wait()


# Why a worker could not load the model, for the supervisor's last line (shared across fork).
FAILURE = multiprocessing.RawArray("c", 1024)


def main(arguments: List[str]) -> int:
    if arguments[:1] != ["serve"]:
        print("usage: python -m batchform_serve serve", file=sys.stderr)
        return 2
    settings = Settings(os.environ)
    limit_threads(settings.workers, os.environ)
    try:
        container_modules.install()
        install_requirements(settings.code_dir)
        module = load_user_module(settings.code_dir, settings.program)
        if module is None and settings.program_was_named:
            raise StartupError(f"SAGEMAKER_PROGRAM is {settings.program} but {settings.code_dir} has no such file")
        handlers = Handlers(module, settings.model_dir, settings.framework)
        if settings.preload:
            preload_model(handlers, settings)
    except StartupError as error:
        log(f"cannot start: {error}")
        return MODEL_LOAD_FAILED
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((settings.host, settings.port))
    listener.listen(128)
    listener.setblocking(False)
    loads = multiprocessing.RawArray("i", [GONE] * settings.workers)
    log(f"serving {settings.code_dir}/{settings.program if module else '(default handlers)'} on "
        f"{settings.host}:{settings.port} with {settings.workers} workers")

    children = {}

    def spawn(slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            run_worker(listener, handlers, settings, loads, slot)
            os._exit(0)
        children[pid] = slot

    def stop(code: int = 0) -> None:
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        sys.exit(code)

    signal.signal(signal.SIGTERM, lambda *_: stop())
    signal.signal(signal.SIGINT, lambda *_: stop())
    for slot in range(settings.workers):
        spawn(slot)
    while True:
        pid, status = os.wait()
        slot = children.pop(pid, None)
        if slot is None:
            continue
        loads[slot] = GONE
        code = exit_code(status)
        if code == MODEL_LOAD_FAILED:
            for other in list(children):  # nothing of theirs may come after the last line
                os.kill(other, signal.SIGKILL)
                os.waitpid(other, 0)
            children.clear()
            reason = FAILURE.value.decode("utf-8", "replace") or "model_fn failed, see above"
            log(f"a worker could not load the model; stopping: {reason}")
            stop(MODEL_LOAD_FAILED)
        # A worker that died serving (a crash, the OOM killer) is replaced; until its model is
        # loaded again, /ping reports not ready.
        log(f"worker {pid} exited ({code}); starting a new one")
        spawn(slot)


def console_main() -> int:
    """The `batchform-serve` command of the package."""
    return main(sys.argv[1:])
