#!/usr/bin/env bash
# A newcomer's first hour, checked: clone this repository's HEAD into a
# temporary directory (nothing untracked, no .venv, no bin/, no .lab), run
# the README's lab commands there as a new user would, assert each one's
# result, and check the host is left as it was found: no namespace, daemon,
# cgroup or file under /etc, /run or /var/lib that the run made.
#
#   hack/newcomer.sh            # the lab of the quick start (6 nodes)
#   K8S=1 hack/newcomer.sh      # the same with Kubernetes
#   KEEP=1 hack/newcomer.sh     # keep the clone (its path is printed)
set -euo pipefail
top=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
work=$(mktemp -d /tmp/kubesalt-newcomer.XXXXXX)
clone=$work/kubesalt
log=$work/log
mkdir -p "$log"

# What a run may leave behind, listed the same way before and after.
host_state() {
	echo "## network namespaces"; ip netns list 2>/dev/null | awk '{print $1}' | sort
	# Zombies hold nothing and are reaped by init a moment later.
	echo "## processes"; ps -eo stat=,args= | awk '$1 !~ /^Z/ {$1=""; print}' | grep -E '(salt-|etcd|kube-|kubelet|containerd|haproxy|keepalived)' | grep -v -E 'grep|newcomer' | sort || true
	echo "## files under /etc, /run/ksl, /var/lib/kubesalt"
	find /etc/iproute2 /etc/kubernetes /etc/salt /etc/cni /etc/containerd /etc/haproxy /etc/keepalived \
		/run/ksl /var/lib/kubesalt /usr/local/bin -xdev 2>/dev/null | sort || true  # some are absent
	echo "## cgroups"; for h in /sys/fs/cgroup/*/; do ls "$h" 2>/dev/null | sed "s|^|$h|"; done | grep -E '/ks[0-9a-f]' | sort || true
}

fail() { echo "newcomer: FAIL: $*" >&2; echo "logs: $log" >&2; exit 1; }

# step NAME PATTERN make-args...: runs `make` in the clone, which must exit 0
# and print PATTERN (an extended regular expression).
step() {
	local name=$1 pattern=$2; shift 2
	local start=$SECONDS
	echo "newcomer: make $*"
	if ! (cd "$clone" && make "$@") >"$log/$name.log" 2>&1; then
		tail -30 "$log/$name.log" >&2
		(cd "$clone" && make lab-down >/dev/null 2>&1) || true
		fail "make $* exited non-zero (log: $log/$name.log)"
	fi
	grep -Eq "$pattern" "$log/$name.log" || fail "make $*: its output lacks /$pattern/ (log: $log/$name.log)"
	echo "newcomer:   ok in $((SECONDS - start)) s"
}

# routes_everywhere N: independent of the lab's own checks, every node of
# .lab/state.json has N nodes and a kubesalt route (protocol 201, read by
# number: nothing registers the name on the host) to each of the others.
routes_everywhere() {
	local want=$1 id nodes n count
	id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$clone/.lab/state.json")
	nodes=$(python3 -c 'import json,sys; print(" ".join(n["name"] for n in json.load(open(sys.argv[1]))["nodes"]))' "$clone/.lab/state.json")
	set -- $nodes
	[ $# -eq "$want" ] || fail "the lab has $# nodes ($nodes), not $want"
	for n in $nodes; do
		count=$(ip -n "$id-$n" route show proto 201 | grep -c ' via ' || true)
		[ "$count" -eq $((want - 1)) ] || fail "$n has $count kubesalt routes, not $((want - 1)): $(ip -n "$id-$n" route show proto 201)"
	done
	echo "newcomer:   every one of $want nodes routes the other $((want - 1)) nodes' pod CIDRs"
}

host_state >"$log/host-before.txt"
git clone -q "$top" "$clone"
echo "newcomer: clean clone of $(git -C "$clone" rev-parse --short HEAD) in $clone"

k8s=()
[ -n "${K8S:-}" ] && k8s=(K8S=1)
nodes=${NODES:-6}
step lab 'kubesalt status' lab NODES="$nodes" "${k8s[@]}"
routes_everywhere "$nodes"
step add-node 'routes converged on every node' lab-add-node "${k8s[@]}"
routes_everywhere $((nodes + 1))
step remove-node 'routes converged on every node' lab-remove-node
routes_everywhere "$nodes"
step down '' lab-down
step down-again '' lab-down

[ ! -e "$clone/.lab" ] || fail "make lab-down left $clone/.lab"
host_state >"$log/host-after.txt"
if ! diff -u "$log/host-before.txt" "$log/host-after.txt" >"$log/host.diff"; then
	cat "$log/host.diff" >&2
	fail "the host is not as it was before (diff above)"
fi
echo "newcomer: the README's commands passed on a clean clone and left the host as it was"
if [ -n "${KEEP:-}" ]; then echo "newcomer: kept $work"; else rm -rf "$work"; fi
