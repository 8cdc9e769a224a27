"""
Every execution module turns each failure of its binary (missing, no JSON,
non-zero exit, timeout) into a CommandExecutionError that quotes the binary's
stderr. The binaries are fakes: shell scripts that fail on purpose.
"""

import json
import stat

import pytest
from salt.exceptions import CommandExecutionError

import saltext.kubesalt.modules.kubesalt_net as net
import saltext.kubesalt.modules.kubesalt_pki as pki
import saltext.kubesalt.modules.kubesalt_virt as virt

FAILED = json.dumps({"result": False, "changes": {}, "comment": "it broke"})

SCRIPTS = {
    "missing": None,
    "no JSON": "echo 'segfault in the reconciler' >&2; echo garbage\n",
    "non-zero exit": f"echo '{FAILED}'; echo 'netlink: operation not permitted' >&2; exit 1\n",
    "timeout": "echo 'still waiting for the lock' >&2; sleep 30\n",
}
EXPECT = {
    "missing": "binary is not at",
    "no JSON": "printed no JSON result (exit 0); stderr: segfault in the reconciler",
    "non-zero exit": "failed (exit 1): it broke; stderr: netlink: operation not permitted",
    "timeout": "timed out after 0.5s and was killed; raise kubesalt.timeout; "
    "stderr: still waiting for the lock",
}
CALLS = {
    "kubesalt_net.plan": lambda: net.plan(definition="/d.yaml"),
    "kubesalt_net.routes_sync": lambda: net.routes_sync(nodes="/n.json"),
    "kubesalt_net.routes_diff": lambda: net.routes_diff(nodes="/n.json"),
    "kubesalt_net.routes_list": lambda: net.routes_list(),
    "kubesalt_net.discover": lambda: net.discover(file="/k.json"),
    "kubesalt_pki.issue": lambda: pki.issue(definition="/d.yaml"),
    "kubesalt_pki.check": lambda: pki.check(),
    "kubesalt_pki.bundle": lambda: pki.bundle("worker-0", definition="/d.yaml"),
    "kubesalt_virt.network_ensure": lambda: virt.network_ensure(definition="/d.yaml"),
    "kubesalt_virt.node_ensure": lambda: virt.node_ensure(definition="/d.yaml"),
    "kubesalt_virt.node_remove": lambda: virt.node_remove("worker-0", definition="/d.yaml"),
    "kubesalt_virt.list": lambda: virt.list_(),
}

opts = {}


@pytest.fixture
def configure_loader_modules():
    opts.clear()
    opts.update({"test": False, "kubesalt.timeout": 0.5})
    return {
        m: {"__opts__": opts, "__pillar__": {}, "__context__": {}, "__salt__": {}} for m in (net, pki, virt)
    }


@pytest.mark.parametrize("failure", list(SCRIPTS))
@pytest.mark.parametrize("function", list(CALLS))
def test_failure_is_a_clear_error(tmp_path, function, failure):
    script = SCRIPTS[failure]
    if script is not None:
        for name in ("kubesalt", "kubesalt-virt"):
            p = tmp_path / name
            p.write_text("#!/bin/sh\n" + script)
            p.chmod(p.stat().st_mode | stat.S_IXUSR)
    opts["kubesalt.bin_dir"] = str(tmp_path)
    if function == "kubesalt_pki.check" and failure == "non-zero exit":
        # A due certificate is exit 1 with a full answer: returned, the job failed.
        assert CALLS[function]()["comment"] == "it broke"
        assert pki.__context__["retcode"] == 1
        return
    with pytest.raises(CommandExecutionError) as e:
        CALLS[function]()
    assert EXPECT[failure] in str(e.value)
    assert "Traceback" not in str(e.value)
