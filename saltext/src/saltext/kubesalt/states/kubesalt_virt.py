"""
The cluster's libvirt network and node VMs, on the hypervisor.

.. code-block:: yaml

    cluster-network:
      kubesalt_virt.network_running: []

    worker-3:
      kubesalt_virt.node_running:
        - require:
          - kubesalt_virt: cluster-network

    # or every node placed on this hypervisor:
    cluster-vms:
      kubesalt_virt.nodes_running:
        - require:
          - kubesalt_virt: cluster-network
"""

__virtualname__ = "kubesalt_virt"

import saltext.kubesalt.utils.binary as kb  # noqa: E402
import saltext.kubesalt.utils.state as ks  # noqa: E402


def __virtual__():
    reason = kb.missing(__opts__, kb.KUBESALT_VIRT)
    if reason:
        return False, f"kubesalt_virt: {reason}"
    return __virtualname__


def network_running(name, definition=None, connect=None, update=False):
    """
    The definition's libvirt network is defined, active and autostarted
    (``update: True`` also redefines it when it drifted).
    """
    test = bool(__opts__.get("test"))
    return ks.call(
        name,
        "virt network ensure",
        test,
        __salt__["kubesalt_virt.network_ensure"],
        definition=definition,
        connect=connect,
        update=update,
        test=test,
    )


def node_running(name, definition=None, connect=None, master_pki_dir=None, update=False):
    """
    The node ``name``'s VM exists (disk, cloud-init seed, domain, accepted
    minion key) and runs. Creating it fires ``kubesalt/virt/<name>/created``.
    """
    test = bool(__opts__.get("test"))
    return ks.call(
        name,
        "virt node ensure",
        test,
        __salt__["kubesalt_virt.node_ensure"],
        node=name,
        definition=definition,
        connect=connect,
        master_pki_dir=master_pki_dir,
        update=update,
        test=test,
    )


def nodes_running(name, definition=None, connect=None, master_pki_dir=None, update=False):
    """
    Every node VM placed on this hypervisor (with several hypervisors in
    the definition; else every node) exists and runs. ``name`` is only the
    state's id.
    """
    test = bool(__opts__.get("test"))
    return ks.call(
        name,
        "virt node ensure",
        test,
        __salt__["kubesalt_virt.node_ensure"],
        definition=definition,
        connect=connect,
        master_pki_dir=master_pki_dir,
        update=update,
        test=test,
    )


def node_absent(name, definition=None, connect=None, master_pki_dir=None):
    """The node ``name``'s VM, disk, seed and minion key are gone."""
    test = bool(__opts__.get("test"))
    return ks.call(
        name,
        "virt node remove",
        test,
        __salt__["kubesalt_virt.node_remove"],
        node=name,
        definition=definition,
        connect=connect,
        master_pki_dir=master_pki_dir,
        test=test,
    )
