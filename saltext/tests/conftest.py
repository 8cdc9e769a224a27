"""Shared fixtures: where the real kubesalt binaries are."""

import os
import pathlib
import shutil

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    # pytest-salt-factories' log server listens on every address by default;
    # the house rule is loopback only.
    log_server = config.pluginmanager.get_plugin("saltfactories-log-server")
    if log_server is not None:
        log_server.log_host = "127.0.0.1"


@pytest.fixture(scope="session")
def event_listener():
    """pytest-salt-factories' event listener, on loopback only (its default is every address)."""
    from saltfactories.plugins.event_listener import EventListener  # pylint: disable=import-outside-toplevel

    listener = EventListener()
    listener.host = "127.0.0.1"
    listener.address = f"tcp://127.0.0.1:{listener.port}"
    with listener:
        yield listener


def real_bin_dir():
    """The directory of the real, built binaries (make build puts them in bin/)."""
    return pathlib.Path(os.environ.get("KUBESALT_BIN_DIR", REPO / "bin"))


@pytest.fixture(scope="session")
def kubesalt_bin_dir():
    d = real_bin_dir()
    if not (d / "kubesalt").is_file():
        pytest.skip(f"the kubesalt binary is not built in {d}; run `make build` (make test does)")
    return d


@pytest.fixture(scope="session")
def kubesalt_virt_bin_dir(kubesalt_bin_dir):
    if not (kubesalt_bin_dir / "kubesalt-virt").is_file():
        pytest.skip(f"kubesalt-virt is not built in {kubesalt_bin_dir}; run `make build` (make test does)")
    return kubesalt_bin_dir


@pytest.fixture(scope="session")
def require_root():
    if os.geteuid() != 0:
        pytest.skip("needs root: real salt daemons and network namespaces")
    if not shutil.which("ip"):
        pytest.skip("needs iproute2 (`ip`); make test installs it")


def pytest_sessionfinish(session, exitstatus):  # pylint: disable=unused-argument
    # Salt buffers records in a temporary handler until logging is set up and
    # flushes them at exit, when pytest has closed the streams: drop it first.
    import salt._logging.impl  # pylint: disable=import-outside-toplevel

    salt._logging.impl.shutdown_temp_handler()
