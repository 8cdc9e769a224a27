{#- salt-run state.orchestrate orch.kubernetes.upgrade [test=True]
    Kubernetes upgraded in place to the pillar's versions:kubernetes (run by
    orch.kubernetes.pillar_changed, so by the kubesalt/pillar/changed event
    after the pillar changed, and by hand). The runner kubesalt.upgrade_plan
    asks every node what it runs and `kubesalt upgrade plan` refuses what
    Kubernetes' version skew policy forbids (a skipped minor, a downgrade,
    a worker newer than the control plane), a node that does not answer
    and an unhealthy etcd, or orders the steps: an etcd snapshot, each
    master alone (new binaries, restart, wait for its /readyz and etcd
    health), then the workers in batches of upgrade:worker_batch (drain,
    new kubelet and kube-proxy, wait Ready at the new version, uncordon).
    The first failed step stops the run (failhard) and its id names the
    step and the node; nodes at the target are skipped, so the next run
    continues there. test=True prints the plan and changes nothing.
    pillar upgrade_states: what each node runs, given instead of asking
    (tests). -#}
{%- import_yaml "kubernetes/defaults.yaml" as defaults %}
{%- set k = salt['slsutil.merge'](defaults.kubernetes, salt['pillar.get']('kubernetes', {}), strategy='recurse') %}
{%- set plan = salt['saltutil.runner']('kubesalt.upgrade_plan', target=k.versions.kubernetes, nodes=k.nodes,
                                        worker_batch=k.upgrade.worker_batch, states=salt['pillar.get']('upgrade_states', none)) %}
{%- set steps = plan.get('steps') or [] %}
{%- set n = steps | length %}

{%- if not plan.get('result') %}

kubernetes-upgrade-preflight:
  test.fail_without_changes:
    - name: preflight of the upgrade to {{ k.versions.kubernetes }}
    - comment: {{ (plan.get('comment') or plan | string) | json }}
    - failhard: True
{%- elif opts.get('test') or not steps %}

kubernetes-upgrade-plan:
  test.succeed_without_changes:
    - name: the plan of the upgrade to {{ plan.target }}
    - comment: {{ plan.comment | json }}
{%-   for s in steps %}

{{ ('kubernetes-upgrade ' ~ loop.index ~ '/' ~ n ~ ' ' ~ s.name) | yaml_dquote }}:
{%-     set what = {'snapshot': 'an etcd snapshot on ' ~ plan.coordinator ~ ', copied to the Salt master',
                    'master': 'new binaries, kube-apiserver, kube-controller-manager and kube-scheduler restarted, wait for /readyz and etcd health',
                    'workers': 'drain (PodDisruptionBudgets respected, ' ~ k.upgrade.drain_timeout ~ '), new kubelet and kube-proxy, wait Ready at ' ~ plan.target ~ ', uncordon'} %}
  test.succeed_without_changes:
    - name: {{ s.name | json }}
    - comment: {{ what[s.kind] | json }}
{%-   endfor %}
{%- else %}

kubernetes-upgrade-preflight:
  test.succeed_without_changes:
    - name: preflight of the upgrade to {{ plan.target }}
    - comment: {{ plan.comment | json }}
{%-   for s in steps %}
{%-     set id = 'kubernetes-upgrade ' ~ loop.index ~ '/' ~ n ~ ' ' ~ s.name %}
{%-     if s.kind == 'snapshot' %}

{{ (id ~ ': etcd snapshot') | yaml_dquote }}:
  salt.state:
    - tgt: {{ plan.coordinator }}
    - sls: kubernetes.upgrade
    - queue: True
    - pillar: {upgrade_step: {action: snapshot}}
    - failhard: True
{%-     else %}
{%-       set role = 'master' if s.kind == 'master' else 'worker' %}
{%-       if role == 'worker' %}

{{ (id ~ ': drain') | yaml_dquote }}:
  salt.state:
    - tgt: {{ plan.coordinator }}
    - sls: kubernetes.upgrade
    - queue: True
    - pillar: {upgrade_step: {action: drain, nodes: {{ s.nodes | json }}}}
    - failhard: True
{%-       endif %}

{{ (id ~ ': new binaries, daemons stopped') | yaml_dquote }}:
  salt.state:
    - tgt: {{ s.nodes | join(',') }}
    - tgt_type: list
    - sls: kubernetes.upgrade
    - queue: True
    - pillar: {upgrade_step: {action: replace}}
    - failhard: True

{{ (id ~ ': started') | yaml_dquote }}:
  salt.state:
    - tgt: {{ s.nodes | join(',') }}
    - tgt_type: list
    - queue: True
    - sls: {{ ['kubernetes.etcd', 'kubernetes.control-plane'] if role == 'master' else ['kubernetes.worker'] }}
    - failhard: True

{{ (id ~ ': wait for ' ~ plan.target ~ ' and ready') | yaml_dquote }}:
  salt.function:
    - name: kubesalt_upgrade.node
    - tgt: {{ s.nodes | join(',') }}
    - tgt_type: list
    - kwarg:
        target: {{ plan.target }}
        wait: {{ k.upgrade.node_timeout }}
    - timeout: {{ k.upgrade.node_timeout + 60 }}
    - failhard: True
{%-       if role == 'worker' %}

{{ (id ~ ': uncordon') | yaml_dquote }}:
  salt.state:
    - tgt: {{ plan.coordinator }}
    - sls: kubernetes.upgrade
    - queue: True
    - pillar: {upgrade_step: {action: uncordon, nodes: {{ s.nodes | json }}}}
    - failhard: True
{%-       endif %}
{%-     endif %}
{%-   endfor %}
{%- endif %}
