"""Terraform's CLI configuration and provider mirror: providers come from disk, never the network.

`python -m webfleet.drivers.tfconfig PATH` writes the CLI config (scripts/bootstrap runs it); every
Terraform run checks the mirror first so a missing provider is named before anything starts.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from webfleet.errors import WebfleetError

DEFAULT_MIRROR = Path("/opt/tf-plugins")
# Pinned in terraform/*/versions.tf too.
AWS_PROVIDER = ("registry.terraform.io", "hashicorp", "aws", "5.100.0")

_CLI_CONFIG = """\
# Written by webfleet (scripts/bootstrap): install hashicorp providers from the filesystem mirror
# only, so Terraform never downloads a provider.
provider_installation {{
  filesystem_mirror {{
    path    = "{mirror}"
    include = ["registry.terraform.io/hashicorp/*"]
  }}
  direct {{
    exclude = ["registry.terraform.io/hashicorp/*"]
  }}
}}
"""


class ProviderMirrorError(WebfleetError):
    """The provider filesystem mirror or the CLI config that points at it is missing."""


def mirror_path() -> Path:
    return Path(os.environ.get("WEBFLEET_TF_PLUGIN_MIRROR", str(DEFAULT_MIRROR)))


def render_cli_config(mirror: Path) -> str:
    return _CLI_CONFIG.format(mirror=mirror)


def check_mirror(mirror: Path) -> None:
    """Raise unless the mirror holds the pinned AWS provider for this platform."""
    provider_dir = mirror.joinpath(*AWS_PROVIDER)
    if not any(provider_dir.glob("linux_*/terraform-provider-aws_*")):
        name = "/".join(AWS_PROVIDER[1:3])
        raise ProviderMirrorError(
            f"Terraform provider {name} {AWS_PROVIDER[3]} not found in the filesystem mirror "
            f"{mirror} (looked in {provider_dir}). Providers are never downloaded: put the "
            f"unpacked provider there, or point WEBFLEET_TF_PLUGIN_MIRROR at the mirror and "
            f"re-run scripts/bootstrap."
        )


def check_cli_config(cli_config: Path) -> None:
    if not cli_config.is_file():
        raise ProviderMirrorError(
            f"Terraform CLI config {cli_config} is missing: run scripts/bootstrap to write it."
        )
    check_mirror(mirror_path())


def write_cli_config(path: Path, mirror: Path) -> bool:
    """Write the CLI config; returns False when it was already up to date."""
    check_mirror(mirror)
    text = render_cli_config(mirror)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m webfleet.drivers.tfconfig CLI_CONFIG_PATH", file=sys.stderr)
        return 2
    try:
        changed = write_cli_config(Path(argv[0]), mirror_path())
    except ProviderMirrorError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{argv[0]}: {'written' if changed else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
