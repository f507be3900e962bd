"""The WSGI layer in front of moto: control API, counters, throttling, faults.

Every request passes here first. `/_realism/*` is the control API and never
reaches moto. An EC2 request (query protocol, `Action=...`) is counted (a
mutating one also journaled: caller, ENI, answer; see journal.py), may be
throttled or failed before moto sees it (rendered as EC2 error XML), and is
otherwise run by moto one request at a time, so a rule check and moto's
mutation are one atomic step, as on EC2 (two concurrent attaches at one index
cannot both pass the check). Throttling and faults are decided on arrival,
before queueing for moto. A timeout fault sleeps after moto ran, holding no
lock: the caller gives up while AWS has acted. `answer_latency` holds every
mutating call's answer the same way (EC2's own request latency), so a client
killed mid-call leaves the change made and its answer unread;
`answer_latencies` holds answers per action or class, describes included.

A request carrying the `X-Realism-Observer` header is the test looking, not a
client of EC2: it is run by moto as it is (eventual consistency does not hide
new ENIs from it) and is neither counted, throttled nor failed, so a test's own
sampling neither shows in the counters nor draws the dice or the tokens the
client under test would have drawn.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from tests.harness.realism.config import OBSERVER_HEADER, ConfigError
from tests.harness.realism.errors import ec2_error_xml
from tests.harness.realism.limits import Fault
from tests.harness.realism.state import RealismState

CONTROL_PREFIX = "/_realism/"
_OBSERVER_ENVIRON = "HTTP_" + OBSERVER_HEADER.upper().replace("-", "_")
MOTO_RESET_PATH = "/moto-api/reset"
_STATUS_TEXT = {
    200: "200 OK",
    400: "400 Bad Request",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}
_SCOPE_SERVICE = re.compile(r"Credential=[^/,\s]+/[^/]+/[^/]+/([^/]+)/aws4_request")
_ERROR_CODE = re.compile(rb"<Code>([^<]+)</Code>")

# Injected failures answered without running the request: (HTTP status, code, message).
_INJECTED = {
    Fault.INTERNAL_ERROR: (500, "InternalError", "An internal error has occurred."),
    Fault.UNAVAILABLE: (503, "Unavailable", "The server is overloaded and cannot serve."),
}
_THROTTLED = (503, "RequestLimitExceeded", "Request limit exceeded.")
_DENIED = (403, "UnauthorizedOperation", "You are not authorized to perform this operation.")


class RealismMiddleware:
    def __init__(
        self,
        app: WSGIApplication,
        state: RealismState,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.app = app
        self.state = state
        self._sleep = sleep
        # Serializes moto: a rule check and moto's change are one atomic step.
        # Lock order: _moto_lock, then state.lock (taken inside by the patches).
        self._moto_lock = threading.Lock()
        self._control_routes: dict[tuple[str, str], Callable[[bytes], Any]] = {
            ("POST", "configure"): self._configure,
            ("POST", "reset"): self._reset,
            ("GET", "calls"): lambda _: self.state.counters(),
            ("GET", "journal"): lambda _: self.state.journal.entries(),
            ("GET", "state"): lambda _: self.state.switches.to_json(),
        }

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        body = _read_body(environ)
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, path[len(CONTROL_PREFIX) :], body, start_response)
        action = ec2_action(environ, body)
        if action is None or environ.get(_OBSERVER_ENVIRON):
            status, headers, payload = self._run(environ, observer=action is not None)
            if path == MOTO_RESET_PATH and status.startswith("200"):
                self.state.forget_resources()
            start_response(status, headers)
            return [payload]
        return self._ec2(environ, action, start_response, params=ec2_params(environ, body))

    def _ec2(
        self,
        environ: WSGIEnvironment,
        action: str,
        start_response: StartResponse,
        *,
        params: dict[str, list[str]],
    ) -> Iterable[bytes]:
        state = self.state
        subnet = params.get("SubnetId", [""])[0]
        journal = _Journaled(state, environ, action, params)
        # At the front door, as EC2 does: count, throttle, roll the fault dice
        # on arrival, not after queueing behind other requests for moto.
        with state.lock:
            state.calls[action] += 1
            if action in state.switches.deny_actions or (
                action == "CreateNetworkInterface" and subnet in state.switches.deny_subnets
            ):
                return self._refuse(start_response, *_DENIED, journal=journal)
            if state.throttle is not None and not state.throttle.admit(action):
                return self._refuse(start_response, *_THROTTLED, journal=journal)
            fault = state.dice.roll(action) if state.dice is not None else None
            if fault in _INJECTED:
                return self._refuse(start_response, *_INJECTED[fault], journal=journal)
            delay = state.dice.config.timeout_seconds if state.dice is not None else 0.0
            answer_latency = state.switches.answer_delay(action)
        status, headers, payload = self._run(environ)
        error = None
        with state.lock:
            if int(status.split(" ", 1)[0]) >= HTTPStatus.BAD_REQUEST:
                match = _ERROR_CODE.search(payload)
                error = match.group(1).decode() if match else status
                state.errors[error] += 1
            if fault is Fault.TIMEOUT:
                state.timeouts[action] += 1
        journal.record(payload, error)
        if fault is Fault.TIMEOUT:
            self._sleep(delay)
        elif answer_latency > 0:
            self._sleep(answer_latency)
        start_response(status, headers)
        return [payload]

    def _refuse(
        self,
        start_response: StartResponse,
        status: int,
        code: str,
        message: str,
        *,
        journal: _Journaled,
    ) -> Iterable[bytes]:
        self.state.errors[code] += 1
        journal.record(b"", code)
        body = ec2_error_xml(code, message)
        start_response(
            _STATUS_TEXT[status],
            [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def _run(
        self, environ: WSGIEnvironment, *, observer: bool = False
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        """Settle due transitions, run moto to completion; one request at a time.
        `observer`: the test looking (see the module docstring)."""
        captured: dict[str, Any] = {}
        chunks: list[bytes] = []

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            captured["status"], captured["headers"] = status, headers
            return chunks.append

        with self._moto_lock:
            self.state.before_request()
            self.state.observing = observer
            try:
                result = self.app(environ, capture)
                try:
                    chunks.extend(result)
                finally:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
            finally:
                self.state.observing = False
        return captured["status"], captured["headers"], b"".join(chunks)

    def _control(
        self, environ: WSGIEnvironment, name: str, body: bytes, start_response: StartResponse
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        route = self._control_routes.get((method, name))
        if route is not None:
            try:
                return _json(start_response, 200, route(body))
            except ConfigError as err:
                return _json(start_response, 400, {"error": str(err)})
        if any(known == name for _, known in self._control_routes):
            return _json(start_response, 405, {"error": f"{method} not allowed on {name}"})
        known = ", ".join(f"{m} {CONTROL_PREFIX}{n}" for m, n in self._control_routes)
        return _json(start_response, 404, {"error": f"unknown endpoint; known: {known}"})

    def _configure(self, body: bytes) -> Any:
        try:
            payload = json.loads(body or b"{}")
        except ValueError as err:
            raise ConfigError(f"configure expects JSON: {err}") from err
        return self.state.configure(payload).to_json()

    def _reset(self, _: bytes) -> Any:
        with self._moto_lock:  # finishing pending detaches changes moto's objects
            self.state.reset()
        return self.state.switches.to_json()


class _Journaled:
    """One EC2 request's entry in the call journal, stamped on arrival."""

    __slots__ = ("_action", "_at", "_authorization", "_params", "_state")

    def __init__(
        self,
        state: RealismState,
        environ: WSGIEnvironment,
        action: str,
        params: dict[str, list[str]],
    ) -> None:
        self._state = state
        self._at = state.journal.arrived()
        self._action = action
        self._authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
        self._params = params

    def record(self, payload: bytes, error: str | None) -> None:
        self._state.journal.record(
            at=self._at,
            action=self._action,
            authorization=self._authorization,
            params=self._params,
            payload=payload,
            error=error,
        )


def ec2_action(environ: WSGIEnvironment, body: bytes) -> str | None:
    """The EC2 Action of a query-protocol request, or None for anything else."""
    scope = _SCOPE_SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if scope is not None and scope.group(1) != "ec2":
        return None
    actions = ec2_params(environ, body).get("Action")
    return actions[0] if actions else None


def ec2_params(environ: WSGIEnvironment, body: bytes) -> dict[str, list[str]]:
    """A query-protocol request's parameters, from its query string and form body."""
    params = parse_qs(environ.get("QUERY_STRING", ""))
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        params.update(parse_qs(body.decode("utf-8", errors="replace")))
    return params


def _read_body(environ: WSGIEnvironment) -> bytes:
    """Read the whole request body and put it back for moto to read again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _json(start_response: StartResponse, status: int, payload: Any) -> Iterable[bytes]:
    body = json.dumps(payload, sort_keys=True).encode()
    start_response(
        _STATUS_TEXT[status],
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
