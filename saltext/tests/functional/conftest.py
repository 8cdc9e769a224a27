import textwrap

import pytest

CLUSTER = textwrap.dedent(
    """\
    kubernetes:
      cluster_name: kstest
      network:
        node_cidr: 192.168.170.0/24
        cluster_cidr: 10.200.0.0/16
        service_cidr: 10.32.0.0/24
      nodes:
        master-0: {role: master, ip: 192.168.170.10}
        worker-0: {role: worker, ip: 192.168.170.20}
        worker-1: {role: worker, ip: 192.168.170.21}
    """
)


@pytest.fixture
def cluster_file(tmp_path):
    p = tmp_path / "cluster.yaml"
    p.write_text(CLUSTER)
    return p
