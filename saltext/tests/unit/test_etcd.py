"""
kubesalt_etcd: the command lines it builds, and the copy of the newest
snapshot to the master (cp.push) that the backup schedule relies on.
"""

import pytest

import saltext.kubesalt.modules.kubesalt_etcd as etcd
import saltext.kubesalt.utils.binary as kb

SAVED = {
    "result": True,
    "changes": {"saved": "/b/etcd-m0-20260101T000000Z.db"},
    "comment": "saved",
    "data": {},
}
pushes = []
push_ok = [True]


@pytest.fixture
def configure_loader_modules():
    pushes.clear()
    push_ok[0] = True

    def push(path, upload_path=None):
        pushes.append((path, upload_path))
        return push_ok[0]

    return {etcd: {"__opts__": {"test": False}, "__salt__": {"cp.push": push}, "__context__": {}}}


@pytest.fixture
def calls(monkeypatch):
    seen = []

    def run(opts, binary, args, stdin=None, timeout=None):
        seen.append(list(args))
        return {**SAVED, "changes": dict(SAVED["changes"])}

    monkeypatch.setattr(kb, "run", run)
    return seen


def test_snapshot_saves_and_pushes_the_newest(calls):
    res = etcd.snapshot("/b", "m0", keep=3, cacert="/p/ca.pem", cert="/p/c.pem", key="/p/k.pem")
    assert calls[0] == [
        "etcd", "snapshot", "--dir", "/b", "--member", "m0", "--keep", "3",
        "--cacert", "/p/ca.pem", "--cert", "/p/c.pem", "--key", "/p/k.pem",
    ]  # fmt: skip
    assert pushes == [("/b/etcd-m0-20260101T000000Z.db", etcd.PUSH_PATH)]
    assert res["result"] is True and res["changes"]["pushed"] == etcd.PUSH_PATH


def test_snapshot_push_refused_is_a_failure_that_says_why(calls):
    push_ok[0] = False
    res = etcd.snapshot("/b", "m0")
    assert res["result"] is False
    assert "file_recv: True" in res["comment"]
    assert etcd.__context__["retcode"] == 1


def test_snapshot_without_push(calls):
    etcd.snapshot("/b", "m0", push=False)
    assert not pushes


def test_restore_command_line(calls):
    etcd.restore("/var/lib/etcd", "/b/r.db", "m0", "https://10.0.0.1:2380", "m0=https://10.0.0.1:2380", "tok")
    assert calls[0] == [
        "etcd", "restore", "--data-dir", "/var/lib/etcd", "--snapshot", "/b/r.db", "--member", "m0",
        "--peer-url", "https://10.0.0.1:2380",
        "--initial-cluster", "m0=https://10.0.0.1:2380", "--token", "tok",
    ]  # fmt: skip
