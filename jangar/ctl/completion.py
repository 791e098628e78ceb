"""`agentctl completion bash|zsh`: a completion script generated from the parser itself, so every noun,
verb and flag agentctl has is completed without a dependency: nouns, the subcommands of a noun, flags,
`-o` formats, kind names after the kind verbs, and object names (asked from the cluster with
`agentctl get KIND -o name`, in the mode and namespace typed so far)."""

from __future__ import annotations

import argparse

from jangar.api.printing import kind_names
from jangar.api.registry import KINDS
from jangar.ctl.parsing import OUTPUTS

__all__ = ["script", "tree"]

KIND_VERBS = ("get", "list", "describe", "watch", "wait", "cancel", "delete")
RUN_VERBS = ("logs", "retry", "resubmit")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(
        s
        for a in parser._actions
        if a.help != argparse.SUPPRESS
        for s in a.option_strings
        if s.startswith("--") or len(s) == 2
    )


def tree(parser: argparse.ArgumentParser) -> dict[str, tuple[list[str], list[str]]]:
    """`path -> (words, flags)`: "" is the top level, "run" a noun, "run submit" a noun's verb."""
    out: dict[str, tuple[list[str], list[str]]] = {}

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        subs = _subparsers(p)
        out[path] = (sorted(subs), _flags(p))
        for name, child in subs.items():
            walk(child, f"{path} {name}".strip())

    walk(parser, "")
    return out


def _bash(parser: argparse.ArgumentParser) -> str:
    entries = []
    for path, (words, flags) in sorted(tree(parser).items()):
        key = path.replace(" ", "_") or "_"
        entries.append(f'    [{key}]="{" ".join(words)}|{" ".join(flags)}"')
    kinds = " ".join(sorted({n for info in KINDS for n in kind_names(info)}))
    table = "\n".join(entries)
    return f"""# agentctl bash completion: source <(agentctl completion bash)
_agentctl_complete() {{
  local cur prev
  cur="${{COMP_WORDS[COMP_CWORD]}}"
  prev="${{COMP_WORDS[COMP_CWORD-1]}}"
  declare -A tree=(
{table}
  )
  local kinds="{kinds}"
  # the words typed so far: the noun path (known subcommands), the positionals after it, the global flags
  local path="" key i w positional=() globals=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${{COMP_WORDS[i]}}"
    case "$w" in
      --kubeconfig|--context|-n|--namespace|--server)
        globals+=("$w" "${{COMP_WORDS[i+1]}}"); ((i++)); continue ;;
      -*) continue ;;
    esac
    key="${{path:+${{path}}_}}$w"
    if [[ ${{#positional[@]}} -eq 0 && -n "${{tree[$key]+x}}" ]]; then
      path="$key"
    else
      positional+=("$w")
    fi
  done
  case "$prev" in
    -o|--output) COMPREPLY=($(compgen -W "{" ".join(OUTPUTS)}" -- "$cur")); return ;;
    --for) COMPREPLY=($(compgen -W "condition=Ready condition=Succeeded phase=Succeeded phase=Failed delete" -- "$cur")); return ;;
    completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")); return ;;
  esac
  local entry="${{tree[${{path:-_}}]}}"
  local words="${{entry%%|*}}" flags="${{entry#*|}}"
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur")); return
  fi
  if [[ -n "$words" ]]; then
    COMPREPLY=($(compgen -W "$words" -- "$cur")); return
  fi
  case "$path" in
    {"|".join(KIND_VERBS)})
      if [[ ${{#positional[@]}} -eq 0 ]]; then
        COMPREPLY=($(compgen -W "$kinds" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "$(agentctl "${{globals[@]}}" get "${{positional[0]}}" -o name 2>/dev/null | sed 's|.*/||')" -- "$cur"))
      fi ;;
    {"|".join(RUN_VERBS)})
      COMPREPLY=($(compgen -W "$(agentctl "${{globals[@]}}" get agentruns -o name 2>/dev/null | sed 's|.*/||')" -- "$cur")) ;;
  esac
}}
complete -F _agentctl_complete agentctl
"""


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    bash = _bash(parser)
    if shell == "bash":
        return bash
    # zsh: the same function through zsh's bash-completion emulation (bashcompinit ships with zsh)
    return (
        "#compdef agentctl\n# agentctl zsh completion: source <(agentctl completion zsh)\n"
        "autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n"
        + bash.split("\n", 1)[1]
    )
