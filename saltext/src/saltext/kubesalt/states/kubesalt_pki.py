"""
The cluster's certificates, issued and renewed on the CA host by
``kubesalt pki issue``.

.. code-block:: yaml

    cluster-certificates:
      kubesalt_pki.certificates_issued:
        - renew_before: 720h
"""

__virtualname__ = "kubesalt_pki"

import saltext.kubesalt.utils.binary as kb  # noqa: E402
import saltext.kubesalt.utils.state as ks  # noqa: E402


def __virtual__():
    reason = kb.missing(__opts__, kb.KUBESALT)
    if reason:
        return False, f"kubesalt_pki: {reason}"
    return __virtualname__


def certificates_issued(name, definition=None, pki_dir=None, renew_before=None, reissue=None):
    """
    The CA and every certificate, kubeconfig and key of the definition
    exist in ``pki_dir`` (default ``kubesalt.pki_dir``) and none expires
    within ``renew_before``. After a real run the state also carries the
    ``pki check`` result, so the returner records the days left.
    """
    test = bool(__opts__.get("test"))
    ret = ks.call(
        name,
        "pki issue",
        test,
        __salt__["kubesalt_pki.issue"],
        definition=definition,
        pki_dir=pki_dir,
        renew_before=renew_before,
        reissue=reissue,
        test=test,
    )
    if ret["result"] and not test:
        try:
            check = __salt__["kubesalt_pki.check"](pki_dir=pki_dir, renew_before=renew_before)
            ret["kubesalt"] = [ret["kubesalt"], ks.block("pki check", False, check)]
        except kb.KubesaltError as exc:
            ret["comment"] += f"; check afterwards failed: {exc}"
    return ret
