{#- On a hypervisor's minion (one of kubernetes:libvirt:hypervisors, or the
    libvirt host's minion when there is one): the node network and every VM
    placed on this hypervisor, through kubesalt-virt. A VM made fires
    kubesalt/virt/<node>/created, whose reactor runs add_node. With pillar
    master_pki_dir (a hypervisor sharing the master's filesystem) the VMs'
    minion keys are accepted there in advance. -#}
{%- set pki = salt['pillar.get']('master_pki_dir', '') %}

kubernetes-vms-network:
  kubesalt_virt.network_running: []

kubernetes-vms:
  kubesalt_virt.nodes_running:
    {%- if pki %}
    - master_pki_dir: {{ pki }}
    {%- endif %}
    - require:
      - kubesalt_virt: kubernetes-vms-network
