"""
Turn a binary's JSON result into a state return.

The binary's result already has the keys and meaning of a state return
(``result`` None = test mode with changes pending), so this only copies them,
and adds the ``kubesalt`` block: the binary's full result, so the kubesalt
returner can record what it saw (routes desired/present/failed, ...) even when
the state has no changes.
"""

from salt.exceptions import CommandExecutionError


def block(command, test, result, **extra):
    """One entry of a state return's ``kubesalt`` key."""
    return {"command": command, "test": bool(test), "result": result, **extra}


def call(name, command, test, fn, /, **kwargs):
    """
    Run ``fn(**kwargs)`` (an execution module function) and build the state
    return. A failed run is result False with the binary's reason, never an
    exception.
    """
    try:
        res = fn(**kwargs)
    except CommandExecutionError as exc:
        ret = {"name": name, "result": False, "changes": {}, "comment": str(exc)}
        result = getattr(exc, "result", None)
        if result is not None:
            ret["changes"] = result.get("changes") or {}
            ret["kubesalt"] = block(command, test, result)
        return ret
    return {
        "name": name,
        "result": res.get("result"),
        "changes": res.get("changes") or {},
        "comment": res.get("comment") or "",
        "kubesalt": block(command, test, res),
    }
