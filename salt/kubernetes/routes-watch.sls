{#- Routes heal between state runs: `kubesalt routes watch` on every node
    (kubernetes:routing:watch), run by the service manager
    (services:manager: a systemd unit with Restart=always, or `kubesalt
    supervise`). On each route, link and address event it runs the sync
    kubernetes.routes runs, with the node list that run recorded
    (paths:routes_record); routes kubesalt does not own are never touched.
    Restarted when the kubesalt binary changes. -#}
{%- from "kubernetes/map.jinja" import k, me, cluster, paths, local_exists with context %}
{%- from "kubernetes/service.jinja" import service, stopped with context %}
{%- set local = k.binaries.source == 'local' %}
{%- set have = not local or local_exists(k.binaries.local_dir ~ '/kubesalt') | load_json %}

include:
  - kubernetes.binaries
  - kubernetes.routes
{%- if k.routing.watch %}
{%- set args = {'record': paths.routes_record} %}
{{ service('kubesalt-routes-watch', paths.bin_dir ~ '/kubesalt routes watch', args, paths, cluster.manager,
           watch=['file: kubernetes-bin-kubesalt'] if have else [], runnable=have) }}
{%- else %}
{{ stopped('kubesalt-routes-watch', paths, cluster.manager) }}
{%- endif %}
