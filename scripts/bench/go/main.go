// Command twin is the Go side of scripts/bench/twin_bench.py: the same Widget reconcile as
// jangar's runtime benchmark, written with controller-runtime (mode "controller-runtime"), and the
// raw-client ceiling (mode "raw": client-go, one list, then one status patch per object from a pool
// of workers; no cache, no queue, no watch). Built from the Go module proxy at benchmark time into
// ~/.cache/jangar/bench/; no binary is committed.
//
// Both modes write status.observedGeneration with a JSON merge patch on /status when it is behind
// metadata.generation, exactly as the Python twin does. The benchmark script observes completion
// from its own watch and reads this process's CPU from /proc; the process runs until killed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

var gvk = schema.GroupVersionKind{Group: "bench.jangar.dev", Version: "v1", Kind: "Widget"}
var gvr = schema.GroupVersionResource{Group: "bench.jangar.dev", Version: "v1", Resource: "widgets"}

func behind(obj *unstructured.Unstructured) (int64, bool) {
	gen := obj.GetGeneration()
	observed, found, _ := unstructured.NestedInt64(obj.Object, "status", "observedGeneration")
	return gen, !found || observed != gen
}

func patchBody(gen int64) []byte {
	return []byte(fmt.Sprintf(`{"status":{"observedGeneration":%d}}`, gen))
}

func runControllerRuntime(cfg *rest.Config, ns string, workers int) error {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Metrics:                server.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
		// controller-runtime's client reads unstructured objects live from the API server unless told
		// otherwise; the twin reads from the informer cache, as jangar's reconcile does.
		Client: client.Options{Cache: &client.CacheOptions{Unstructured: true}},
	})
	if err != nil {
		return err
	}
	c := mgr.GetClient()
	proto := &unstructured.Unstructured{}
	proto.SetGroupVersionKind(gvk)
	r := reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		obj := &unstructured.Unstructured{}
		obj.SetGroupVersionKind(gvk)
		if err := c.Get(ctx, req.NamespacedName, obj); err != nil {
			return reconcile.Result{}, client.IgnoreNotFound(err)
		}
		gen, stale := behind(obj)
		if !stale {
			return reconcile.Result{}, nil
		}
		patch := client.RawPatch(types.MergePatchType, patchBody(gen))
		return reconcile.Result{}, client.IgnoreNotFound(c.Status().Patch(ctx, obj, patch))
	})
	err = builder.ControllerManagedBy(mgr).
		For(proto, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("widget").
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
	if err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}

func runRaw(cfg *rest.Config, ns string, workers int) error {
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx := context.Background()
	res := dc.Resource(gvr).Namespace(ns)
	work := make(chan *unstructured.Unstructured, 1024)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for obj := range work {
				gen, _ := behind(obj)
				_, err := res.Patch(ctx, obj.GetName(), types.MergePatchType, patchBody(gen), metav1.PatchOptions{}, "status")
				if err != nil {
					fmt.Fprintln(os.Stderr, "patch:", err)
				}
			}
		}()
	}
	cont := ""
	for {
		list, err := res.List(ctx, metav1.ListOptions{Limit: 500, Continue: cont})
		if err != nil {
			return err
		}
		for i := range list.Items {
			if _, stale := behind(&list.Items[i]); stale {
				work <- &list.Items[i]
			}
		}
		cont = list.GetContinue()
		if cont == "" {
			break
		}
	}
	close(work)
	wg.Wait()
	select {} // the benchmark kills us once it has seen every status
}

func main() {
	// controller-runtime registers its own --kubeconfig flag; ours has another name.
	kubeconfig := flag.String("config", "", "kubeconfig path")
	ns := flag.String("namespace", "", "namespace of the Widgets")
	workers := flag.Int("workers", 16, "concurrent reconciles / patch workers")
	mode := flag.String("mode", "controller-runtime", "controller-runtime or raw")
	http1 := flag.Bool("http1", false, "HTTP/1.1 connections instead of one multiplexed HTTP/2 connection")
	flag.Parse()
	ctrl.SetLogger(logr.Discard()) // jangar's twin logs at warning level; nothing is logged per reconcile
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// jangar's client has no client-side rate limiter; neither should the twin.
	cfg.QPS, cfg.Burst = 100000, 100000
	if *http1 {
		// client-go speaks HTTP/2 to the API server: every request of the process shares one TCP
		// connection. jangar's aiohttp client uses a pool of HTTP/1.1 connections; this is the same shape.
		cfg.NextProtos = []string{"http/1.1"}
	}
	switch *mode {
	case "controller-runtime":
		err = runControllerRuntime(cfg, *ns, *workers)
	case "raw":
		err = runRaw(cfg, *ns, *workers)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
