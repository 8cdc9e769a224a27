{#- Drift repaired on a schedule (kubernetes:reconcile): the minion's own
    scheduler runs `state.apply kubernetes` every interval seconds, each
    run delayed by a random 0-splay seconds, queued behind any state run
    already going. Its return goes to the master like any job's, so the
    status store records each node's last successful run. -#}
{%- from "kubernetes/map.jinja" import k with context %}
{%- set r = k.reconcile %}
{%- set offline = salt['config.get']('file_client') == 'local' %}
{#- Checked here as `kubesalt status show` checks the definition's copy:
    a bad value renders a failing state that names the key, never a
    schedule with it. #}
{%- set problems = [] %}
{%- if r.enabled is not sameas true and r.enabled is not sameas false %}
{%-   do problems.append('kubernetes:reconcile:enabled: ' ~ (r.enabled | json) ~ ' is not true or false; use e.g. true (the default) or false') %}
{%- endif %}
{%- if r.interval is not integer or r.interval < 60 %}
{%-   do problems.append('kubernetes:reconcile:interval: ' ~ (r.interval | json) ~ ' is not a whole number of seconds of at least 60; use e.g. 3600 (the default)') %}
{%- endif %}
{%- if r.splay is not integer or r.splay < 0 or (r.interval is integer and r.splay >= r.interval) %}
{%-   do problems.append('kubernetes:reconcile:splay: ' ~ (r.splay | json) ~ ' is not a whole number of seconds from 0 to less than interval; use e.g. 300 (the default)') %}
{%- endif %}
{%- if problems %}

kubernetes-reconcile-invalid:
  test.fail_without_changes:
    - name: {{ (problems | join('; ')) | json }}
{%- elif r.enabled %}

kubernetes-reconcile-schedule:
  schedule.present:
    - name: kubesalt-reconcile
    - function: state.apply
    - job_args: [kubernetes]
    - job_kwargs:
        queue: True
    - seconds: {{ r.interval }}
    - splay: {{ r.splay }}
    {#- Masterless (salt-call --local): no minion daemon answers the
        schedule's events; write its file, which the minion reads at start. #}
    - offline: {{ offline }}
{%- else %}

kubernetes-reconcile-schedule:
  schedule.absent:
    - name: kubesalt-reconcile
    - offline: {{ offline }}
{%- endif %}
