"""
The cluster's add-ons (the cluster DNS) applied through the API by
``kubesalt addons apply``; ``test=True`` reports what would be applied.

.. code-block:: yaml

    cluster-addons:
      kubesalt_addons.applied:
        - kubeconfig: /etc/kubernetes/pki/admin.kubeconfig
"""

__virtualname__ = "kubesalt_addons"

import saltext.kubesalt.utils.binary as kb  # noqa: E402
import saltext.kubesalt.utils.state as ks  # noqa: E402


def __virtual__():
    reason = kb.missing(__opts__, kb.KUBESALT)
    if reason:
        return False, f"kubesalt_addons: {reason}"
    return __virtualname__


def applied(name, kubeconfig, definition=None, kubectl=None, timeout=None, if_api_ready=False):
    """
    The add-ons' objects in the cluster are the definition's; only those
    that differ are applied.

    kubeconfig
        The admin kubeconfig.
    definition
        The cluster definition (default: the ``kubernetes`` pillar).
    kubectl
        The kubectl to run.
    timeout
        How long each kubectl may take, as a Go duration (default 60s).
    if_api_ready
        True: while the kubeconfig is not written or the API server is not
        ready, succeed doing nothing (a later run applies them). Cheaper
        than an onlyif, which makes Salt 3008 load every state module.
    """
    test = bool(__opts__.get("test"))
    return ks.call(
        name,
        "addons apply",
        test,
        __salt__["kubesalt_addons.apply"],
        kubeconfig=kubeconfig,
        definition=definition,
        kubectl=kubectl,
        test=test,
        timeout=timeout,
        if_api_ready=if_api_ready,
    )
