"""agentctl's kubectl-style verbs over every jangar kind, in both modes (issue 13 item 4).

    agentctl get|list KIND [NAME...] [-o wide|yaml|json|name] [-l SEL] [-A]
    agentctl describe KIND NAME         agentctl watch KIND [NAME]
    agentctl wait KIND NAME --for=condition=Ready|phase=Succeeded|delete [--timeout 60s]
    agentctl logs RUN [-f] [--step STEP] [-c CONTAINER] [--tail N]
    agentctl cancel KIND NAME           agentctl delete KIND NAME...
    agentctl retry RUN | resubmit RUN   agentctl completion bash|zsh

`jangar.ctl.backend` hides the mode: `KubeBackend` (the kubeconfig, the default) and `GrpcBackend`
(`--server`); the verbs in `jangar.ctl.commands` are written once against it, so both modes print the same.
"""

from jangar.ctl.commands import VERBS, add_parsers, dispatch

__all__ = ["VERBS", "add_parsers", "dispatch"]
