"""A local OCI registry (CNCF distribution, built from the Go module proxy by `scripts/k8s-assets.sh`).

`scripts/publish-chart.sh` pushes the chart (`helm push`) and the jangar image (`crane push`) to it; the real
node pulls from it over plain HTTP (`RealNode.trust_plain_http_registry`), so an install from
`oci://<registry>/...` needs no `ctr import`. It listens on 127.0.0.1: containerd and helm run on the host.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from jangar.dev.assets import find_assets
from jangar.dev.processes import ProcessGroup, free_port


@dataclass
class LocalRegistry:
    workdir: Path
    port: int = 0
    group: ProcessGroup = field(init=False)

    def __post_init__(self) -> None:
        self.group = ProcessGroup(self.workdir)

    @property
    def host(self) -> str:
        """`address:port`, as image references and containerd's hosts.toml name it."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> LocalRegistry:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        config = self.workdir / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log: {level: warn}\n"
            f"storage: {{filesystem: {{rootdirectory: {self.workdir / 'data'}}}, delete: {{enabled: true}}}}\n"
            f"http: {{addr: {self.host}}}\n"
        )
        proc = self.group.start("registry", [str(find_assets().binary("registry")), "serve", str(config)])
        self.group.wait_until(proc, self._ready, timeout, "registry /v2/")
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        self.group.stop_all()
