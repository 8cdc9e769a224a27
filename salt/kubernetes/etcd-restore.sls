{#- One master's part of orch.kubernetes.etcd_restore (run on every master
    at once): its API server, controller manager, scheduler and etcd
    stopped, then its etcd data replaced by the snapshot's
    (pillar etcd_restore:snapshot, a file on this master), as this member
    of the cluster's initial membership (kubesalt:cluster facts). The
    orchestration starts etcd and the control plane again afterwards. -#}
{%- from "kubernetes/map.jinja" import k, me, cluster, paths with context %}
{%- from "kubernetes/service.jinja" import stopped with context %}
{%- set snapshot = salt['pillar.get']('etcd_restore:snapshot', '') %}
{%- set daemons = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'etcd'] %}

{%- if me.role != 'master' or not me.etcd_peer_url or not snapshot %}

kubernetes-etcd-restore-refused:
  test.fail_without_changes:
    - name: >-
        etcd restore needs a master with its etcd member in pillar {{ k.ext_pillar.key }}:cluster
        and pillar etcd_restore:snapshot (a snapshot file on it); run
        salt-run state.orchestrate orch.kubernetes.etcd_restore, which sets both
        ({{ me.name }}: role {{ me.role or 'none' }}, snapshot {{ snapshot or 'none' }})
{%- else %}
{%- for d in daemons %}
{{ stopped(d, paths, cluster.manager) }}
{%- endfor %}

kubernetes-etcd-restored:
  kubesalt_etcd.restored:
    - name: {{ paths.etcd_data_dir }}
    - snapshot: {{ snapshot }}
    - member: {{ me.name }}
    - peer_url: {{ me.etcd_peer_url }}
    - initial_cluster: {{ cluster.etcd_initial_cluster }}
    - token: {{ k.etcd.args.get('initial-cluster-token') or k.cluster_name ~ '-etcd' }}
    - etcdctl: {{ paths.bin_dir }}/etcdctl
    - etcdutl: {{ paths.bin_dir }}/etcdutl
    - require:
      {%- for d in daemons %}
      - kubernetes-{{ d }}-stopped
      {%- endfor %}
{%- endif %}
