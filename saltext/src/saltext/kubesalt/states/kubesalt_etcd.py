"""
An etcd member restored from a snapshot (``orch.kubernetes.etcd_restore``).

.. code-block:: yaml

    etcd-restored:
      kubesalt_etcd.restored:
        - name: /var/lib/etcd
        - snapshot: /var/lib/kubesalt/etcd-backup/restore.db
        - member: master-0
        - peer_url: https://192.168.170.10:2380
        - initial_cluster: master-0=https://192.168.170.10:2380,...
        - token: kubesalt-etcd
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
