"""
An etcd member restored from a snapshot (``orch.kubernetes.etcd_restore``),
and etcd's members kept to the definition's masters: a master that left is
removed from etcd by ``kubesalt etcd prune``.

.. code-block:: yaml

    etcd-restored:
      kubesalt_etcd.restored:
        - name: /var/lib/etcd
        - snapshot: /var/lib/kubesalt/etcd-backup/restore.db
        - member: master-0
        - peer_url: https://192.168.170.10:2380
        - initial_cluster: master-0=https://192.168.170.10:2380,...
        - token: kubesalt-etcd

    etcd-members:
      kubesalt_etcd.members_pruned:
        - keep: [master-0, master-1]
        - endpoints: [https://192.168.170.10:2379, https://192.168.170.11:2379]
        - cacert: /etc/kubernetes/pki/ca.pem
        - cert: /etc/kubernetes/pki/etcd-server.pem
        - key: /etc/kubernetes/pki/etcd-server-key.pem
"""

__virtualname__ = "kubesalt_etcd"

import saltext.kubesalt.utils.binary as kb  # noqa: E402
import saltext.kubesalt.utils.state as ks  # noqa: E402


def __virtual__():
    reason = kb.missing(__opts__, kb.KUBESALT)
    if reason:
        return False, f"kubesalt_etcd: {reason}"
    return __virtualname__


def restored(name, snapshot, member, peer_url, initial_cluster, token, etcdctl=None, etcdutl=None):
    """
    The data directory ``name`` holds the snapshot's data, as member
    ``member`` of ``initial_cluster``. Not idempotent by nature: each run
    restores again; run it from the restore orchestration only.
    """
    test = bool(__opts__.get("test"))
    return ks.call(
        name,
        "etcd restore",
        test,
        __salt__["kubesalt_etcd.restore"],
        data_dir=name,
        snapshot=snapshot,
        member=member,
        peer_url=peer_url,
        initial_cluster=initial_cluster,
        token=token,
        etcdctl=etcdctl,
        etcdutl=etcdutl,
        test=test,
    )


def members_pruned(name, keep, endpoints, cacert, cert, key, etcdctl=None, timeout=None):
    """
    Every etcd member is one of ``keep``: the others (masters that left the
    definition) are removed with ``etcdctl member remove``.
    """
    test = bool(__opts__.get("test"))
    return ks.call(
        name,
        "etcd prune",
        test,
        __salt__["kubesalt_etcd.prune"],
        keep=keep,
        endpoints=endpoints,
        cacert=cacert,
        cert=cert,
        key=key,
        etcdctl=etcdctl,
        timeout=timeout,
        test=test,
    )
