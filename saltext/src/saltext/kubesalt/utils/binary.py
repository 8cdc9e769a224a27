"""
Run a kubesalt binary and return its JSON result.

The one place the extension talks to the binaries: it builds nothing but the
command line and standard input, and turns every way a run can go wrong (no
binary, no JSON, a non-zero exit, a timeout) into a KubesaltError that says
what happened and carries the binary's standard error.
"""

import json
import logging
import os
import socket
import subprocess
import sys

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

DEFAULT_BIN_DIR = "/usr/local/bin"
DEFAULT_TIMEOUT = 300
DEFAULT_PLAN_FILE = "/var/lib/kubesalt/plan.json"
DEFAULT_PKI_DIR = "/var/lib/kubesalt/pki"
DEFAULT_STATUS_DB = "/var/lib/kubesalt/status.db"

KUBESALT = "kubesalt"
KUBESALT_VIRT = "kubesalt-virt"


class KubesaltError(CommandExecutionError):
    """
    A binary run that did not succeed. ``result`` is the binary's JSON when
    it printed one (a failed run still says why), ``stderr`` its standard
    error, ``retcode`` its exit code (None when it never ran or was killed).
    """

    def __init__(self, message, result=None, stderr="", retcode=None):
        super().__init__(message)
        self.result = result
        self.stderr = stderr
        self.retcode = retcode


def option(opts, name, default=None):
    """
    The ``kubesalt.<name>`` option, flat (``kubesalt.bin_dir: ...``) or
    nested (``kubesalt: {bin_dir: ...}``).
    """
    value = opts.get(f"kubesalt.{name}")
    if value is not None:
        return value
    nested = opts.get("kubesalt")
    if isinstance(nested, dict) and nested.get(name) is not None:
        return nested[name]
    return default


def path(opts, binary):
    return os.path.join(option(opts, "bin_dir", DEFAULT_BIN_DIR), binary)


def missing(opts, binary):
    """None when the binary is there and executable, else the reason."""
    p = path(opts, binary)
    if not os.path.isfile(p):
        return f"the {binary} binary is not at {p}; install it there or set kubesalt.bin_dir"
    if not os.access(p, os.X_OK):
        return f"{p} is not executable; chmod +x it"
    return None


def netlink_missing():
    """None when Linux rtnetlink is usable, else the reason."""
    if not sys.platform.startswith("linux") or not hasattr(socket, "AF_NETLINK"):
        return f"routes need Linux netlink; this is {sys.platform}"
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close()  # 0 = NETLINK_ROUTE
    except OSError as exc:
        return f"cannot open a netlink route socket: {exc}"
    return None


def to_stdin(data):
    """Structured data goes to the binary as JSON; a string as it is."""
    if data is None:
        return None
    if isinstance(data, (bytes, str)):
        return data if isinstance(data, bytes) else data.encode()
    return json.dumps(data, default=str).encode()


def run(opts, binary, args, stdin=None, timeout=None):
    """
    Run ``<bin_dir>/<binary> <args>`` with ``stdin`` (dict/list as JSON) and
    return the JSON object it printed. Raises KubesaltError unless it exited
    0 with one JSON object.
    """
    exe = path(opts, binary)
    cmd = [exe, *[str(a) for a in args]]
    timeout = float(timeout or option(opts, "timeout", DEFAULT_TIMEOUT))
    shown = " ".join([binary, *cmd[1:]])
    log.debug("kubesalt: running %s", shown)
    try:
        proc = subprocess.run(
            cmd,
            input=to_stdin(stdin) or b"",
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise KubesaltError(
            f"{shown}: the {binary} binary is not at {exe}; install it there or set kubesalt.bin_dir"
        ) from None
    except PermissionError as exc:
        raise KubesaltError(f"{shown}: cannot run {exe}: {exc.strerror}; make it executable") from None
    except subprocess.TimeoutExpired as exc:
        stderr = _text(exc.stderr)
        raise KubesaltError(
            f"{shown}: timed out after {timeout:g}s and was killed; raise kubesalt.timeout"
            + _stderr_note(stderr),
            stderr=stderr,
        ) from None
    except OSError as exc:
        raise KubesaltError(f"{shown}: cannot run {exe}: {exc}") from None

    stdout, stderr = _text(proc.stdout), _text(proc.stderr)
    try:
        result = json.loads(stdout)
        if not isinstance(result, dict):
            raise ValueError("not an object")
    except ValueError:
        raise KubesaltError(
            f"{shown}: printed no JSON result (exit {proc.returncode})" + _stderr_note(stderr),
            stderr=stderr,
            retcode=proc.returncode,
        ) from None
    if proc.returncode != 0:
        what = "bad input" if proc.returncode == 2 else "failed"
        comment = result.get("comment") or "no comment"
        # Most binaries print "error: <the comment>" on stderr: say it once.
        said = stderr.strip().removeprefix("error:").strip()
        note = _stderr_note(stderr) if said and said not in comment else ""
        raise KubesaltError(
            f"{shown}: {what} (exit {proc.returncode}): {comment}" + note,
            result=result,
            stderr=stderr,
            retcode=proc.returncode,
        )
    return result


def _text(b):
    if b is None:
        return ""
    return b.decode(errors="replace") if isinstance(b, bytes) else b


def _stderr_note(stderr):
    stderr = stderr.strip()
    return f"; stderr: {stderr}" if stderr else "; it wrote nothing on stderr"


def definition_input(definition, pillar):
    """
    The ``--definition`` argument and stdin for a cluster definition given
    as a file name, as data, or (None) as the ``kubernetes`` pillar.
    """
    if definition is None:
        definition = pillar.get("kubernetes")
        if not definition:
            raise KubesaltError(
                "no cluster definition: give definition=<file or data> or set the kubernetes pillar "
                "(see pillar.example)"
            )
    if isinstance(definition, str):
        return ["--definition", definition], None
    return ["--definition", "-"], definition


def nodes_input(nodes, pillar):
    """
    The ``--nodes`` argument and stdin for a node list given as a file
    name, as data, or (None) as ``kubesalt:nodes`` from the ext_pillar.
    """
    if nodes is None:
        nodes = (pillar.get("kubesalt") or {}).get("nodes")
        if nodes is None:
            raise KubesaltError(
                "no node list: give nodes=<file or list> or enable the kubesalt ext_pillar, "
                "which puts it in kubesalt:nodes"
            )
    if isinstance(nodes, str):
        return ["--nodes", nodes], None
    return ["--nodes", "-"], nodes


def test_mode(opts, test):
    """Salt's test=True: the argument if given, else the run's option."""
    if test is None:
        return bool(opts.get("test", False))
    return bool(test)


def flags(**values):
    """
    Command-line flags from keyword values: None and False are left out,
    True is a bare flag, a list repeats the flag.
    """
    out = []
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            out.append(flag)
        elif isinstance(value, (list, tuple)):
            for v in value:
                out += [flag, str(v)]
        else:
            out += [flag, str(value)]
    return out
