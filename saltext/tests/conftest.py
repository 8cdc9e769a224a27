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


# Where kubesalt writes by default. Every test points its paths at its own
# temp dirs; one that used a default would change the host (and hide bugs
# that need these files, as a registered protocol name once hid one).
HOST_PATHS = (
    "/etc/iproute2/rt_protos.d/kubesalt.conf",
    "/var/lib/kubesalt",
    "/etc/kubernetes",
    "/etc/sysctl.d/90-kubesalt.conf",
    "/etc/cni/net.d/10-kubesalt-bridge.conflist",
)


def _host_state():
    state = {}
    for p in HOST_PATHS:
        try:
            st = os.stat(p)
            state[p] = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            state[p] = None
    return state


@pytest.fixture(scope="session", autouse=True)
def host_untouched():
    """The host's own kubesalt paths are as the tests found them."""
    before = _host_state()
    yield
    after = _host_state()
    changed = [p for p in HOST_PATHS if before[p] != after[p]]
    assert not changed, f"the tests changed the host's {changed}: a path was not under a temp dir"


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


def pytest_collection_modifyitems(config, items):  # pylint: disable=unused-argument
    # The integration tier runs real daemons in network namespaces.
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.root)


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
