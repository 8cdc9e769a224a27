{#- etcd's members are the definition's masters: on the first master, a
    member whose master left the definition is removed (`kubesalt etcd
    prune`, asking the masters that stay). orch.kubernetes.pillar_changed
    applies it on the masters; it does nothing on the others. -#}
{%- from "kubernetes/map.jinja" import k, me, cluster, paths with context %}
{%- set pki = cluster.pki %}

{%- if not me.is_first_master %}

kubernetes-etcd-members-not-here:
  test.nop:
    - name: etcd's members are kept by the first master; {{ me.name }} is not it
{%- else %}

kubernetes-etcd-members:
  kubesalt_etcd.members_pruned:
    - keep: {{ cluster.masters | map(attribute='name') | list | json }}
    - endpoints: {{ cluster.etcd_endpoints | json }}
    - cacert: {{ pki }}/ca.pem
    - cert: {{ pki }}/etcd-server.pem
    - key: {{ pki }}/etcd-server-key.pem
    - etcdctl: {{ paths.bin_dir }}/etcdctl
{%- endif %}
