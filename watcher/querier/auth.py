"""Authentication for one deployment: headers, and the ``access_command`` transport.

=====================  ==============================================================
``auth_kind``          what goes on the wire
=====================  ==============================================================
``basic``              ``Authorization: Basic base64(username:password)`` (wins over
                       ``token``, as profilecli does)
``bearer``             ``Authorization: Bearer <token>``
``cf-access``          ``CF-Access-Client-Id`` and ``CF-Access-Client-Secret`` (also sent
                       alongside basic or bearer when configured)
``access-command``     no headers: the wrapper (e.g. ``cloudflared access curl``) is run as
                       ``<command...> <url> -s -X POST -H 'Content-Type: application/json'
                       -d <body>`` and its stdout is the response body
=====================  ==============================================================

``tenant_id`` is always sent as ``X-Scope-OrgID`` (to the wrapper as one more ``-H``).
Nothing here imports an HTTP library: the wrapper serves every client, whatever its
socket transport.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from watcher.errors import AccessCommandError, ResponseTooLarge
from watcher.querier.transport import BufferedResponse, Transport
from watcher.redact import redact

if TYPE_CHECKING:
    import subprocess

# subprocess, signal, shlex, threading and gzip serve only the access_command transport and
# are imported there: a query over a socket does not pay for them.

__all__ = [
    "CONNECT_CODE_STATUS",
    "AccessCommandTransport",
    "DeploymentAuth",
    "DeploymentLike",
    "SecretValue",
    "auth_headers",
    "tenant_headers",
]

#: Connect error code -> HTTP status (connect-go ``connectCodeToHTTP``, spec §1.5).
CONNECT_CODE_STATUS: dict[str, int] = {
    "canceled": 499,
    "unknown": 500,
    "invalid_argument": 400,
    "deadline_exceeded": 504,
    "not_found": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "resource_exhausted": 429,
    "failed_precondition": 400,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
    "unauthenticated": 401,
}

#: Largest request body handed to the wrapper as one argument (Linux allows 128 KiB).
MAX_ARGUMENT_BYTES = 100_000
_STDERR_KEEP = 64 * 1024


class SecretValue(Protocol):
    """A secret that shows itself only when asked (pydantic's ``SecretStr`` is one)."""

    def get_secret_value(self) -> str: ...


class DeploymentLike(Protocol):
    """What the client reads of a deployment.

    :class:`watcher.config.Deployment` is one; the command line builds a lighter one when it
    can read a deployment without loading the whole validation machinery (see
    ``watcher.cli._quickconfig.quick_deployment``).
    """

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def token(self) -> SecretValue | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> SecretValue | None: ...
    @property
    def access_command(self) -> str | None: ...
    @property
    def cf_access_client_id(self) -> str | None: ...
    @property
    def cf_access_client_secret(self) -> SecretValue | None: ...
    @property
    def tenant_id(self) -> str | None: ...
    @property
    def timeout(self) -> float: ...
    @property
    def verify_tls(self) -> bool: ...
    @property
    def ca_file(self) -> Path | None: ...
    @property
    def max_response_bytes(self) -> int: ...
    @property
    def auth_kind(self) -> str: ...

    def secret_values(self) -> list[str]: ...


def auth_headers(deployment: DeploymentLike) -> dict[str, str]:
    """The credential headers of ``deployment`` (empty for ``access_command``)."""
    if deployment.access_command is not None:
        return {}
    headers: dict[str, str] = {}
    if deployment.username is not None or deployment.password is not None:
        user = deployment.username or ""
        password = deployment.password.get_secret_value() if deployment.password else ""
        import base64

        pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {pair}"
    elif deployment.token is not None:
        headers["Authorization"] = f"Bearer {deployment.token.get_secret_value()}"
    if deployment.cf_access_client_id is not None and deployment.cf_access_client_secret:
        headers["CF-Access-Client-Id"] = deployment.cf_access_client_id
        headers["CF-Access-Client-Secret"] = deployment.cf_access_client_secret.get_secret_value()
    return headers


def tenant_headers(deployment: DeploymentLike) -> dict[str, str]:
    """``X-Scope-OrgID`` when the deployment names a tenant."""
    return {"X-Scope-OrgID": deployment.tenant_id} if deployment.tenant_id else {}


class DeploymentAuth:
    """The deployment's credential headers, made at send time (:meth:`headers`).

    Secrets stay in the deployment's ``SecretStr`` fields until a request is sent, so the
    client, its headers and this object never show them in a repr.
    """

    def __init__(self, deployment: DeploymentLike) -> None:
        self._deployment = deployment

    def headers(self) -> dict[str, str]:
        """The credential headers of one request."""
        return auth_headers(self._deployment)

    def __repr__(self) -> str:
        return f"DeploymentAuth({self._deployment.name!r}, {self._deployment.auth_kind})"


class AccessCommandTransport(Transport):
    """Send each request through a curl-compatible wrapper command instead of a socket.

    The command line is split with :func:`shlex.split` and run without a shell, so shell
    metacharacters in it are plain arguments. stdin is closed; stdout is the response body,
    read in chunks and refused beyond ``max_response_bytes``; the process is killed after
    ``timeout`` seconds. A wrapper cannot report an HTTP status, so a Connect error body
    (``{"code": "...", "message": "..."}``) on stdout is given the status of its code.

    :raises AccessCommandError: the command is missing, exits non-zero, times out or prints
        something that is not JSON; the message carries its stderr with secrets redacted.
    :raises ResponseTooLarge: stdout exceeds ``max_response_bytes``.
    """

    def __init__(
        self,
        command: str,
        *,
        timeout: float = 30.0,
        max_response_bytes: int = 256 * 1024 * 1024,
        secrets: Sequence[str] = (),
    ) -> None:
        import shlex

        self._argv = shlex.split(command)
        if not self._argv:
            raise AccessCommandError("access_command is empty")
        self._timeout = timeout
        self._limit = max_response_bytes
        self._secrets = [*secrets, *_command_secrets(self._argv)]

    #: The wrapper takes the request body as an argument: JSON only, never gzipped.
    json_only = True

    def __repr__(self) -> str:
        return f"AccessCommandTransport(program={self._argv[0]!r})"

    def argv(self, url: str, body: bytes, headers: Mapping[str, str]) -> list[str]:
        """The exact argument vector run for a request."""
        named = {key.lower(): value for key, value in headers.items()}
        if named.get("content-encoding", "").lower() == "gzip":
            import gzip

            body = gzip.decompress(body)
        content_type = named.get("content-type", "application/json")
        if not content_type.startswith("application/json"):
            raise AccessCommandError(
                f"access_command can only send JSON requests, not {content_type}"
            )
        if len(body) > MAX_ARGUMENT_BYTES:
            raise AccessCommandError(
                f"request body of {len(body)} bytes is too large to pass to access_command "
                f"as an argument (limit {MAX_ARGUMENT_BYTES})"
            )
        argv = [
            *self._argv,
            url,
            "-s",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
        ]
        tenant = named.get("x-scope-orgid")
        if tenant:
            argv += ["-H", f"X-Scope-OrgID: {tenant}"]
        argv += ["-d", body.decode("utf-8")]
        return argv

    def _fail(self, message: str, stderr: bytes = b"") -> AccessCommandError:
        text = stderr.decode("utf-8", "replace").strip()
        if text:
            text = " ".join(text.split())
            if len(text) > 500:
                text = "..." + text[-500:]
            message += f"; stderr: {text}"
        return AccessCommandError(redact(message, self._secrets))

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> BufferedResponse:
        """Run the wrapper for one request; its stdout is the body of the answer."""
        import subprocess
        import threading

        argv = self.argv(url, body, headers)
        program = self._argv[0]
        try:
            proc = subprocess.Popen(  # an argument list: never a shell
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # so a timeout can kill the wrapper's children too
            )
        except FileNotFoundError:
            raise self._fail(f"access_command program {program!r} was not found") from None
        except PermissionError:
            raise self._fail(f"access_command program {program!r} is not executable") from None
        except OSError as exc:
            raise self._fail(f"access_command could not start: {exc.strerror or exc}") from None

        stderr_chunks: list[bytes] = []
        assert proc.stdout is not None and proc.stderr is not None
        reader = threading.Thread(target=_drain, args=(proc.stderr, stderr_chunks), daemon=True)
        reader.start()
        timed_out = threading.Event()

        def _kill() -> None:
            timed_out.set()
            _kill_group(proc)

        timer = threading.Timer(self._timeout, _kill)
        timer.daemon = True
        timer.start()
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > self._limit:
                    _kill_group(proc)
                    raise ResponseTooLarge(
                        f"access_command printed more than {self._limit} bytes "
                        "(max_response_bytes); narrow the query or raise the limit"
                    )
                chunks.append(chunk)
            returncode = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:  # pragma: no cover - only after an exception above
                _kill_group(proc)
                proc.wait()
            proc.stdout.close()
            reader.join()
            proc.stderr.close()
        stderr = b"".join(stderr_chunks)
        if timed_out.is_set():
            raise self._fail(f"access_command did not finish within {self._timeout:g}s", stderr)
        if returncode < 0:
            raise self._fail(f"access_command was killed by signal {-returncode}", stderr)
        if returncode != 0:
            raise self._fail(f"access_command exited with status {returncode}", stderr)

        body = b"".join(chunks)
        if not body.strip():
            raise self._fail("access_command printed nothing on stdout", stderr)
        try:
            parsed = json.loads(body)
        except ValueError:
            excerpt = " ".join(body[:200].decode("utf-8", "replace").split())
            raise self._fail(
                f"access_command printed something that is not JSON: {excerpt!r}", stderr
            ) from None
        status = 200
        if isinstance(parsed, dict) and isinstance(parsed.get("code"), str):
            status = CONNECT_CODE_STATUS.get(parsed["code"], 200)
        return BufferedResponse(status, {"Content-Type": "application/json"}, body)


@functools.cache
def _secret_option() -> re.Pattern[str]:
    """A secret-looking option of a wrapper (compiled on first use)."""
    return re.compile(
        r"-{1,2}[A-Za-z0-9_-]*(?:token|secret|password|passwd|key|auth)[A-Za-z0-9_-]*(?:=(.*))?",
        re.IGNORECASE,
    )


def _command_secrets(argv: Sequence[str]) -> list[str]:
    """Values given to secret-looking options of the wrapper (``--token X``, ``--key=X``)."""
    found: list[str] = []
    secret_option = _secret_option()
    for index, arg in enumerate(argv[1:], start=1):
        match = secret_option.fullmatch(arg)
        if match is None:
            continue
        if match.group(1):
            found.append(match.group(1))
        elif index + 1 < len(argv) and not argv[index + 1].startswith("-"):
            found.append(argv[index + 1])
    return found


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the wrapper and everything it started (it leads its own session)."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _drain(stream: IO[bytes], keep: list[bytes]) -> None:
    """Read ``stream`` to its end, keeping the first ``_STDERR_KEEP`` bytes."""
    kept = 0
    while True:
        chunk = stream.read(65536)
        if not chunk:
            return
        if kept < _STDERR_KEEP:
            keep.append(chunk[: _STDERR_KEEP - kept])
            kept += len(keep[-1])
