"""moto in server mode on the loopback interface, standing in for AWS in every region.

One `ThreadedMotoServer` serves all regions (the region travels in each
request's signature). The server is wrapped so that a region marked
unreachable refuses every request signed for it, whoever made the client: the
guard that keeps a drill honest even for code that builds its own boto3 clients.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse
from urllib.request import Request, urlopen

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from automation.aws.clients import ENDPOINT_ENV
from automation.errors import DrctlError

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "sandbox",
    "AWS_SECRET_ACCESS_KEY": "sandbox",
    "AWS_SESSION_TOKEN": "sandbox",
}
# Services whose single control plane answers from us-east-1 (AwsClients signs them for it).
GLOBAL_CONTROL_PLANES = frozenset({"route53", "iam"})
_SCOPE_RE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")


def signed_scope(authorization: str) -> tuple[str, str] | None:
    """(region, service) of a SigV4 Authorization header."""
    found = _SCOPE_RE.search(authorization or "")
    return (found.group(1), found.group(2)) if found else None


class RegionOutages:
    """Which regions are down; shared by the server guard and the sandbox's boto3 hooks."""

    def __init__(self) -> None:
        self._down: set[str] = set()
        self._impaired: set[tuple[str, str]] = set()
        self._global_control_planes_down = False
        self._lock = threading.Lock()

    def fail(self, region: str, *, global_control_planes: bool = False) -> None:
        """Make `region` unreachable; `global_control_planes` also takes Route53/IAM down (if it is us-east-1)."""
        with self._lock:
            self._down.add(region)
            self._global_control_planes_down |= global_control_planes

    def impair(self, region: str, services: frozenset[str]) -> None:
        """Only `services` of `region` stop answering (e.g. its CloudWatch)."""
        with self._lock:
            self._impaired |= {(region, service) for service in services}

    def unimpair(self, region: str, services: frozenset[str]) -> None:
        with self._lock:
            self._impaired -= {(region, service) for service in services}

    def restore(self, region: str | None = None) -> None:
        with self._lock:
            if region is None:
                self._down.clear()
                self._impaired.clear()
            else:
                self._down.discard(region)
            if not self._down:
                self._global_control_planes_down = False

    @property
    def down(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._down)

    def refuses(self, region: str, service: str) -> bool:
        with self._lock:
            if (region, service) in self._impaired:
                return True
            if service in GLOBAL_CONTROL_PLANES:
                return self._global_control_planes_down and region in self._down
            return region in self._down


class _OutageGuard:
    """WSGI middleware: 503 for any request signed for a region that is down."""

    def __init__(self, app: Callable[..., Iterable[bytes]], outages: RegionOutages) -> None:
        self._app = app
        self._outages = outages

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        scope = signed_scope(environ.get("HTTP_AUTHORIZATION", ""))
        if scope and self._outages.refuses(*scope):
            body = b"<Error><Code>ServiceUnavailable</Code><Message>sandbox: region is unreachable</Message></Error>"
            start_response(
                "503 Service Unavailable", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return self._app(environ, start_response)


class _GuardedMotoServer(ThreadedMotoServer):
    def __init__(self, port: int, outages: RegionOutages) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self._outages = outages

    def _server_entry(self) -> None:
        app = _OutageGuard(DomainDispatcherApplication(create_backend_app), self._outages)
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


def require_loopback(endpoint_url: str) -> str:
    """Refuse any endpoint that is not this machine: a sandbox must never reach real AWS."""
    host = urlparse(endpoint_url).hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise DrctlError(f"the sandbox endpoint {endpoint_url} is not a loopback address; refusing to use it")
    return endpoint_url


class MotoSandboxServer:
    """Start/stop moto, point `automation.aws.clients` at it (env) with dummy credentials, reset between drills."""

    def __init__(self) -> None:
        self.outages = RegionOutages()
        self._server: _GuardedMotoServer | None = None
        self.endpoint_url = ""

    def start(self) -> str:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per API call otherwise
        # Port 0: the kernel picks a free port at bind time (a probed port could be taken by then by a parallel run).
        self._server = _GuardedMotoServer(0, self.outages)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = require_loopback(f"http://{host}:{port}")
        return self.endpoint_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def reset(self) -> None:
        """Forget every resource in every region (moto's reset API) and end all outages."""
        self.outages.restore()
        request = Request(f"{require_loopback(self.endpoint_url)}/moto-api/reset", method="POST")
        with urlopen(request, timeout=10) as response:
            response.read()

    @contextmanager
    def environment(self) -> Iterator[str]:
        """Set the endpoint and dummy credentials for clients built from the environment; restore them after."""
        values = {**DUMMY_CREDENTIALS, ENDPOINT_ENV: self.endpoint_url}
        saved = {key: os.environ.get(key) for key in [*values, "AWS_PROFILE"]}
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(values)
        try:
            yield self.endpoint_url
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
