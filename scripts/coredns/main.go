// Command coredns is CoreDNS with only the plugins the local cluster's DNS needs (the node shape of
// `jangar dev cluster up --node`): Services and Pods by name from the kubernetes plugin, everything else
// forwarded to the host's resolver. Fewer plugins than the stock build: a smaller module graph, a faster
// build from the Go module proxy, nothing that talks to a cloud.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
)

// directives is the order plugins run in, a subsequence of CoreDNS's plugin.cfg.
var directives = []string{"bind", "ready", "health", "errors", "cache", "kubernetes", "loop", "forward"}

func init() { dnsserver.Directives = directives }

func main() { coremain.Run() }
