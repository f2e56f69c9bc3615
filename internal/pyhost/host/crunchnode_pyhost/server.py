"""A small model host for development: CrunchDAO's model-runner protocol over gRPC for one
participant model, written against Debian's python3-grpcio and python3-protobuf only (no
grpc_tools, no grpcio-health-checking), so Python example models run locally without PyPI.

It follows the upstream runner's semantics, which crunch-node's Go model host also follows:

* Setup(className) finds the first subclass of that base class among the modules of the
  code directory and instantiates it with the decoded arguments. Answers: SUCCESS (also when
  an instance exists already), INVALID_ARGUMENT (no className, undecodable arguments),
  BAD_IMPLEMENTATION (base class or subclass not found, import error), SETUP_FAILED (the
  constructor raised).
* Call(methodName, args, kwargs) calls the method with the positional arguments in position
  order and only the keyword arguments its signature accepts (the others are logged once and
  dropped, so the coordinator can add optional keywords without breaking old models).
  Answers: SUCCESS with the result (none when it returned None), FAILED_PRECONDITION (no
  Setup), INVALID_ARGUMENT, BAD_IMPLEMENTATION (no such method), MODEL_FAILED (the method
  raised, or its result cannot be encoded).
* Rest drops the instance.
* One call at a time: Setup, Call and Rest share a non-blocking lock, and a call arriving
  while another runs is refused at once with RESOURCE_EXHAUSTED "Server busy".
* grpc.health.v1.Health/Check answers SERVING on its own worker thread, even while a model
  call runs.
"""

import argparse
import inspect
import logging
import os
import signal
import sys
import threading
from concurrent import futures

import grpc
from google.protobuf import empty_pb2

from crunchdao.modelrunner.v1 import commons_pb2
from crunchdao.modelrunner.v1 import dynamic_subclass_pb2 as pb

from . import loader
from . import variant

SERVICE = "dynamic_subclass.DynamicSubclassService"
HEALTH_SERVICE = "grpc.health.v1.Health"

SUCCESS = "SUCCESS"
BAD_IMPLEMENTATION = "BAD_IMPLEMENTATION"
FAILED_PRECONDITION = "FAILED_PRECONDITION"
INVALID_ARGUMENT = "INVALID_ARGUMENT"
MODEL_FAILED = "MODEL_FAILED"
SETUP_FAILED = "SETUP_FAILED"

# HealthCheckResponse{status: SERVING}, encoded by hand (field 1, varint 1) because Debian
# ships no grpc_health module.
_SERVING = b"\x08\x01"

# Enough workers for one model call, busy refusals and health checks at the same time.
_WORKERS = 4

log = logging.getLogger("crunchnode_pyhost")


class ModelHost:
    """The DynamicSubclassService for one model instance."""

    def __init__(self, code_dir):
        self.code_dir = code_dir
        self.instance = None
        self._lock = threading.Lock()
        self._warned_kwargs = set()

    def _enter(self, context):
        if not self._lock.acquire(blocking=False):
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "Server busy")

    def setup(self, request, context):
        self._enter(context)
        try:
            code, message = self._setup(request)
            if code != SUCCESS:
                log.warning("Setup %s: %s: %s", request.className, code, message)
            return pb.SetupResponse(status=commons_pb2.Status(code=code, message=message))
        finally:
            self._lock.release()

    def _setup(self, request):
        if not request.className:
            return INVALID_ARGUMENT, "className is required"
        if self.instance is not None:
            return SUCCESS, "Instance already exists"
        try:
            cls = loader.find_subclass(request.className, self.code_dir)
        except loader.NotFound as e:
            return BAD_IMPLEMENTATION, str(e)
        try:
            args = decode_args(request.instanceArguments)
            kwargs = decode_kwargs(request.instanceKwArguments)
        except variant.VariantError as e:
            return INVALID_ARGUMENT, str(e)
        try:
            self.instance = cls(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - the participant's constructor
            log.exception("Setup: %s() raised", cls.__qualname__)
            return SETUP_FAILED, describe(e)
        log.info("Setup: instance of %s.%s created", cls.__module__, cls.__qualname__)
        return SUCCESS, "Instance created"

    def call(self, request, context):
        self._enter(context)
        try:
            return self._call(request)
        finally:
            self._lock.release()

    def _call(self, request):
        def answer(code, message=""):
            return pb.CallResponse(status=commons_pb2.Status(code=code, message=message))

        if self.instance is None:
            return answer(FAILED_PRECONDITION, "Setup has not been called")
        name = request.methodName
        if not name:
            return answer(INVALID_ARGUMENT, "methodName is required")
        method = getattr(self.instance, name, None)
        if name.startswith("__") or not callable(method):
            return answer(BAD_IMPLEMENTATION, f"model has no method {name!r}")
        try:
            args = decode_args(request.methodArguments)
            kwargs = self._accepted_kwargs(name, method, decode_kwargs(request.methodKwArguments))
        except variant.VariantError as e:
            return answer(INVALID_ARGUMENT, str(e))
        try:
            result = method(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - the participant's code
            log.exception("Call %s raised", name)
            return answer(MODEL_FAILED, describe(e))
        response = answer(SUCCESS)
        if result is not None:
            try:
                tag, data = variant.encode(result)
            except variant.VariantError as e:
                return answer(MODEL_FAILED, f"{name} returned an unusable value: {e}")
            response.methodResponse.type = tag
            response.methodResponse.value = data
        return response

    def _accepted_kwargs(self, name, method, kwargs):
        if not kwargs:
            return kwargs
        try:
            params = inspect.signature(method).parameters.values()
        except (TypeError, ValueError):
            return kwargs  # a builtin without a signature: let Python decide
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            return kwargs
        accepted = {
            p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        }
        kept = {}
        for key, value in kwargs.items():
            if key in accepted:
                kept[key] = value
            elif (name, key) not in self._warned_kwargs:
                self._warned_kwargs.add((name, key))
                log.warning("Call %s: dropping keyword argument %r, which the method does not accept", name, key)
        return kept

    def rest(self, request, context):
        self._enter(context)
        try:
            self.instance = None
            return pb.RestResponse(status=commons_pb2.Status(code=SUCCESS, message="Instance removed"))
        finally:
            self._lock.release()


def decode_args(arguments):
    return [variant.decode(a.data.type, a.data.value) for a in sorted(arguments, key=lambda a: a.position)]


def decode_kwargs(kw_arguments):
    return {k.keyword: variant.decode(k.data.type, k.data.value) for k in kw_arguments}


def describe(exc):
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def health_check(request, context):
    """grpc.health.v1.Health/Check on raw bytes: the overall server ("") and the model
    service are SERVING; any other service is NOT_FOUND, as in grpc's own health server."""
    service = _health_service_name(request)
    if service not in ("", SERVICE):
        context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {service!r}")
    return _SERVING


def _health_service_name(data):
    """Reads field 1 (string service) of a HealthCheckRequest; other fields are ignored."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _varint(data, i)
        elif wire == 2:
            size, i = _varint(data, i)
            value, i = data[i : i + size], i + size
            if field == 1:
                return value.decode("utf-8", "replace")
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            break
    return ""


def _varint(data, i):
    shift = result = 0
    while i < len(data):
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
    return result, i


def build_server(host):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=_WORKERS))
    handlers = {
        "Setup": grpc.unary_unary_rpc_method_handler(
            host.setup,
            request_deserializer=pb.SetupRequest.FromString,
            response_serializer=pb.SetupResponse.SerializeToString,
        ),
        "Call": grpc.unary_unary_rpc_method_handler(
            host.call,
            request_deserializer=pb.CallRequest.FromString,
            response_serializer=pb.CallResponse.SerializeToString,
        ),
        "Rest": grpc.unary_unary_rpc_method_handler(
            host.rest,
            request_deserializer=empty_pb2.Empty.FromString,
            response_serializer=pb.RestResponse.SerializeToString,
        ),
    }
    health = {"Check": grpc.unary_unary_rpc_method_handler(health_check)}
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(SERVICE, handlers),
            grpc.method_handlers_generic_handler(HEALTH_SERVICE, health),
        )
    )
    return server


def parse_args(argv):
    p = argparse.ArgumentParser(prog="crunch-node-pyhost", description="Serve a Python model over the model-runner protocol.")
    p.add_argument("--code-dir", required=True, help="directory holding the model's modules")
    p.add_argument("--port", type=int, required=True, help="port to listen on (0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--base-class",
        default="",
        help="base class to look for at start-up, e.g. cruncher.ModelBaseClass, so a broken "
        "submission shows in the log at once (Setup always uses the class name it is sent)",
    )
    p.add_argument(
        "--path",
        action="append",
        default=[],
        help="extra import directory after the code directory, e.g. a challenge package (repeatable)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    code_dir = os.path.abspath(args.code_dir)
    if not os.path.isdir(code_dir):
        log.error("code directory %s does not exist", code_dir)
        return 2
    # The code directory comes first, as in the upstream runner's image: a submission's own
    # cruncher.py wins over a challenge package given with --path.
    sys.path[0:0] = [code_dir] + [os.path.abspath(p) for p in args.path]

    if args.base_class:
        try:
            cls = loader.find_subclass(args.base_class, code_dir)
            log.info("model class %s.%s (a %s)", cls.__module__, cls.__qualname__, args.base_class)
        except loader.NotFound as e:
            log.warning("no usable model class yet; Setup will answer BAD_IMPLEMENTATION: %s", e)

    host = ModelHost(code_dir)
    server = build_server(host)
    bind_host = f"[{args.host}]" if ":" in args.host and not args.host.startswith("[") else args.host
    address = f"{bind_host}:{args.port}"
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as e:
        log.error("cannot listen on %s: %s", address, e)
        return 1
    if port == 0:
        log.error("cannot listen on %s", address)
        return 1

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    print(f"model host listening on {bind_host}:{port}", flush=True)
    stop.wait()
    log.info("stopping")
    server.stop(grace=2).wait()
    return 0
