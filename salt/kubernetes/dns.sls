{#- The cluster DNS add-on (CoreDNS) at kubernetes:network:cluster_dns,
    applied through the API from the first master once it answers: the
    objects come from `kubesalt addons apply` (kubernetes:dns in pillar),
    which applies only what differs; test=True reports what it would. -#}
{%- from "kubernetes/map.jinja" import k, me, cluster, paths with context %}
{%- if me.is_first_master and cluster.have.kubectl %}

{#- if_api_ready, not an onlyif: an onlyif makes Salt 3008 load every
    state module (service.jinja, checked_stop). #}
kubernetes-dns:
  kubesalt_addons.applied:
    - kubeconfig: {{ cluster.pki ~ '/admin.kubeconfig' }}
    - kubectl: {{ paths.bin_dir ~ '/kubectl' }}
    - if_api_ready: True
{%- elif me.is_first_master %}

kubernetes-dns:
  test.show_notification:
    - text: "the cluster DNS add-on is not applied: kubectl is not installed (binaries:source is local and the directory has no kubectl)"
{%- else %}

kubernetes-dns-elsewhere:
  test.nop:
    - name: the cluster DNS add-on is applied from the first master; {{ me.name }} has nothing to do
{%- endif %}
