"""
Error handling of the one function that runs the binaries. The binaries here
are fakes (shell scripts): the only way to make a real one hang, print
garbage or vanish on purpose.
"""

import json
import os
import stat

import pytest
from salt.exceptions import CommandExecutionError

import saltext.kubesalt.utils.binary as kb


def fake(tmp_path, script, name="kubesalt"):
    p = tmp_path / name
    p.write_text("#!/bin/sh\n" + script)
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return {"kubesalt.bin_dir": str(tmp_path)}


def test_missing_binary(tmp_path):
    opts = {"kubesalt.bin_dir": str(tmp_path / "nowhere")}
    with pytest.raises(CommandExecutionError) as e:
        kb.run(opts, kb.KUBESALT, ["routes", "list"])
    msg = str(e.value)
    assert "kubesalt binary is not at" in msg and "kubesalt.bin_dir" in msg
    assert kb.missing(opts, kb.KUBESALT).startswith("the kubesalt binary is not at")


def test_not_executable(tmp_path):
    (tmp_path / "kubesalt").write_text("#!/bin/sh\n")
    opts = {"kubesalt.bin_dir": str(tmp_path)}
    assert "not executable" in kb.missing(opts, kb.KUBESALT)
    if os.geteuid() != 0:  # root may run anything
        with pytest.raises(CommandExecutionError, match="cannot run"):
            kb.run(opts, kb.KUBESALT, [])


def test_no_json(tmp_path):
    opts = fake(tmp_path, 'echo "panic: runtime error" >&2; echo not json; exit 0\n')
    with pytest.raises(kb.KubesaltError) as e:
        kb.run(opts, kb.KUBESALT, ["routes", "list"])
    assert "kubesalt routes list: printed no JSON result (exit 0)" in str(e.value)
    assert "stderr: panic: runtime error" in str(e.value)
    assert e.value.retcode == 0 and e.value.result is None


def test_json_but_not_an_object(tmp_path):
    opts = fake(tmp_path, "echo '[1, 2]'\n")
    with pytest.raises(kb.KubesaltError, match="printed no JSON result"):
        kb.run(opts, kb.KUBESALT, [])


def test_nonzero_exit_keeps_result_and_stderr(tmp_path):
    res = {"result": False, "changes": {}, "comment": "2 routes failed", "data": {"failed": [1, 2]}}
    opts = fake(tmp_path, f"echo '{json.dumps(res)}'; echo 'netlink: permission denied' >&2; exit 1\n")
    with pytest.raises(kb.KubesaltError) as e:
        kb.run(opts, kb.KUBESALT, ["routes", "sync"])
    msg = str(e.value)
    assert msg.startswith("kubesalt routes sync: failed (exit 1): 2 routes failed")
    assert "stderr: netlink: permission denied" in msg
    assert e.value.result == res and e.value.retcode == 1


def test_bad_input_exit(tmp_path):
    res = {"result": False, "changes": {}, "comment": "kubernetes:nodes: no nodes; add at least one"}
    opts = fake(tmp_path, f"echo '{json.dumps(res)}'; echo 'error: kubernetes:nodes: no nodes' >&2; exit 2\n")
    with pytest.raises(kb.KubesaltError) as e:
        kb.run(opts, kb.KUBESALT, ["cidr", "plan"])
    assert "bad input (exit 2): kubernetes:nodes: no nodes" in str(e.value)
    # The comment already says what stderr says: not repeated.
    assert "stderr" not in str(e.value)


def test_timeout(tmp_path):
    opts = fake(tmp_path, "echo 'waiting for the lock' >&2; sleep 30\n")
    opts["kubesalt.timeout"] = 0.5
    with pytest.raises(kb.KubesaltError) as e:
        kb.run(opts, kb.KUBESALT, ["routes", "sync"])
    assert "timed out after 0.5s" in str(e.value) and "kubesalt.timeout" in str(e.value)
    assert "waiting for the lock" in str(e.value)


def test_stdin_and_args_reach_the_binary(tmp_path):
    # The fake echoes what it got, as JSON.
    out = '{"result": true, "changes": {}, "comment": "%s", "data": {"stdin": %s}}'
    opts = fake(tmp_path, f'in=$(cat); printf \'{out}\' "$*" "$in"\n')
    res = kb.run(opts, kb.KUBESALT, ["routes", "sync", "--nodes", "-"], {"nodes": [{"name": "a"}]})
    assert res["comment"] == "routes sync --nodes -"
    assert res["data"]["stdin"] == {"nodes": [{"name": "a"}]}


def test_option_flat_and_nested():
    assert kb.option({"kubesalt.bin_dir": "/a"}, "bin_dir") == "/a"
    assert kb.option({"kubesalt": {"bin_dir": "/b"}}, "bin_dir") == "/b"
    assert kb.option({}, "bin_dir", kb.DEFAULT_BIN_DIR) == "/usr/local/bin"


def test_flags():
    assert kb.flags(netns="ns1", adopt=True, test=False, self=None, node=["a", "b"], table=254) == [
        "--netns",
        "ns1",
        "--adopt",
        "--node",
        "a",
        "--node",
        "b",
        "--table",
        "254",
    ]
