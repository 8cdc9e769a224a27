{#- The cluster DNS add-on (CoreDNS) at kubernetes:network:cluster_dns,
    applied through the API from the first master once it answers: the
    objects come from `kubesalt addons apply` (kubernetes:dns in pillar),
    which applies only what differs; test=True reports what it would. -#}
{%- from "kubernetes/map.jinja" import k, me, cluster, paths with context %}
{%- if me.is_first_master %}
{%- set admin_kubeconfig = cluster.pki ~ '/admin.kubeconfig' %}
{%- set kubectl = paths.bin_dir ~ '/kubectl' %}

kubernetes-dns:
  kubesalt_addons.applied:
    - kubeconfig: {{ admin_kubeconfig }}
    - kubectl: {{ kubectl }}
    - onlyif: test -x {{ kubectl }} && test -s {{ admin_kubeconfig }} && {{ kubectl }} --kubeconfig={{ admin_kubeconfig }} --request-timeout=10s get --raw /readyz
{%- else %}

kubernetes-dns-elsewhere:
  test.nop:
    - name: the cluster DNS add-on is applied from the first master; {{ me.name }} has nothing to do
{%- endif %}
