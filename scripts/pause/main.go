// Command pause is the pod sandbox's process: the same job as Kubernetes' pause.c, in Go so that it
// builds statically with CGO_ENABLED=0 and no C compiler. It holds the pod's namespaces open, reaps the
// zombies of a shared PID namespace (it is PID 1 there) and exits 0 on SIGINT or SIGTERM.
// scripts/k8s-assets.sh builds it into the assets bin directory; the node's pause image is made from it.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const version = "jangar-pause 1"

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-v" || os.Args[1] == "--version") {
		fmt.Println(version)
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		fmt.Fprintf(os.Stderr, "Shutting down, got signal: %v\n", sig)
		os.Exit(0)
	}
}

// reap collects every exited child without blocking (several SIGCHLDs may arrive as one).
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
