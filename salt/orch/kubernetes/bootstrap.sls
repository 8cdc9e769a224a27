{#- salt-run state.orchestrate orch.kubernetes.bootstrap
    A new cluster in the order it needs: PKI on the CA host, every node's
    pillar (its pod CIDR and certificates), binaries, certificates, the API
    load balancer and (planned mode) the routes everywhere, etcd and the
    control plane on all masters together, the workers, Node podCIDRs and
    the cluster DNS add-on (from the first master); a smoke check in each
    node's last step.
    In controller mode the masters report the CIDRs the controller manager
    allocated (the mine) before the workers write their CNI config and
    every node routes. Targets come from each minion's kubesalt pillar (its
    role). Few steps, as each state run costs every minion in it a second
    or more of Salt's own start-up. -#}
{%- import_yaml "kubernetes/defaults.yaml" as defaults %}
{%- set mode = salt['pillar.get']('kubernetes:mode', defaults.kubernetes.mode) %}
{%- set ca_minion = salt['pillar.get']('ca_minion') or salt['pillar.get']('kubernetes:ca:minion', defaults.kubernetes.ca.minion) %}
{%- set nodes = 'I@kubesalt:node:*' %}
{%- set masters = 'I@kubesalt:role:master' %}
{%- set workers = 'I@kubesalt:role:worker' %}

{%- if ca_minion %}
kubernetes-pki:
  salt.state:
    - tgt: {{ ca_minion }}
    - sls: kubernetes.ca
    - queue: True
{%- else %}
kubernetes-pki:
  test.succeed_without_changes:
    - name: no CA minion (kubernetes:ca:minion is empty); the certificates are issued outside Salt
{%- endif %}

kubernetes-pillar:
  salt.function:
    - name: saltutil.refresh_pillar
    - tgt: '*'
    - kwarg:
        wait: True
    - require:
      - kubernetes-pki

{#- The API load balancer (and the masters' VIP) first: the kubelets and
    kube-proxy dial it, and it marks each API server up once it is ready.
    In planned mode the routes too (kubernetes.network): the plan is known;
    the first master's Node podCIDRs wait for the API (a later step). #}
kubernetes-base:
  salt.state:
    - tgt: {{ nodes }}
    - tgt_type: compound
    - sls: [kubernetes.binaries, kubernetes.pki, kubernetes.load-balancer{{ '' if mode == 'controller' else ', kubernetes.network' }}]
    - queue: True
    - require:
      - salt: kubernetes-pillar

{#- etcd starts on every master in the same moment; each API server waits
    until it is ready (its etcd cluster has a quorum). #}
kubernetes-control-plane:
  salt.state:
    - tgt: {{ masters }}
    - tgt_type: compound
    - sls: [kubernetes.etcd, kubernetes.control-plane]
    - queue: True
    - require:
      - salt: kubernetes-base

kubernetes-workers:
  salt.state:
    - tgt: {{ workers }}
    - tgt_type: compound
    - sls: {{ ['kubernetes.worker'] if mode == 'controller' else ['kubernetes.worker', 'kubernetes.smoke'] }}
    - queue: True
    - require:
      - salt: kubernetes-control-plane

{%- if mode == 'controller' %}

{#- kubernetes.worker waited until each node registered and got its CIDR. #}
kubernetes-discover:
  salt.function:
    - name: mine.update
    - tgt: {{ masters }}
    - tgt_type: compound
    - require:
      - salt: kubernetes-workers

kubernetes-workers-cni:
  salt.state:
    - tgt: {{ workers }}
    - tgt_type: compound
    - sls: kubernetes.worker
    - queue: True
    - require:
      - salt: kubernetes-discover

kubernetes-network:
  salt.state:
    - tgt: {{ nodes }}
    - tgt_type: compound
    - sls: [kubernetes.network, kubernetes.smoke]
    - queue: True
    - require:
      - salt: kubernetes-workers-cni

kubernetes-dns:
  salt.state:
    - tgt: {{ masters }}
    - tgt_type: compound
    - sls: kubernetes.dns
    - queue: True
    - require:
      - salt: kubernetes-network
{%- else %}

{#- Every node routes since the base step: the masters (the first one)
    set Node podCIDRs now the nodes registered and apply the DNS add-on.
    Each node's smoke check is in its last step. #}
kubernetes-masters-finish:
  salt.state:
    - tgt: {{ masters }}
    - tgt_type: compound
    - sls: [kubernetes.network, kubernetes.dns, kubernetes.smoke]
    - queue: True
    - require:
      - salt: kubernetes-workers
{%- endif %}
