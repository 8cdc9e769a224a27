{#- salt/minion/*/start: a cluster node that has not converged with the
    current plan (the kubesalt status store says so; add_node checks) gets
    add_node; a converged one, or a minion outside the cluster, is left alone. -#}

kubesalt-converge-{{ data['id'] }}:
  runner.state.orchestrate:
    - args:
      - mods: orch.kubernetes.add_node
      - pillar:
          node: {{ data['id'] }}
          unless_converged: True
