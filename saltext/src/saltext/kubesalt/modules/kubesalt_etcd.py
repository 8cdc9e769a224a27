"""
etcd on the masters: snapshots (``kubesalt etcd snapshot`` and ``kubesalt
etcd restore``) and the member list kept to the definition's masters
(``kubesalt etcd prune``). The formula's Salt schedule (``kubernetes:etcd:backup``)
calls ``snapshot`` on every master; ``orch.kubernetes.etcd_restore`` calls
``restore`` through the state ``kubesalt_etcd.restored``.

Options: ``kubesalt.bin_dir``, ``kubesalt.timeout``.
"""

import saltext.kubesalt.utils.binary as kb

__virtualname__ = "kubesalt_etcd"

# Where cp.push puts the newest snapshot on the master, under the pushing
# minion's files (<cachedir>/minions/<id>/files/...); the runner
# kubesalt.etcd_snapshot_send reads it from there.
PUSH_PATH = "/kubesalt-etcd/latest.db"


def __virtual__():
    reason = kb.missing(__opts__, kb.KUBESALT)
    if reason:
        return False, f"kubesalt_etcd: {reason}"
    return __virtualname__


def snapshot(
    dir,  # pylint: disable=redefined-builtin
    member,
    keep=None,
    endpoints=None,
    cacert=None,
    cert=None,
    key=None,
    etcdctl=None,
    push=True,
    test=None,
):
    """
    Take a snapshot of etcd into ``dir``, keep the newest ``keep``, and
    (``push``) copy it to the Salt master with ``cp.push`` (the master needs
    ``file_recv: True``, as salt/master.d/kubesalt.conf sets).

    CLI Example:

    .. code-block:: bash

        salt -C 'I@kubesalt:role:master' kubesalt_etcd.snapshot /var/lib/kubesalt/etcd-backup master-0
    """
    test = kb.test_mode(__opts__, test)
    args = ["etcd", "snapshot", "--dir", dir, "--member", member]
    args += kb.flags(
        keep=keep, endpoints=endpoints, cacert=cacert, cert=cert, key=key, etcdctl=etcdctl, test=test
    )
    res = kb.run(__opts__, kb.KUBESALT, args)
    saved = (res.get("changes") or {}).get("saved")
    if push and saved and not test:
        if __salt__["cp.push"](saved, upload_path=PUSH_PATH):
            res["changes"]["pushed"] = PUSH_PATH
            res["comment"] += "; copied to the Salt master"
        else:
            res["result"] = False
            res["comment"] += (
                "; NOT copied to the Salt master: cp.push failed (set file_recv: True on the master, "
                "and file_recv_max_size above the snapshot's size in MB)"
            )
            __context__["retcode"] = 1
    return res


def restore(
    data_dir, snapshot, member, peer_url, initial_cluster, token, etcdctl=None, etcdutl=None, test=None
):
    """
    Replace this member's data directory with the snapshot's data (etcd
    must be stopped): ``etcdutl`` where installed, else 3.4's ``etcdctl``.

    CLI Example:

    .. code-block:: bash

        salt master-0 kubesalt_etcd.restore /var/lib/etcd /var/lib/kubesalt/etcd-backup/restore.db \\
            master-0 https://192.168.170.10:2380 master-0=https://192.168.170.10:2380,... kubesalt-etcd
    """
    args = ["etcd", "restore", "--data-dir", data_dir, "--snapshot", snapshot, "--member", member]
    args += ["--peer-url", peer_url, "--initial-cluster", initial_cluster, "--token", token]
    args += kb.flags(etcdctl=etcdctl, etcdutl=etcdutl, test=kb.test_mode(__opts__, test))
    return kb.run(__opts__, kb.KUBESALT, args)


def prune(keep, endpoints, cacert, cert, key, etcdctl=None, timeout=None, test=None):
    """
    Remove the etcd members whose name is not one of ``keep`` (the masters
    of the definition). A member added but not started yet is left alone;
    a ``keep`` that names none of the members removes nothing and fails.

    keep
        The masters' names.
    endpoints
        etcd client URLs to ask (the masters that stay).
    cacert, cert, key
        etcdctl's TLS files.
    etcdctl
        The etcdctl to run (default: etcdctl from PATH).
    timeout
        How long each etcdctl command may take, as a Go duration.

    CLI Example:

    .. code-block:: bash

        salt master-0 kubesalt_etcd.prune '[master-0, master-1]' '[https://192.168.170.10:2379]' \\
            /etc/kubernetes/pki/ca.pem /etc/kubernetes/pki/etcd-server.pem \\
            /etc/kubernetes/pki/etcd-server-key.pem test=True
    """
    args = kb.flags(
        keep=list(keep),
        endpoints=list(endpoints),
        cacert=cacert,
        cert=cert,
        key=key,
        etcdctl=etcdctl,
        timeout=timeout,
        test=kb.test_mode(__opts__, test),
    )
    return kb.run(__opts__, kb.KUBESALT, ["etcd", "prune", *args])
