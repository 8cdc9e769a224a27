"""
The cluster's VMs on libvirt: ``kubesalt-virt``. Runs on the hypervisor.
After it creates a node's domain it fires ``kubesalt/virt/<node>/created``
on the event bus, so a reactor can accept the key and run the node's states.

Options: ``kubesalt.bin_dir``, ``kubesalt.timeout``.
"""

import logging

import saltext.kubesalt.utils.binary as kb

log = logging.getLogger(__name__)

__virtualname__ = "kubesalt_virt"
__func_alias__ = {"list_": "list"}


def __virtual__():
    reason = kb.missing(__opts__, kb.KUBESALT_VIRT)
    if reason:
        return False, f"kubesalt_virt: {reason}"
    return __virtualname__


def _run(args, stdin=None):
    return kb.run(__opts__, kb.KUBESALT_VIRT, args, stdin)


def _names(node):
    if node is None:
        return None
    return [node] if isinstance(node, str) else list(node)


def _hypervisor(hypervisor):
    # With several hypervisors in the definition the binary places the
    # nodes; this minion is the one named by its id unless told otherwise.
    return hypervisor or __opts__.get("id")


def network_ensure(definition=None, connect=None, update=False, test=None, hypervisor=None):
    """
    Define, start and autostart the cluster's libvirt network.

    CLI Example:

    .. code-block:: bash

        salt hypervisor kubesalt_virt.network_ensure test=True
    """
    args, stdin = kb.definition_input(definition, __pillar__)
    args += kb.flags(
        connect=connect,
        hypervisor=_hypervisor(hypervisor),
        update=bool(update),
        test=kb.test_mode(__opts__, test),
    )
    return _run(["network", "ensure", *args], stdin)


def node_ensure(
    node=None, definition=None, connect=None, master_pki_dir=None, update=False, test=None, hypervisor=None
):
    """
    Create and start the node VMs (``node``: one name or a list; default
    every node of the definition, or with several hypervisors every node
    placed on this one), and fire ``kubesalt/virt/<node>/created`` for each
    one whose domain was created.

    CLI Example:

    .. code-block:: bash

        salt hypervisor kubesalt_virt.node_ensure worker-3
    """
    test = kb.test_mode(__opts__, test)
    args, stdin = kb.definition_input(definition, __pillar__)
    args += kb.flags(
        node=_names(node),
        connect=connect,
        hypervisor=_hypervisor(hypervisor),
        master_pki_dir=master_pki_dir,
        update=bool(update),
        test=test,
    )
    ret = _run(["node", "ensure", *args], stdin)
    if not test:
        _fire_created(ret)
    return ret


def _fire_created(ret):
    nodes = (ret.get("data") or {}).get("nodes") or {}
    for name, change in sorted((ret.get("changes") or {}).items()):
        if isinstance(change, dict) and "domain" in (change.get("created") or []):
            tag = f"kubesalt/virt/{name}/created"
            try:
                __salt__["event.send"](
                    tag, {"node": name, "created": change["created"], **nodes.get(name, {})}
                )
            except Exception as exc:  # pylint: disable=broad-except
                # The VM exists; a lost event must not turn that into a failure.
                log.error("kubesalt_virt: could not fire %s: %s", tag, exc)


def node_remove(node, definition=None, connect=None, master_pki_dir=None, test=None, hypervisor=None):
    """
    Remove node VMs: domain, disk, seed, and the accepted minion key.

    CLI Example:

    .. code-block:: bash

        salt hypervisor kubesalt_virt.node_remove worker-3
    """
    args, stdin = kb.definition_input(definition, __pillar__)
    args += kb.flags(
        node=_names(node),
        connect=connect,
        hypervisor=_hypervisor(hypervisor),
        master_pki_dir=master_pki_dir,
        test=kb.test_mode(__opts__, test),
    )
    return _run(["node", "remove", *args], stdin)


def list_(connect=None):
    """
    The domains on the hypervisor (``data.domains``).

    CLI Example:

    .. code-block:: bash

        salt hypervisor kubesalt_virt.list
    """
    return _run(["list", *kb.flags(connect=connect)])
