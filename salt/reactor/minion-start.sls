{#- salt/minion/*/start: a cluster node that has not converged with the
    current plan gets add_node; a converged one, a node of a cluster not
    built yet, or a minion outside the cluster is left alone. The question
    is asked here (kubesalt status add-needed, milliseconds), not by an
    orchestration started for every minion that starts: 20 minions starting
    at once cost the master 20 orchestrations beside the bootstrap. An
    answer that is not one (the runner failed) starts the add: converging
    is the side to err on. -#}
{%- set check = salt['saltutil.runner']('kubesalt.add_needed', node=data['id']) %}
{%- if check is not mapping or (check.get('data') or {}).get('add_needed', True) %}

kubesalt-converge-{{ data['id'] }}:
  runner.state.orchestrate:
    - args:
      - mods: orch.kubernetes.add_node
      - pillar:
          node: {{ data['id'] }}
          unless_converged: True
{%- endif %}
