{#- A smoke check after the bootstrap: etcd healthy over TLS on every
    master, the API server ready where it is installed, and this node's
    routes converged with the plan. Reports, changes nothing. -#}
{%- from "kubernetes/map.jinja" import k, me, cluster, paths with context %}
{%- set pki = cluster.pki %}

kubernetes-smoke:
  test.nop:
    - name: smoke check of {{ me.name }} ({{ me.role }})
{%- if me.role == 'master' and cluster.have.etcd %}

kubernetes-smoke-etcd:
  cmd.run:
    - name: >-
        {{ paths.bin_dir }}/etcdctl --cacert={{ pki }}/ca.pem --cert={{ pki }}/etcd-server.pem
        --key={{ pki }}/etcd-server-key.pem --endpoints=https://127.0.0.1:{{ k.etcd.client_port }}
        --dial-timeout=5s endpoint health --cluster &&
        echo "changed=no comment='etcd: every member healthy'"
    - stateful: True
{%- endif %}
{%- if me.role == 'master' and cluster.have['kube-apiserver'] and cluster.have.kubectl %}

kubernetes-smoke-api:
  cmd.run:
    - name: >-
        {{ paths.bin_dir }}/kubectl --kubeconfig={{ pki }}/admin.kubeconfig --request-timeout=10s get --raw /readyz &&
        echo "changed=no comment='kube-apiserver ready'"
    - stateful: True
{%- endif %}
{%- if cluster.route_nodes %}

kubernetes-smoke-routes:
  module.run:
    - kubesalt_net.routes_diff:
      - nodes: {{ cluster.route_nodes | json }}
      - self_name: {{ me.name }}
      - protocol: {{ k.routing.protocol }}
{%- endif %}
