"""The bake stage: the app bundle and its systemd unit baked into an AMI by Packer.

Inputs: the stack, the app (app.source) and packer/app.pkr.hcl. Outputs in the stack's build
directory: the bundle (bundle/), Packer's variables (packer/variables.pkrvars.json), its log
(logs/) and the manifest (packer-manifest.json), which `deploy` reads for the AMI to launch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webfleet.config import EnvironmentStack
from webfleet.drivers.packer import MANIFEST_FILE, PackerError, build, check_packer, read_manifest
from webfleet.paths import ProjectPaths
from webfleet.reporting import Reporter
from webfleet.stages.bundle import CONFIG_DIR, Bundle, BundleRequest, build_bundle
from webfleet.stages.render import RenderedFiles, render
from webfleet.targets import CloudTarget, cloud_target

TEMPLATE = Path("packer") / "app.pkr.hcl"
SCRIPTS_DIR = Path("packer") / "scripts"
# Scripts the bundle carries for the builder (packer/app.pkr.hcl runs them).
BUNDLE_SCRIPTS = ("install-app.sh", "install-debs.sh", "smoke-check.sh")
VARIABLES_FILE = "variables.pkrvars.json"


@dataclass(frozen=True)
class BakeResult:
    env_name: str
    ami_id: str
    name: str
    tags: dict[str, str]
    manifest_path: Path
    region: str
    log_path: Path


def manifest_path(paths: ProjectPaths, env_name: str) -> Path:
    return paths.build_dir(env_name) / MANIFEST_FILE


def variables_path(paths: ProjectPaths, env_name: str) -> Path:
    return paths.build_dir(env_name) / "packer" / VARIABLES_FILE


def packer_variables(
    stack: EnvironmentStack,
    target: CloudTarget,
    *,
    bundle: Bundle,
    rendered: RenderedFiles,
    manifest: Path,
    ssh_source_cidrs: list[str],
) -> dict[str, Any]:
    """Values for the variables packer/app.pkr.hcl declares (the others keep their defaults)."""
    variables: dict[str, Any] = {
        "app_name": stack.app.name,
        "app_version": bundle.version,
        "git_commit": bundle.commit,
        "app_port": stack.app.port,
        "health_check_path": stack.health_check_path,
        "health_check_matcher": stack.load_balancer.health_check.matcher,
        "bundle_path": str(bundle.path.resolve()),
        "unit_path": str(rendered.unit_file.resolve()),
        "env_file_path": str(rendered.env_file.resolve()),
        "manifest_path": str(manifest.resolve()),
        "tags": stack.tags,
        "base_ami_owners": stack.image.base_ami.owners,
        "base_ami_name": stack.image.base_ami.name,
        "base_ami_architecture": stack.image.base_ami.architecture,
        "region": target.region,
        "instance_type": stack.image.instance_type,
        "ssh_source_cidrs": ssh_source_cidrs,
    }
    variables.update(target.packer_variables())
    return variables


def bundle_request(
    stack: EnvironmentStack, paths: ProjectPaths, rendered: RenderedFiles
) -> BundleRequest:
    """What goes into the bundle: the app, the builder's scripts and the rendered app config."""
    files = {name: paths.root / SCRIPTS_DIR / name for name in BUNDLE_SCRIPTS}
    if rendered.nginx_conf is not None:
        files[f"{CONFIG_DIR}/nginx.conf"] = rendered.nginx_conf
    # The build directory may sit inside app.source (a stack file beside the app's code).
    return BundleRequest.of_stack(stack, files, exclude=[paths.build_dir(stack.env_name)])


def bake(stack: EnvironmentStack, paths: ProjectPaths, reporter: Reporter) -> BakeResult:
    """Build the bundle, render the unit, run Packer; the new AMI with its name and tags."""
    binary = check_packer()
    template = paths.root / TEMPLATE
    if not template.is_file():
        raise PackerError(f"the Packer template {template} is missing from the checkout")
    env_name = stack.env_name
    build_dir = paths.build_dir(env_name)

    reporter.stage("render", f"environment {env_name}")
    rendered = render(stack, paths)
    request = bundle_request(stack, paths, rendered)
    reporter.stage("bundle", f"{request.source} ({stack.app.runtime}) with its dependencies")
    bundle = build_bundle(request, build_dir / "bundle", reporter.note)
    contents = [f"{len(bundle.wheels)} wheels"] if bundle.wheels else []
    contents += [f"{len(bundle.debs)} Debian packages"] if bundle.debs else []
    reporter.note(
        f"{bundle.name} {bundle.version} ({bundle.commit[:12]}), {stack.app.runtime}"
        + (f", {', '.join(contents)}" if contents else "")
        + (" (cached)" if bundle.cached else "")
    )

    target = cloud_target(stack)
    manifest = manifest_path(paths, env_name)
    var_file = variables_path(paths, env_name)
    var_file.parent.mkdir(parents=True, exist_ok=True)
    target.ensure_running(reporter)
    variables = packer_variables(
        stack,
        target,
        bundle=bundle,
        rendered=rendered,
        manifest=manifest,
        ssh_source_cidrs=stack.environment.bake_ingress_cidrs or target.build_host_cidrs(),
    )
    var_file.write_text(json.dumps(variables, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    previous = read_manifest(manifest)

    reporter.stage("bake", f"Packer {TEMPLATE} in {target.region}")
    result = build(
        template,
        var_file,
        target.packer_environment(),
        reporter.packer_event,
        log_dir=build_dir / "logs",
        binary=binary,
    )

    newest = read_manifest(manifest)
    if newest is None or (previous is not None and newest.run_uuid == previous.run_uuid):
        raise PackerError(
            f"Packer finished but recorded no new build in {manifest}; log: {result.log_path}"
        )
    amis = newest.amis()
    ami_id = amis.get(target.region)
    if ami_id is None:
        raise PackerError(f"{manifest}: the newest bake has no AMI in {target.region} ({amis})")
    name, tags = describe_image(target, ami_id)
    return BakeResult(env_name, ami_id, name, tags, manifest, target.region, result.log_path)


def describe_image(target: CloudTarget, ami_id: str) -> tuple[str, dict[str, str]]:
    """The AMI's name and tags, as the region reports them."""
    images = target.ec2().describe_images(ImageIds=[ami_id]).get("Images", [])
    if not images:
        raise PackerError(f"Packer reported {ami_id}, but {target.region} does not list it")
    image = images[0]
    tags = {tag["Key"]: tag["Value"] for tag in image.get("Tags", [])}
    return str(image.get("Name", "")), dict(sorted(tags.items()))
