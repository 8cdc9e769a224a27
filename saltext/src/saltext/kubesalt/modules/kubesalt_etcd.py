"""
etcd's member list kept to the cluster definition's masters: ``kubesalt etcd
prune``. Returns the binary's JSON result ``{"result", "changes", "comment",
"data"}``.

Options: ``kubesalt.bin_dir`` (default /usr/local/bin), ``kubesalt.timeout``.
"""

import saltext.kubesalt.utils.binary as kb

__virtualname__ = "kubesalt_etcd"


def __virtual__():
    reason = kb.missing(__opts__, kb.KUBESALT)
    if reason:
        return False, f"kubesalt_etcd: {reason}"
    return __virtualname__


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
