"""Publishing (the seed's last step): `scripts/publish-chart.sh` pushes the chart and the jangar image to an OCI
registry (CNCF distribution, built from the Go module proxy), `helm install oci://...` installs from it, and the
node pulls the image from the registry (nothing imported with ctr under that name)."""

from __future__ import annotations

import json
import subprocess

from jangar.dev.assets import repo_root
from jangar.dev.cluster import LocalCluster
from jangar.dev.images import build_script_image
from jangar.dev.incluster import ChartRelease
from jangar.dev.postgres import LocalPostgres
from jangar.dev.registry import LocalRegistry


def test_the_published_chart_installs_from_the_registry_and_the_node_pulls_its_image(
    node_cluster: LocalCluster, node_postgres: LocalPostgres
) -> None:
    assert node_cluster.real_node is not None
    registry = LocalRegistry(node_cluster.workdir.parent / "registry").start()
    try:
        target = f"oci://{registry.host}/proompteng"
        published = subprocess.run(
            ["bash", str(repo_root() / "scripts" / "publish-chart.sh"), target, "--plain-http"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert published.returncode == 0, published.stderr[-3000:]
        chart_ref, image_ref = published.stdout.strip().splitlines()[-2:]
        version = chart_ref.rsplit(":", 1)[1]
        image, digest = image_ref.split("@")
        assert image == f"{registry.host}/proompteng/jangar:0.1.0" and digest.startswith("sha256:")

        node_cluster.real_node.trust_plain_http_registry(registry.host)
        curl_ref, curl_archive = build_script_image("--curl")
        curl_repo, curl_tag = curl_ref.rsplit(":", 1)
        node_cluster.import_image(curl_archive, curl_repo)

        release = ChartRelease(node_cluster)
        release.expose_postgres(node_postgres, node_cluster.real_node.node_ip)
        sets = {
            "image.repository": f"{registry.host}/proompteng/jangar",
            "tests.image.repository": curl_repo,
            "tests.image.tag": curl_tag,
        }
        values = repo_root() / "charts" / "agents" / "values-local.yaml"
        try:
            release.install(
                [values],
                sets,
                chart=chart_ref.rsplit(":", 1)[0],
                extra=("--version", version, "--plain-http"),
            )
            pods = json.loads(
                release.kubectl(
                    "get", "pods", "-n", "agents", "-l", "app.kubernetes.io/name=agents", "-o", "json"
                )
            )["items"]
            (status,) = [cs for p in pods for cs in p["status"].get("containerStatuses") or ()]
            # pulled from the registry: the image ID is the registry's manifest digest
            assert status["imageID"].endswith(digest), status
            assert status["image"].startswith(f"{registry.host}/proompteng/jangar"), status
            assert json.loads(release.health())["status"] == "ok"
        finally:
            release.uninstall()
    finally:
        registry.stop()
