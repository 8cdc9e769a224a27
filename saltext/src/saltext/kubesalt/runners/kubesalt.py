"""
The cluster at a glance, on the master: ``kubesalt status show``.

.. code-block:: bash

    salt-run kubesalt.status
    salt-run kubesalt.status table=True
"""

import saltext.kubesalt.utils.binary as kb

__virtualname__ = "kubesalt"


def __virtual__():
    reason = kb.missing(__opts__, kb.KUBESALT)
    if reason:
        return False, f"kubesalt runner: {reason}"
    return __virtualname__


def status(definition=None, plan_file=None, db=None, expiring_days=None, table=False, discovered=None):
    """
    Every node of the definition and plan: IP, pod CIDR, whether its routes
    converged with the current plan, when it last reported (and whether that
    was before the plan changed), certificates expiring, VM state.

    definition
        The cluster definition file (default: the ext_pillar's
        ``definition`` option, else nodes come from the plan).
    plan_file
        Default: ``kubesalt.plan_file``.
    table
        True: the table for people instead of the JSON result.
    discovered
        Controller mode: a file with the pod CIDRs as ``kubesalt nodes
        discover`` prints them, instead of the plan.
    """
    db = db or kb.option(__opts__, "status_db", kb.DEFAULT_STATUS_DB)
    plan_file = (
        plan_file or _ext_pillar_option("plan_file") or kb.option(__opts__, "plan_file", kb.DEFAULT_PLAN_FILE)
    )
    definition = definition or _ext_pillar_option("definition")
    args = ["status", "show", "--db", db, "--plan", plan_file]
    args += kb.flags(definition=definition, expiring_days=expiring_days, discovered=discovered)
    if not table:
        return kb.run(__opts__, kb.KUBESALT, args)
    return _table(args)


def _table(args):
    import subprocess  # pylint: disable=import-outside-toplevel

    cmd = [kb.path(__opts__, kb.KUBESALT), *args, "--output", "table"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise kb.KubesaltError(f"kubesalt status show: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def _ext_pillar_option(name):
    for entry in __opts__.get("ext_pillar") or []:
        if isinstance(entry, dict) and isinstance(entry.get("kubesalt"), dict):
            value = entry["kubesalt"].get(name)
            if value:
                return value
    return None
