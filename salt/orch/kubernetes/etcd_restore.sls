{#- salt-run state.orchestrate orch.kubernetes.etcd_restore [pillar='{"snapshot": "/path/on/the/salt/master"}']
    Every etcd member restored from one snapshot, and the control plane
    back: the snapshot (default: the newest copy the masters pushed to the
    Salt master) sent to every master; on each, the API server, controller
    manager, scheduler and etcd stopped and etcd's data replaced; etcd
    started on every master, then the control plane; done when etcd is
    healthy on every member and every API server ready (kubernetes.smoke,
    retried). -#}
{%- import_yaml "kubernetes/defaults.yaml" as defaults %}
{%- set masters = 'I@kubesalt:role:master' %}
{%- set backup_dir = salt['pillar.get']('kubernetes:paths:root', '') ~ salt['pillar.get']('kubernetes:etcd:backup:dir', defaults.kubernetes.etcd.backup.dir) %}
{%- set dest = backup_dir ~ '/restore.db' %}
{%- set snapshot = salt['pillar.get']('snapshot', '') %}

kubernetes-etcd-restore-send:
  salt.runner:
    - name: kubesalt.etcd_snapshot_send
    - tgt: {{ masters }}
    - dest: {{ dest }}
    {%- if snapshot %}
    - snapshot: {{ snapshot }}
    {%- endif %}

kubernetes-etcd-restore-members:
  salt.state:
    - tgt: {{ masters }}
    - tgt_type: compound
    - sls: kubernetes.etcd-restore
    - pillar: {etcd_restore: {snapshot: {{ dest }}}}
    - queue: True
    - require:
      - salt: kubernetes-etcd-restore-send

kubernetes-etcd-restore-etcd:
  salt.state:
    - tgt: {{ masters }}
    - tgt_type: compound
    - sls: kubernetes.etcd
    - queue: True
    - require:
      - salt: kubernetes-etcd-restore-members

kubernetes-etcd-restore-control-plane:
  salt.state:
    - tgt: {{ masters }}
    - tgt_type: compound
    - sls: kubernetes.control-plane
    - queue: True
    - require:
      - salt: kubernetes-etcd-restore-etcd

kubernetes-etcd-restore-healthy:
  salt.state:
    - tgt: {{ masters }}
    - tgt_type: compound
    - sls: kubernetes.smoke
    - queue: True
    - retry:
        attempts: 40
        interval: 3
    - require:
      - salt: kubernetes-etcd-restore-control-plane
