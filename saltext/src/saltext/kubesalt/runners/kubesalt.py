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


def status(
    definition=None,
    plan_file=None,
    db=None,
    expiring_days=None,
    table=False,
    discovered=None,
    stale_after=None,
):
    """
    Every node of the definition and plan: IP, pod CIDR, whether its routes
    converged with the current plan, when it last reported (and whether that
    was before the plan changed), its last successful state run (stale when
    older than two reconcile intervals), certificates expiring, VM state.

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
    stale_after
        Flag a node without a successful state run for this long (a Go
        duration; default two ``kubernetes:reconcile:interval`` of the
        definition, ``0`` never).
    """
    args = ["status", "show", *_store_args(db, plan_file, definition)]
    args += kb.flags(expiring_days=expiring_days, discovered=discovered, stale_after=stale_after)
    if not table:
        return kb.run(__opts__, kb.KUBESALT, args)
    return _table(args)


def add_needed(node, definition=None, plan_file=None, db=None):
    """
    Whether the node whose minion started (its name or minion id) needs
    ``orch.kubernetes.add_node``, and why: ``data.add_needed``, ``data.why``
    (``kubesalt status add-needed``). The minion-start reactor asks this
    before it starts an orchestration: many minions starting at once would
    otherwise start one orchestration each.
    """
    args = ["status", "add-needed", "--node", node, *_store_args(db, plan_file, definition)]
    return kb.run(__opts__, kb.KUBESALT, args)


def _store_args(db, plan_file, definition):
    """The status store, plan and definition flags of `kubesalt status`:
    the given ones, else the master's options and the ext_pillar's."""
    db = db or kb.option(__opts__, "status_db", kb.DEFAULT_STATUS_DB)
    plan_file = (
        plan_file or _ext_pillar_option("plan_file") or kb.option(__opts__, "plan_file", kb.DEFAULT_PLAN_FILE)
    )
    definition = definition or _ext_pillar_option("definition")
    return ["--db", db, "--plan", plan_file, *kb.flags(definition=definition)]


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


def etcd_snapshot_send(tgt, dest, snapshot=None, tgt_type="compound", chunk_mb=4):
    """
    Send one etcd snapshot from the master to the minions ``tgt`` at
    ``dest`` (mode 0600), in chunks, as ``salt-cp --chunked`` does
    (``cp.recv_chunked``): only the targeted minions get it, never the file
    server. ``snapshot``: a file on the master; default the newest copy the
    masters pushed (``kubesalt_etcd.snapshot``).

    .. code-block:: bash

        salt-run kubesalt.etcd_snapshot_send 'I@kubesalt:role:master' /var/lib/kubesalt/etcd-backup/restore.db
    """
    import base64  # pylint: disable=import-outside-toplevel
    import glob  # pylint: disable=import-outside-toplevel
    import os  # pylint: disable=import-outside-toplevel

    import salt.client  # pylint: disable=import-outside-toplevel
    import salt.utils.gzip_util  # pylint: disable=import-outside-toplevel

    if not snapshot:
        pushed = glob.glob(
            os.path.join(__opts__["cachedir"], "minions", "*", "files", "kubesalt-etcd", "latest.db")
        )
        if not pushed:
            raise kb.KubesaltError(
                "no etcd snapshot on the master: the masters push one with each scheduled "
                "kubesalt_etcd.snapshot (kubernetes:etcd:backup); run it once, or give snapshot=<file>"
            )
        snapshot = max(pushed, key=os.path.getmtime)
    if not os.path.isfile(snapshot):
        raise kb.KubesaltError(f"snapshot {snapshot}: no such file on the master; give an etcd snapshot file")
    client = salt.client.get_local_client(__opts__["conf_file"])
    size = os.path.getsize(snapshot)
    received = None
    with open(snapshot, "rb") as f:
        for i in range(max(1, -(-size // (chunk_mb << 20)))):
            chunk = base64.b64encode(salt.utils.gzip_util.compress(f.read(chunk_mb << 20))).decode()
            ret = client.cmd(
                tgt, "cp.recv_chunked", [dest, chunk, i > 0, True, 0o600], tgt_type=tgt_type, timeout=120
            )
            failed = sorted(m for m, r in ret.items() if r is not True)
            if not ret or failed or (received is not None and set(ret) != received):
                raise kb.KubesaltError(
                    f"sending {snapshot} to {tgt} failed at chunk {i + 1}: "
                    + (", ".join(f"{m}: {ret[m]}" for m in failed) or f"answered: {sorted(ret)}")
                )
            received = set(ret)
    return {
        "result": True,
        "comment": f"sent {snapshot} ({size} bytes) to {len(received)} minion(s) at {dest}",
        # Flat, no "data" key: for a runner's return Salt reads "data" as
        # state returns, and would call this a failure.
        "snapshot": snapshot,
        "size": size,
        "dest": dest,
        "received": dict.fromkeys(sorted(received), True),
    }


def upgrade_plan(target, nodes, worker_batch=1, states=None, timeout=60):
    """
    The preflight and the order of a Kubernetes upgrade to ``target``
    (``kubesalt upgrade plan``): every node of ``nodes`` (``{name: role}``,
    the definition's ``kubernetes:nodes``) is asked what it runs
    (``kubesalt_upgrade.node``); a node that does not answer within
    ``timeout`` seconds is unreachable. ``states``: those answers given
    instead of asking (a list as ``kubesalt upgrade node`` prints its data).

    Returns ``result`` (False: refused, with ``comment`` and ``refused``),
    ``steps`` (kind, nodes, name; in order), ``done``, ``from``, ``target``
    and ``nodes`` (what each node runs).

    .. code-block:: bash

        salt-run kubesalt.upgrade_plan v1.36.3 '{master-0: master, worker-0: worker}' worker_batch=2
    """
    import salt.client  # pylint: disable=import-outside-toplevel

    roles = {name: (spec or {}).get("role", "") for name, spec in nodes.items()}
    if states is None:
        client = salt.client.get_local_client(__opts__["conf_file"])
        ret = client.cmd(
            sorted(roles), "kubesalt_upgrade.node", tgt_type="list", timeout=timeout, full_return=True
        )
        states = []
        for name in sorted(roles):
            answer = ret.get(name)
            if not isinstance(answer, dict) or "ret" not in answer:
                states.append({"name": name, "role": roles[name], "reachable": False})
                continue
            got = answer["ret"]
            if answer.get("retcode", 0) == 0 and isinstance(got, dict) and isinstance(got.get("data"), dict):
                states.append(got["data"])
            else:
                states.append(
                    {"name": name, "role": roles[name], "reachable": True, "problem": str(got)[:500]}
                )
    args = ["upgrade", "plan", "--target", target, "--worker-batch", int(worker_batch)]
    try:
        res = kb.run(__opts__, kb.KUBESALT, args, {"nodes": states})
    except kb.KubesaltError as exc:
        refused = (getattr(exc, "result", None) or {}).get("data") or {}
        if not refused.get("refused"):
            raise
        return {
            "result": False,
            "comment": exc.result["comment"],
            "refused": refused["refused"],
            "nodes": states,
        }
    # Flat, no "data" key (see etcd_snapshot_send).
    plan = res["data"]
    return {"result": True, "comment": res["comment"], "nodes": states, **plan}


# Salt's answers from a minion where the module did not load (the first
# when the minion never tried, the second when its __virtual__ said why):
# kubesalt is not installed there yet, so its own highstate
# (kubernetes.routes first) routes it.
_NOT_LOADED = ("'kubesalt_net.routes_sync' is not available", "'kubesalt_net' __virtual__ returned False")


def routes_publish(
    tgt, tgt_type="compound", adopt=False, protocol=None, record=None, attempts=3, interval=15, timeout=300
):
    """
    ``kubesalt_net.routes_sync`` on every minion of ``tgt`` the master is
    connected to, with the node list of the pillar compiled once for the
    call (else each minion compiles a fresh pillar). It waits up to
    ``timeout`` seconds for their answers (a slow machine, an emulated CPU,
    takes minutes, and asking it again only piles more jobs on it); one that
    answers with a failure gets the call again, up to ``attempts`` times,
    ``interval`` seconds apart. Skipped, and said so: a minion the master
    has no connection to (it routes when it starts: the minion-start
    reactor's add_node) and one where kubesalt is not installed yet (its
    highstate routes it).

    Returns ``result``, ``comment``, ``synced``, ``skipped`` and ``failed``
    (each by minion); fails the orchestration step when a minion failed.

    .. code-block:: bash

        salt-run kubesalt.routes_publish 'I@kubesalt:node:* and not L@w3' record=/var/lib/kubesalt/routes.json
    """
    import time  # pylint: disable=import-outside-toplevel

    import salt.client  # pylint: disable=import-outside-toplevel
    import salt.utils.minions  # pylint: disable=import-outside-toplevel

    ck = salt.utils.minions.CkMinions(__opts__)
    targets = set(ck.check_minions(tgt, tgt_type)["minions"])
    # Salt tells a connection by the minion's address in its cached grains;
    # none found (minions behind NAT): every target is asked.
    connected = ck.connected_ids() or targets
    skipped = dict.fromkeys(
        sorted(targets - connected), "not connected to the master: it routes when its minion starts"
    )
    client = salt.client.get_local_client(__opts__["conf_file"])
    synced, failed = {}, {}
    pending = sorted(targets & connected)
    # Every node's pillar has the same node list: compiled once here, not
    # once per minion on its call (at 20 minions, 20 compiles queued on the
    # master's workers).
    nodes, revision = _node_list(pending[0]) if pending else (None, None)
    kwarg = {"adopt": bool(adopt), "protocol": protocol, "record": record}
    kwarg.update({"nodes": nodes, "revision": revision} if nodes else {"fresh_pillar": True})
    kwarg = {k: v for k, v in kwarg.items() if v is not None}
    for attempt in range(1, int(attempts) + 1):
        if not pending:
            break
        ret = client.cmd(
            pending,
            "kubesalt_net.routes_sync",
            kwarg=kwarg,
            tgt_type="list",
            timeout=timeout,
            full_return=True,
            expect_minions=True,
        )
        retry = []
        for minion in pending:
            answer = ret.get(minion, {"failed": True})
            answer = answer if isinstance(answer, dict) else {"ret": answer}
            got = answer.get("ret")
            failed.pop(minion, None)
            if answer.get("failed"):
                failed[minion] = f"gave no answer within {timeout} s"
            elif answer.get("retcode", 0) == 0 and isinstance(got, dict) and got.get("result") is not False:
                synced[minion] = got.get("comment", "")
            elif any(reason in str(got) for reason in _NOT_LOADED):
                skipped[minion] = "kubesalt is not installed yet: its highstate routes it"
            else:
                failed[minion] = str(got.get("comment") if isinstance(got, dict) else got)[:500]
                retry.append(minion)
        pending = retry
        if pending and attempt < int(attempts):
            time.sleep(float(interval))
    if failed:
        __context__["retcode"] = 1
    comment = f"routes synced on {len(synced)} minion(s)"
    if skipped:
        comment += f", skipped on {len(skipped)} ({', '.join(sorted(skipped))})"
    if failed:
        comment += f"; failed on {', '.join(f'{m}: {r}' for m, r in sorted(failed.items()))}"
    # Flat, no "data" key (see etcd_snapshot_send).
    return {"result": not failed, "comment": comment, "synced": synced, "skipped": skipped, "failed": failed}


def _node_list(minion):
    """``kubesalt:nodes`` and ``kubesalt:revision`` of ``minion``'s
    pillar, compiled on the master with its cached grains; None when it
    has none."""
    import salt.cache  # pylint: disable=import-outside-toplevel
    import salt.pillar  # pylint: disable=import-outside-toplevel

    data = salt.cache.factory(__opts__).fetch(f"minions/{minion}", "data") or {}
    pillar = salt.pillar.get_pillar(
        __opts__,
        data.get("grains") or {},
        minion,
        saltenv=__opts__.get("saltenv") or "base",
        pillarenv=__opts__.get("pillarenv"),
    ).compile_pillar()
    own = (pillar or {}).get("kubesalt") or {}
    return own.get("nodes"), own.get("revision")


def wait_up(tgt, timeout=900, answer_within=300, interval=2):
    """
    Wait until minion ``tgt`` answers ``test.ping``, putting as few jobs on
    it as it can: a slow machine (an emulated CPU) takes minutes per job,
    and pings asked every few seconds queue up behind each other until none
    is answered in time. While the master sees no connection from ``tgt``,
    nothing is published (a publish it is not connected for is lost); once
    it is connected (or the master sees no minion's connection: NAT), one
    ``test.ping`` is given ``answer_within`` seconds, and asked again only
    after that. Fails after ``timeout`` seconds.

    .. code-block:: bash

        salt-run kubesalt.wait_up worker-3
    """
    import time  # pylint: disable=import-outside-toplevel

    import salt.client  # pylint: disable=import-outside-toplevel
    import salt.utils.minions  # pylint: disable=import-outside-toplevel

    ck = salt.utils.minions.CkMinions(__opts__)
    client = salt.client.get_local_client(__opts__["conf_file"])
    start = time.monotonic()
    deadline = start + float(timeout)
    asked = 0
    while True:
        connected = ck.connected_ids()
        if not connected or tgt in connected:
            asked += 1
            within = max(1, min(float(answer_within), deadline - time.monotonic()))
            ret = client.cmd(tgt, "test.ping", tgt_type="list", timeout=within)
            if ret.get(tgt) is True:
                return {
                    "result": True,
                    "comment": f"{tgt} answered after {time.monotonic() - start:.1f} s ({asked} ping(s))",
                }
        if time.monotonic() >= deadline:
            break
        time.sleep(float(interval))
    __context__["retcode"] = 1
    state = "connected, no answer" if tgt in ck.connected_ids() else "not connected to the master"
    return {
        "result": False,
        "comment": f"{tgt} did not answer within {timeout} s ({state}; {asked} ping(s)): "
        "see its minion log; a new VM's cloud-init starts it",
    }
