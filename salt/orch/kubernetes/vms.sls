{#- salt-run state.orchestrate orch.kubernetes.vms
    The cluster's VMs: kubernetes.vms on every hypervisor's minion
    (kubernetes:libvirt:hypervisors) at once; each places the node network
    and the VMs kubesalt-virt puts there. Each new VM's created event runs
    orch.kubernetes.add_node. -#}
{%- set hypervisors = salt['pillar.get']('kubernetes:libvirt:hypervisors', {}) | list | sort %}
{%- if hypervisors %}

kubernetes-vms:
  salt.state:
    - tgt: {{ hypervisors | join(',') }}
    - tgt_type: list
    - sls: kubernetes.vms
    - queue: True
{%- else %}

kubernetes-vms:
  test.fail_without_changes:
    - name: >-
        kubernetes:libvirt:hypervisors names no hypervisor: apply kubernetes.vms
        on the libvirt host's minion (salt <minion> state.apply kubernetes.vms)
{%- endif %}
