"""``starling deploy``: the files that run Starling on a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from starling.cli.terminal import console, report_error
from starling.errors import StarlingError

deploy_app = typer.Typer(no_args_is_help=True, help="Deployment files for a cluster.")


@deploy_app.command("kubernetes")
def kubernetes(
    output: Annotated[Path, typer.Option("--output", "-o", help="directory for the manifests")] = Path(
        "deploy/kubernetes"
    ),
    pipeline: Annotated[
        Path | None, typer.Option(help="the pipeline (default: the embedded default)")
    ] = None,
    bootstrap: Annotated[
        str | None, typer.Option(help="the cluster's Kafka bootstrap servers (host:port,...)")
    ] = None,
    namespace: Annotated[str, typer.Option()] = "starling",
    image: Annotated[str | None, typer.Option(help="the image every stage runs (see Dockerfile)")] = None,
) -> None:
    """Write the Kubernetes manifests of the whole system (workers, controller, Services, the pipeline Secret,
    Secret, RBAC, volumes, probes, a ServiceMonitor; the PostgreSQL database when the pipeline's store
    URL names the host starling-postgres), one file per object, for `kubectl apply -f`."""
    from pydantic import ValidationError

    from starling.assembly import assemble
    from starling.control.auth import new_secret
    from starling.deploy.kubernetes import DeploymentSettings, all_manifests

    try:
        spec = assemble(pipeline)
        if bootstrap:
            spec = spec.model_copy(
                update={"kafka": spec.kafka.model_copy(update={"bootstrap_servers": bootstrap})}
            )
        settings = DeploymentSettings(namespace=namespace, **({"image": image} if image else {}))
        manifests = all_manifests(spec, settings, new_secret())
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        report_error(f"{problems}")
        raise typer.Exit(2) from None
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for index, manifest in enumerate(manifests):
        name = f"{index:02d}-{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"
        path = output / name
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        if manifest["kind"] == "Secret":
            path.chmod(0o600)  # a control token, a database password: keep it out of version control too
        written.append(name)
    console.print(f"{len(written)} manifests in {output}: kubectl apply -f {output}")
    console.print("the Secrets hold new credentials; keep them out of version control")


@deploy_app.command("teardown")
def teardown(namespace: Annotated[str, typer.Option()] = "starling") -> None:
    """Delete the stages' Deployments and the pipeline Secret that the controller's kubernetes backend
    made (the kubeconfig's cluster, or the pod's service account)."""
    from starling.control.backends.kubernetes import KubernetesBackend, api_client_from_environment
    from starling.deploy.kubernetes import DeploymentSettings

    try:  # no worker is called: no control token needed
        KubernetesBackend(
            DeploymentSettings(namespace=namespace), api_client_from_environment(), ""
        ).teardown()
    except StarlingError as exc:
        report_error(str(exc))
        raise typer.Exit(2) from None
    console.print(f"the stage Deployments and the pipeline Secret of {namespace} are deleted")
