"""An OpenAI-compatible server: one the user runs (``url``), or one greenbench launches from a
command template and always stops (``launch``).

A launch runs under ``greenbench.serving.guard`` in a process group of its own: ``stop`` (on
success, on error, on Ctrl-C) signals the group, and the guard takes the group down if greenbench
itself is killed. The server's output goes to a log file beside the profile; a start that fails or
times out raises ``ServerError`` with the log's last lines, which the runner records on the point.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greenbench.errors import GreenbenchError

LOOPBACK = "127.0.0.1"
STOP_GRACE_S = 15.0  # the guard's grace (10 s) and a margin, before greenbench kills the group itself
KILL_WAIT_S = 15.0  # after SIGKILL, for the group's processes to exit
_POLL_S = 0.25


class ServerError(GreenbenchError):
    """A server that cannot be reached, started, or kept running; one line plus the log's tail."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port free on ``host`` now (the server binds it a moment later; a clash fails the start)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def command_args(template: str, fields: Mapping[str, Any]) -> list[str]:
    """The launch template split like a shell would, then each word filled from ``fields``
    (``{model}``, ``{port}``, a sweep's own ``{max_num_seqs}``). Words are filled after splitting,
    so a value with spaces or quotes stays one argument and is never run by a shell."""
    try:
        words = shlex.split(template)
    except ValueError as e:
        raise ServerError(f"launch template {template!r}: {e}") from None
    if not words:
        raise ServerError("launch template is empty")
    out = []
    for w in words:
        try:
            out.append(w.format_map(fields))
        except KeyError as e:
            known = ", ".join("{" + k + "}" for k in fields)
            raise ServerError(f"launch template names {{{e.args[0]}}}, which is not a field here "
                              f"(known: {known})") from None
        except (ValueError, IndexError) as e:
            raise ServerError(f"launch template word {w!r}: {e} (write a literal brace as {{{{ or }}}})") from None
    return out


def group_pids(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group, from /proc (Linux; none elsewhere)."""
    pids = []
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:
        return []
    for d in entries:
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(d.name))
    return pids


def log_tail(path: Path, lines: int = 12) -> str:
    """The last ``lines`` lines of a server log (what a failed point records)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def get_json(url: str, timeout_s: float = 5.0) -> Any:
    """GET ``url`` and parse its JSON; ``OSError`` or ``ValueError`` when it cannot."""
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout_s) as r:  # noqa: S310 -- the user's own server URL
        return json.loads(r.read().decode("utf-8"))


def served_models(base_url: str, timeout_s: float = 5.0) -> list[str]:
    """The model ids ``GET /v1/models`` lists."""
    doc = get_json(base_url.rstrip("/") + "/models", timeout_s)
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise ValueError("GET /models did not return an OpenAI model list")
    return [str(m.get("id")) for m in data if isinstance(m, dict)]


def tokenize(base_url: str, model: str, text: str, timeout_s: float = 10.0) -> list[int] | None:
    """The server's token ids for ``text`` without special tokens (``POST /tokenize`` at its root,
    which vLLM and SGLang have), or None where it has none."""
    body = json.dumps({"model": model, "prompt": text, "add_special_tokens": False}).encode()
    req = urllib.request.Request(base_url.rstrip("/").removesuffix("/v1") + "/tokenize", data=body,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:  # noqa: S310 -- the ladder's own server
            ids = json.loads(r.read().decode("utf-8")).get("tokens")
    except (OSError, ValueError, AttributeError):
        return None
    return [int(i) for i in ids] if isinstance(ids, list) and all(isinstance(i, int) for i in ids) else None


def engine_version(base_url: str) -> dict[str, str]:
    """The engine's name (``owned_by`` of the model list: vLLM says "vllm") and version (vLLM's
    ``GET /version``), where the server says them; nothing is guessed."""
    info: dict[str, str] = {}
    try:
        doc = get_json(base_url.rstrip("/") + "/models", 2.0)
        owners = {m.get("owned_by") for m in doc.get("data", []) if isinstance(m, dict)}
        if len(owners) == 1 and isinstance(next(iter(owners)), str):
            info["engine"] = str(next(iter(owners)))
    except (OSError, ValueError, AttributeError):
        pass
    try:
        doc = get_json(base_url.rstrip("/").removesuffix("/v1") + "/version", 2.0)
        if isinstance(doc, dict) and isinstance(doc.get("version"), str):
            info["engine_version"] = doc["version"]
    except (OSError, ValueError):
        pass
    return info


@dataclass
class Server:
    """A server to send requests to; ``stop`` ends a launched one (an attached one is the user's)."""

    base_url: str
    launched: bool = False
    log_path: Path | None = None
    command: list[str] = field(default_factory=list)
    _proc: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        return self._proc is None or self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def processes(self) -> list[int]:
        """A launched server's live processes (its guard, the engine and its workers); [] attached."""
        return [] if self._proc is None else group_pids(self._proc.pid)

    def died_message(self) -> str:
        """Why a launched server is gone, with its log's last lines."""
        code = None if self._proc is None else self._proc.poll()
        tail = log_tail(self.log_path) if self.log_path else ""
        return (f"server exited with code {code}" + (f"; log {self.log_path}" if self.log_path else "")
                + (f"; its last lines:\n{tail}" if tail else ""))

    def stop(self) -> None:
        """Signal the launch's process group, wait for the guard, then kill whatever is left."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        _PROCS.pop(id(proc), None)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # workers that outlived the guard
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        # A killed process with gigabytes mapped (an engine's KV cache) takes a moment to go:
        # return only when the whole group is gone, so that nothing of the launch outlives us.
        deadline = time.monotonic() + KILL_WAIT_S
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.05)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_PROCS: dict[int, Server] = {}  # launched and not yet stopped


@atexit.register
def _stop_all() -> None:  # an exception that ends greenbench still stops its servers
    for s in list(_PROCS.values()):
        s.stop()


def attach(url: str, timeout_s: float = 10.0) -> Server:
    """A server the user runs: checked to answer ``GET /models`` now, never started or stopped."""
    base = url.rstrip("/")
    try:
        served_models(base, timeout_s)
    except (OSError, ValueError) as e:
        raise ServerError(f"server {base} does not answer GET /models: {e}") from None
    return Server(base_url=base)


def launch(template: str, fields: Mapping[str, Any], log_path: Path, *, ready_timeout_s: float = 300.0,
           host: str = LOOPBACK, env: Mapping[str, str] | None = None) -> Server:
    """Start the template's command (``{port}``, ``{host}`` and ``{model}`` among its fields), wait
    until it answers ``GET /v1/models``, and return it. The log is (re)written at ``log_path``."""
    fields = {"host": host, **fields}
    if "port" not in fields:
        fields["port"] = free_port(host)
    args = command_args(template, fields)
    base = f"http://{host}:{fields['port']}/v1"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        log.write(f"# greenbench launched: {shlex.join(args)}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "greenbench.serving.guard", str(os.getpid()), "--", *args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=None if env is None else {**os.environ, **env})
        except OSError as e:
            raise ServerError(f"cannot start the server: {e.strerror or e}") from None
    server = Server(base_url=base, launched=True, log_path=log_path, command=args, _proc=proc)
    _PROCS[id(proc)] = server
    try:
        _wait_ready(server, ready_timeout_s)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: Server, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if not server.alive():
            raise ServerError(f"the server did not start: {server.died_message()}")
        try:
            served_models(server.base_url, timeout_s=2.0)
            return
        except (OSError, ValueError) as e:  # not listening yet, or not ready to list models
            last = str(getattr(e, "reason", e))
        time.sleep(_POLL_S)
    tail = log_tail(server.log_path) if server.log_path else ""
    raise ServerError(f"the server was not ready after {timeout_s:g} s (last: {last}); log {server.log_path}"
                      + (f"; its last lines:\n{tail}" if tail else ""))
