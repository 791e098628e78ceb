"""Tiny OCI images built without Docker or a registry, for the real node (`jangar.dev.node`).

`busybox_image` packs Debian's static busybox (`busybox-static`) into an image whose `/bin` holds a symlink
per applet; `pause_image` packs a pause binary (the assets' own `pause`, or a static C one built with gcc)
as the pod sandbox image. Both are written with `umoci` as an OCI image layout and tarred, which is what
`ctr images import --base-name <name>` takes (umoci's ref name is only the tag, hence `--base-name`).

umoci writes a new manifest on `umoci config`, so every `repack` comes first and `config` last.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

BUSYBOX_IMAGE = "local.jangar.dev/busybox:1"
SAMPLE_BUSYBOX_ALIASES = ("docker.io/library/busybox:1.36",)
"""The chart's smoke samples name `busybox:1.36`; the node cannot pull, so the local busybox answers to it
(Debian's busybox-static, close enough for `sh -c echo`: the samples run literally, unedited)."""
PAUSE_IMAGE = "local.jangar.dev/pause:1"

# kubernetes' build/pause/linux/pause.c, reduced: sleep until SIGINT/SIGTERM, reap orphans on SIGCHLD.
PAUSE_C = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void sigdown(int signo) { _exit(0); }
static void sigreap(int signo) { while (waitpid(-1, NULL, WNOHANG) > 0) {} }

int main(void) {
  if (getpid() != 1) fprintf(stderr, "Warning: pause should be the first process\n");
  struct sigaction down = {.sa_handler = sigdown};
  struct sigaction reap = {.sa_handler = sigreap, .sa_flags = SA_NOCLDSTOP};
  if (sigaction(SIGINT, &down, NULL) < 0 || sigaction(SIGTERM, &down, NULL) < 0) return 1;
  if (sigaction(SIGCHLD, &reap, NULL) < 0) return 2;
  for (;;) pause();
}
"""


class ImageBuildError(RuntimeError):
    """A tool needed to build a node image is missing or failed."""


LOCAL_REGISTRY = "local.jangar.dev"


def build_script_image(flag: str) -> tuple[str, Path]:
    """(reference, OCI archive) of an image of `scripts/build-image.sh` (`--jangar`, `--curl`,
    `--test-agent`), built unless its content hash is cached. The reference is read off the archive's name
    (`<name>-<tag>.oci.tar`), so it always names what was built, even if the tree changes meanwhile."""
    from jangar.dev.assets import repo_root

    script = repo_root() / "scripts" / "build-image.sh"
    done = subprocess.run(
        ["bash", str(script), flag, "--print-path"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ImageBuildError(f"scripts/build-image.sh {flag} failed: {done.stderr.strip()[-2000:]}")
    archive = Path(done.stdout.strip().splitlines()[-1])
    name, _, tag = archive.name.removesuffix(".oci.tar").rpartition("-")
    return f"{LOCAL_REGISTRY}/{name}:{tag}", archive


def _tool(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if not found:
        raise ImageBuildError(
            f"{name} not found: install it (scripts/bootstrap.sh installs the node packages)"
        )
    return found


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ImageBuildError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")


def _build(
    dest: Path, tag: str, fill_rootfs: Callable[[Path], None], config: list[str], workdir: Path
) -> Path:
    """Build one single-layer image: an empty rootfs filled by `fill_rootfs`, then `umoci config` args."""
    umoci = _tool("umoci")
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    layout, bundle = workdir / "layout", workdir / "bundle"
    _run([umoci, "init", "--layout", str(layout)])
    _run([umoci, "new", "--image", f"{layout}:{tag}"])
    _run([umoci, "unpack", "--image", f"{layout}:{tag}", str(bundle)])
    fill_rootfs(bundle / "rootfs")
    _run([umoci, "repack", "--image", f"{layout}:{tag}", str(bundle)])
    _run([umoci, "config", "--image", f"{layout}:{tag}", *config])
    _run([umoci, "gc", "--layout", str(layout)])
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w") as tar:
        for entry in sorted(layout.iterdir()):
            tar.add(entry, arcname=entry.name)
    shutil.rmtree(workdir)
    return dest


def busybox_image(dest: Path) -> Path:
    """`local.jangar.dev/busybox:1` as an OCI layout tar at `dest`: /bin/busybox plus a symlink per applet.

    Debian's static busybox `wget` segfaults in a bare rootfs (static glibc NSS); `nc` works.
    """
    busybox = _tool("busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()

    def fill(rootfs: Path) -> None:
        for sub in ("bin", "tmp", "etc", "proc", "sys", "dev"):
            (rootfs / sub).mkdir(exist_ok=True)
        (rootfs / "tmp").chmod(0o1777)
        shutil.copy2(busybox, rootfs / "bin" / "busybox")
        for applet in applets:
            if applet != "busybox":
                os.symlink("busybox", rootfs / "bin" / applet)
        (rootfs / "etc" / "passwd").write_text(
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n"
        )
        (rootfs / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")

    _, tag = BUSYBOX_IMAGE.rsplit(":", 1)
    return _build(
        dest,
        tag,
        fill,
        ["--config.cmd=/bin/sh", "--config.env=PATH=/bin", "--config.workingdir=/"],
        dest.parent / "busybox-build",
    )


def pause_binary(dest: Path, prebuilt: Path | None = None) -> Path:
    """The pause binary: `prebuilt` (the assets' `pause`) when it exists, else `PAUSE_C` built static by gcc."""
    if prebuilt is not None and prebuilt.is_file():
        shutil.copy2(prebuilt, dest)
        return dest
    gcc = _tool("gcc")
    source = dest.with_suffix(".c")
    source.write_text(PAUSE_C)
    _run([gcc, "-Os", "-static", "-o", str(dest), str(source)])
    return dest


def pause_image(dest: Path, prebuilt: Path | None = None) -> Path:
    """`local.jangar.dev/pause:1` as an OCI layout tar at `dest`: `/pause` as entrypoint, user 65535."""
    binary = pause_binary(dest.parent / "pause", prebuilt)

    def fill(rootfs: Path) -> None:
        shutil.copy2(binary, rootfs / "pause")
        (rootfs / "pause").chmod(0o755)

    _, tag = PAUSE_IMAGE.rsplit(":", 1)
    return _build(
        dest,
        tag,
        fill,
        ["--config.entrypoint=/pause", "--config.user=65535:65535"],
        dest.parent / "pause-build",
    )
