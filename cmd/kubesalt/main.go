// Command kubesalt is the cluster's Go half: pod CIDR planning, route
// reconciliation, node discovery, certificates and status. Every subcommand
// speaks the JSON contract of docs/architecture.md (internal/saltio).
package main

import (
	"os"
	"runtime/debug"

	"github.com/kubesalt/kubesalt/internal/cli"
)

type (
	streams = cli.Streams
	command = cli.Command
)

var commands = []command{
	{Name: "cidr plan", Summary: "plan every node's pod CIDR(s), keeping earlier assignments", Run: runCIDRPlan},
	{Name: "routes sync", Summary: "program routes to every other node's pod CIDR", Run: runRoutesSync},
	{Name: "routes diff", Summary: "show what routes sync would change (sync --test)", Run: runRoutesDiff},
	{Name: "routes list", Summary: "list the routes kubesalt owns", Run: runRoutesList},
	{Name: "routes watch", Summary: "reconcile the routes on every route and link event, from the last sync's node list", Run: runRoutesWatch},
	{Name: "routes flush", Summary: "remove every route kubesalt owns", Run: runRoutesFlush},
	{Name: "nodes discover", Summary: "read nodes and pod CIDRs from `kubectl get nodes -o json`", Run: runNodesDiscover},
	{Name: "nodes set-cidrs", Summary: "set each registered node's empty Node.spec.podCIDRs to the plan", Run: runNodesSetCIDRs},
	{Name: "etcd prune", Summary: "remove the etcd members whose master left the cluster definition", Run: runEtcdPrune},
	{Name: "status record", Summary: "record one Salt job return in the status store", Run: runStatusRecord},
	{Name: "status show", Summary: "show every node: routes converged, last report, certificates, VM", Run: runStatusShow},
	{Name: "status add-needed", Summary: "whether a node whose minion started needs orch.kubernetes.add_node, and why", Run: runStatusAddNeeded},
	{Name: "pki issue", Summary: "issue the CA and every certificate, kubeconfig and key the cluster needs", Run: pkiIssue},
	{Name: "pki check", Summary: "show every certificate's subject, SANs and expiry; fail when one is due", Run: pkiCheck},
	{Name: "addons dns", Summary: "print the cluster DNS add-on's manifests (CoreDNS) for the definition", Run: runAddonsDNS},
	{Name: "addons apply", Summary: "apply the add-ons (cluster DNS) through the API: kubectl diff, then server-side apply", Run: runAddonsApply},
	{Name: "pki rotate", Summary: "reissue what is due and name the nodes that must take their new bundle (the rotation schedule)", Run: pkiRotate},
	{Name: "pki distributed", Summary: "record that nodes took the bundle `pki rotate` dispatched to them", Run: pkiDistributed},
	{Name: "pki bundle", Summary: "print exactly the PKI material one node needs, for its pillar", Run: pkiBundle},
	{Name: "etcd snapshot", Summary: "take an etcd snapshot into a directory, keep the newest N", Run: runEtcdSnapshot},
	{Name: "etcd restore", Summary: "restore this etcd member's data directory from a snapshot (etcd stopped)", Run: runEtcdRestore},
	{Name: "upgrade plan", Summary: "refuse or order a Kubernetes upgrade: skew policy, reachability, etcd health, masters then worker batches", Run: runUpgradePlan},
	{Name: "upgrade node", Summary: "the versions this node's Kubernetes components run; --target --wait: until it runs it, ready", Run: runUpgradeNode},
	{Name: "supervise", Summary: "keep a daemon running: restart it with a back-off, stop it with the supervisor", Run: runSupervise},
}

func main() {
	// A short-lived process: collect garbage rarely, but never let the heap
	// pass 48 MiB. At 20,000 routes this halves a no-op sync's GC time.
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetGCPercent(400)
		debug.SetMemoryLimit(48 << 20)
	}
	os.Exit(run(&streams{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}, os.Args[1:]))
}

func run(s *streams, args []string) int { return cli.Run("kubesalt", commands, s, args) }
