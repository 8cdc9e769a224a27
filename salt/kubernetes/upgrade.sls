{#- One step of orch.kubernetes.upgrade on one node, chosen by the pillar
    the orchestration passes (upgrade_step: {action, nodes}):
      snapshot  (the coordinating master) an etcd snapshot, copied to the
                Salt master, before anything changes;
      replace   the node's new binaries, then its Kubernetes daemons
                stopped (the orchestration applies its role's state next,
                which starts them on the new binaries);
      drain     (the coordinating master) cordon and drain the nodes,
                PodDisruptionBudgets respected, within upgrade:drain_timeout;
      uncordon  (the coordinating master) the nodes schedulable again. -#}
{%- from "kubernetes/map.jinja" import k, me, cluster, paths with context %}
{%- from "kubernetes/service.jinja" import stopped with context %}
{%- set step = salt['pillar.get']('upgrade_step', {}) %}
{%- set action = step.get('action', '') %}
{%- set targets = step.get('nodes') or [] %}
{%- set kubectl = paths.bin_dir ~ '/kubectl --kubeconfig=' ~ cluster.pki ~ '/admin.kubeconfig --request-timeout=30s' %}
{%- set daemons = {'master': ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'],
                   'worker': ['kubelet', 'kube-proxy']} %}

{%- if action == 'snapshot' %}
{%-   set backup = k.etcd.backup %}

kubernetes-upgrade-snapshot:
  module.run:
    - kubesalt_etcd.snapshot:
      - dir: {{ paths.root ~ backup.dir }}
      - member: {{ me.name }}
      - keep: {{ backup.keep }}
      - endpoints: https://127.0.0.1:{{ k.etcd.client_port }}
      - cacert: {{ cluster.pki }}/ca.pem
      - cert: {{ cluster.pki }}/etcd-server.pem
      - key: {{ cluster.pki }}/etcd-server-key.pem
      - etcdctl: {{ paths.bin_dir }}/etcdctl
      - push: {{ backup.push }}
{%- elif action == 'replace' %}

include:
  - kubernetes.binaries
{%-   for name in daemons.get(me.role, []) %}

{{ stopped(name, paths, cluster.manager) }}
    - require:
      - sls: kubernetes.binaries
{%-   endfor %}
{%- elif action == 'drain' and targets %}

kubernetes-upgrade-drain:
  cmd.run:
    - name: {{ kubectl }} drain {{ targets | join(' ') }} --ignore-daemonsets --delete-emptydir-data --timeout={{ k.upgrade.drain_timeout }}
{%- elif action == 'uncordon' and targets %}

kubernetes-upgrade-uncordon:
  cmd.run:
    - name: {{ kubectl }} uncordon {{ targets | join(' ') }}
{%- else %}

kubernetes-upgrade-no-step:
  test.fail_without_changes:
    - name: >-
        kubernetes.upgrade is one step of orch.kubernetes.upgrade: give pillar
        upgrade_step {action: snapshot|replace|drain|uncordon, nodes: [...]}
        (got {{ step | json }})
{%- endif %}
