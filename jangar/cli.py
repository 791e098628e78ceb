"""The `jangar` command: the operator process and developer tooling.

`jangar serve` runs the control plane (the chart's container command); `jangar crds generate|check` keeps
the CRDs in the chart in step with the typed models; `jangar render` prints what an AgentRun would get; `jangar schedule fire` creates a Schedule's run
for the current tick (the CronJob's command); `jangar dev ...` drives the local stack.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from jangar.dev import cli as dev_cli


def _serve(args: argparse.Namespace) -> int:
    from jangar.app import Options, serve
    from jangar.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as err:
        print(f"jangar serve: invalid configuration: {err}", file=sys.stderr)
        return 2
    options = Options(kubeconfig=args.kubeconfig, bind_address=args.bind_address)
    return asyncio.run(serve(settings, options))


def _crds(args: argparse.Namespace) -> int:
    from jangar.api import crdgen

    argv = ["--out", args.out] if args.out else []
    if args.crds_command == "check":
        argv.append("--check")
    return crdgen.main(argv)


def _render(args: argparse.Namespace) -> int:
    from jangar.rendercli import render_command

    return render_command(args)


def _schedule_fire(args: argparse.Namespace) -> int:
    import os
    from datetime import UTC, datetime

    from jangar.runtime import ApiError, Client
    from jangar.scheduler.schedules import ENV_JOB_NAME
    from jangar.services.schedules import (
        ScheduleFireError,
        describe,
        fire_schedule,
        resolve_tick,
        split_schedule,
    )

    try:
        namespace, name = split_schedule(args.schedule)
    except ValueError as err:
        print(f"jangar schedule fire: {err}", file=sys.stderr)
        return 2

    async def fire() -> int:
        client = await Client.from_kubeconfig(
            args.kubeconfig, context=args.context, field_manager="jangar-schedule"
        )
        try:
            job = args.job or os.environ.get(ENV_JOB_NAME) or None
            tick = await resolve_tick(client, namespace, name, job, datetime.now(UTC))
            result = await fire_schedule(client, namespace, name, tick=tick, force=args.now)
            print(describe(namespace, name, result), flush=True)
            return 0
        except (ScheduleFireError, ApiError) as err:
            print(f"jangar schedule fire: {getattr(err, 'message', None) or err}", file=sys.stderr)
            return 1
        finally:
            await client.close()

    return asyncio.run(fire())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jangar", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the control plane (controllers, API, probes, metrics)")
    serve.add_argument(
        "--kubeconfig", default=None, help="kubeconfig path (default: in-cluster, then ~/.kube)"
    )
    serve.add_argument(
        "--bind-address", default=None, help="HTTP address, host:port (default :$JANGAR_HTTP_PORT, 8080)"
    )
    serve.set_defaults(handler=_serve)

    crds = sub.add_parser("crds", help="generate or check charts/agents/crds from the typed models")
    crds.add_argument("crds_command", choices=["generate", "check"])
    crds.add_argument("--out", default=None, help="directory (default charts/agents/crds)")
    crds.set_defaults(handler=_crds)

    from jangar.rendercli import add_arguments as add_render_arguments

    render = sub.add_parser(
        "render", help="print the Job and ConfigMaps the controller would create for an AgentRun"
    )
    add_render_arguments(render, kube_flags=True)
    render.set_defaults(handler=_render)

    schedule = sub.add_parser("schedule", help="Schedules: create the run of a tick")
    schedule_verbs = schedule.add_subparsers(dest="schedule_command", required=True)
    fire = schedule_verbs.add_parser(
        "fire", help="create the run of the current tick from a Schedule's template (the CronJob's command)"
    )
    fire.add_argument("--schedule", required=True, metavar="NAMESPACE/NAME")
    fire.add_argument(
        "--kubeconfig", default=None, help="kubeconfig path (default: in-cluster, then ~/.kube)"
    )
    fire.add_argument("--context", default=None)
    fire.add_argument(
        "--job",
        default=None,
        help="the CronJob's Job this pod belongs to (default: $JANGAR_SCHEDULE_JOB_NAME)",
    )
    fire.add_argument("--now", action="store_true", help="fire even if the Schedule is suspended")
    fire.set_defaults(handler=_schedule_fire)

    dev_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
