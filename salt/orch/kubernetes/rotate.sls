{#- salt-run state.orchestrate orch.kubernetes.rotate [pillar='{"nodes": [...]}']
    Renewed certificates into the nodes and their daemons. Started by the
    reactor of kubesalt/pki/rotate, which the CA minion's rotation schedule
    fires (kubesalt_pki.rotate: `kubesalt pki rotate` reissued what was due
    and named these nodes); run by hand (no nodes) it first renews what is
    due on the CA host, then goes through every node.
    Each node's pillar is refreshed, then kubernetes.pki writes its files and
    the daemons that use a changed file restart (etcd reloads its own). The
    masters go one at a time, each waiting for its API server to be ready
    again, so the API stays up behind every node's load balancer; then the
    workers (kubelet, kube-proxy) together. Last, the CA host records them
    as done (`kubesalt pki distributed`); a failed step leaves them pending,
    and the schedule sends them again after retry_after. -#}
{%- import_yaml "kubernetes/defaults.yaml" as defaults %}
{%- set ca_minion = salt['pillar.get']('ca_minion') or salt['pillar.get']('kubernetes:ca:minion', defaults.kubernetes.ca.minion) %}
{%- set ca_dir = salt['pillar.get']('kubernetes:ca:dir', defaults.kubernetes.ca.dir) %}
{%- set sender = salt['pillar.get']('sender', '') %}
{%- set given = salt['pillar.get']('nodes', []) %}
{%- set definition = salt['pillar.get']('kubernetes:nodes', {}) %}
{%- set masters, workers = [], [] %}
{%- for name in (given or (definition | sort)) if name in definition %}
{%-   do (masters if definition[name].get('role') == 'master' else workers).append(name) %}
{%- endfor %}

{%- if sender and sender != ca_minion %}

kubernetes-rotate-refused:
  test.fail_without_changes:
    - name: {{ ('kubesalt/pki/rotate came from ' ~ sender ~ ', not from the CA minion ' ~ ca_minion ~ ' (kubernetes:ca:minion); nothing done') | json }}
{%- elif not (masters or workers) %}

kubernetes-rotate-nothing:
  test.succeed_without_changes:
    - name: {{ ('no node of kubernetes:nodes to rotate (given: ' ~ (given | join(', ') or 'none') ~ ')') | json }}
{%- else %}
{%- set last = [] %}
{%- if not given and ca_minion %}

kubernetes-rotate-issue:
  salt.state:
    - tgt: {{ ca_minion }}
    - sls: kubernetes.ca
    - queue: True
{%- do last.append('kubernetes-rotate-issue') %}
{%- endif %}

kubernetes-rotate-pillar:
  salt.function:
    - name: saltutil.refresh_pillar
    - tgt: {{ (masters + workers) | join(',') }}
    - tgt_type: list
    - kwarg:
        wait: True
    {%- if last %}
    - require:
      - salt: {{ last[0] }}
    {%- endif %}
{%- do last.append('kubernetes-rotate-pillar') %}

{%- for m in masters %}

kubernetes-rotate-master-{{ m }}:
  salt.state:
    - tgt: {{ m }}
    - sls: [kubernetes.pki, kubernetes.etcd, kubernetes.control-plane]
    - queue: True
    - require:
      - salt: {{ last[-1] }}
{%- do last.append('kubernetes-rotate-master-' ~ m) %}
{%- endfor %}
{%- if workers %}

kubernetes-rotate-workers:
  salt.state:
    - tgt: {{ workers | join(',') }}
    - tgt_type: list
    - sls: [kubernetes.pki, kubernetes.worker]
    - queue: True
    - require:
      - salt: {{ last[-1] }}
{%- do last.append('kubernetes-rotate-workers') %}
{%- endif %}
{%- if given and ca_minion %}

kubernetes-rotate-done:
  salt.function:
    - name: kubesalt_pki.distributed
    - tgt: {{ ca_minion }}
    - arg:
      - {{ (masters + workers) | json }}
    - kwarg:
        pki_dir: {{ ca_dir }}
    - require:
      - salt: {{ last[-1] }}
{%- endif %}
{%- endif %}
