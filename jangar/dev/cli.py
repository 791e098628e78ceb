"""`jangar dev ...`: start, inspect and stop the local control plane and Postgres from a shell."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from jangar.dev.assets import AssetsMissingError, repo_root
from jangar.dev.processes import StartupError, stop_recorded


def default_workdir() -> Path:
    return Path(os.environ.get("JANGAR_DEV_DIR") or repo_root() / ".jangar" / "dev")


def register(sub: Any) -> None:
    dev = sub.add_parser("dev", help="local development stack (control plane, Postgres)")
    dev_sub = dev.add_subparsers(dest="dev_command", required=True)

    cluster = dev_sub.add_parser("cluster", help="the local Kubernetes control plane")
    cluster_sub = cluster.add_subparsers(dest="cluster_command", required=True)
    up = cluster_sub.add_parser("up", help="start etcd + kube-apiserver (+ kwok stack, + a real node)")
    up.add_argument("--envtest", action="store_true", help="only etcd + kube-apiserver (no kwok, no KCM)")
    up.add_argument(
        "--node",
        action="store_true",
        help="add a real node: containerd + kubelet, pods really run (root; see docs/development.md)",
    )
    up.add_argument(
        "--nodes", type=int, default=None, help="fake kwok nodes (default 2; with --node 0, tainted)"
    )
    up.add_argument("--workdir", type=Path, default=None)
    up.set_defaults(handler=_cluster_up)
    down = cluster_sub.add_parser("down", help="stop every process of the local cluster")
    down.add_argument("--workdir", type=Path, default=None)
    down.set_defaults(handler=_cluster_down)
    env = cluster_sub.add_parser("env", help='print shell exports (eval "$(jangar dev cluster env)")')
    env.add_argument("--workdir", type=Path, default=None)
    env.set_defaults(handler=_cluster_env)

    demo = dev_sub.add_parser(
        "demo", help="the main job: cluster + Postgres + chart + jangar, and a sample AgentRun to Succeeded"
    )
    demo.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the run (default 300)"
    )
    demo.add_argument(
        "--kwok",
        action="store_true",
        help="no real node: jangar as a local process, kwok completes the Pods (faster; nothing runs)",
    )
    demo.set_defaults(handler=_demo)
    everything = dev_sub.add_parser("down", help="stop everything `jangar dev demo` started")
    everything.set_defaults(handler=_down)

    pg = dev_sub.add_parser("postgres", help="a local Postgres server")
    pg_sub = pg.add_subparsers(dest="pg_command", required=True)
    pg_up = pg_sub.add_parser("up", help="start Postgres on a free loopback port")
    pg_up.add_argument("--workdir", type=Path, default=None)
    pg_up.set_defaults(handler=_pg_up)
    pg_down = pg_sub.add_parser("down", help="stop the local Postgres")
    pg_down.add_argument("--workdir", type=Path, default=None)
    pg_down.set_defaults(handler=_pg_down)


def _cluster_dir(args: argparse.Namespace) -> Path:
    return Path(args.workdir or default_workdir() / "cluster")


def _pg_dir(args: argparse.Namespace) -> Path:
    return Path(args.workdir or default_workdir() / "postgres")


def _cluster_up(args: argparse.Namespace) -> int:
    from jangar.dev.cluster import LocalCluster
    from jangar.dev.node import NodeUnavailableError

    workdir = _cluster_dir(args)
    if args.node and args.envtest:
        print("jangar dev cluster up: --node and --envtest exclude each other", file=sys.stderr)
        return 2
    nodes = args.nodes if args.nodes is not None else (0 if args.node else 2)
    cluster = LocalCluster(workdir, kwok=not args.envtest, nodes=nodes, node=args.node)
    try:
        cluster.up()
    except (AssetsMissingError, StartupError, NodeUnavailableError) as err:
        print(f"jangar dev cluster up: {err}", file=sys.stderr)
        return 1
    shape = "node" if cluster.node else "kwok" if cluster.kwok else "envtest"
    print(f"local control plane is up at {cluster.server} ({shape})")
    if cluster.node:
        print(f"  real node {cluster.node_name}; images: local.jangar.dev/busybox:1 (imagePullPolicy: Never)")
    print(f"  startup timings (s): {json.dumps(cluster.timings)}")
    print(f"  logs: {cluster.log_dir}")
    print(f'  use it:  eval "$(jangar dev cluster env --workdir {workdir})" && kubectl get nodes')
    print(f"  stop it: jangar dev cluster down --workdir {workdir}")
    return 0


def _cluster_down(args: argparse.Namespace) -> int:
    from jangar.dev.cluster import stop_cluster

    stopped = stop_cluster(_cluster_dir(args))
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return 0


def _cluster_env(args: argparse.Namespace) -> int:
    from jangar.dev.assets import find_assets, kubectl_binary

    workdir = _cluster_dir(args)
    kubeconfig = workdir / "kubeconfig"
    if not kubeconfig.exists():
        print(f"no cluster in {workdir}: run `jangar dev cluster up` first", file=sys.stderr)
        return 1
    path = os.pathsep.join([str(find_assets().bin), str(kubectl_binary().parent), "$PATH"])
    print(f"export KUBECONFIG={shlex.quote(str(kubeconfig))}")
    print(f'export PATH="{path}"')
    return 0


def _pg_up(args: argparse.Namespace) -> int:
    from jangar.dev.postgres import LocalPostgres

    workdir = _pg_dir(args)
    stop_recorded(workdir)
    pg = LocalPostgres(workdir=workdir).start()
    (workdir / "url").write_text(pg.url())
    print(f"postgres is up: DATABASE_URL={pg.dsn()}")
    return 0


def _pg_down(args: argparse.Namespace) -> int:
    stopped = stop_recorded(_pg_dir(args))
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from jangar.dev.demo import Demo

    try:
        return Demo(default_workdir(), timeout=args.timeout, node=not args.kwok).run()
    except (AssetsMissingError, StartupError, RuntimeError) as err:
        print(f"jangar dev demo: {err}", file=sys.stderr)
        return 1


def _down(args: argparse.Namespace) -> int:
    from jangar.dev.demo import down

    stopped = down(default_workdir())
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return 0
