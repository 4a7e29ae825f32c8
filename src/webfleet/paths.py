"""Where webfleet keeps things: the project's sources and each environment's build artifacts.

Artifacts live with the stack: `.webfleet/<env>/` beside the stack file (`.webfleet/<stem>/<env>/`
for a stack file not named webfleet.toml), so two apps' stacks never share a build directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BUILD_DIR_ENV = "WEBFLEET_BUILD_DIR"
ARTIFACTS_DIR = ".webfleet"
DEFAULT_STACK_NAME = "webfleet.toml"
PROJECT_DIR_ENV = "WEBFLEET_PROJECT_DIR"
PRIVATE_MODE = 0o700


@dataclass(frozen=True)
class ProjectPaths:
    """Paths inside one webfleet project; stages exchange artifacts under .webfleet/<env>/."""

    root: Path
    # Where build/<env>/ directories go; tests point it elsewhere.
    build_root: Path | None = None

    @classmethod
    def of_checkout(cls, stack_file: Path | None = None) -> ProjectPaths:
        """The checkout this package runs from (installed editable by scripts/bootstrap).

        Build directories go beside stack_file (see stack_artifacts_dir);
        $WEBFLEET_BUILD_DIR moves them elsewhere (CI artifacts, tests);
        $WEBFLEET_PROJECT_DIR runs the stages on another copy of the project (packer/,
        templates/, user_data/, terraform/, specs/), as the end-to-end tests do; the app is
        the stack file's app.source.
        """
        build_root = os.environ.get(BUILD_DIR_ENV)
        project = os.environ.get(PROJECT_DIR_ENV)
        root = Path(project).resolve() if project else Path(__file__).resolve().parents[2]
        if build_root:
            return cls(root, Path(build_root))
        return cls(root, stack_artifacts_dir(stack_file) if stack_file is not None else None)

    @property
    def terraform_stack(self) -> Path:
        return self.root / "terraform" / "stack"

    @property
    def terraform_cli_config(self) -> Path:
        # Written by scripts/bootstrap: installs providers from the filesystem mirror only.
        return self.root / ".venv" / "terraform.rc"

    def build_dir(self, env_name: str) -> Path:
        return (self.build_root or self.root / ARTIFACTS_DIR) / env_name

    def private_build_dir(self, env_name: str) -> Path:
        """build_dir, created readable by its owner only (an existing one is tightened): it
        holds the generated SSH key, Terraform's state and variables, the rendered env file."""
        directory = self.build_dir(env_name)
        private_directory(directory.parent)
        return private_directory(directory)

    def rendered_dir(self, env_name: str) -> Path:
        return self.build_dir(env_name) / "rendered"

    def terraform_data_dir(self, env_name: str) -> Path:
        return self.build_dir(env_name) / "terraform"

    def terraform_root(self, env_name: str) -> Path:
        """The environment's Terraform root module: links to terraform/stack (see root_module)."""
        return self.build_dir(env_name) / "terraform-root"

    def terraform_state(self, env_name: str) -> Path:
        return self.build_dir(env_name) / "terraform.tfstate"

    def terraform_vars(self, env_name: str) -> Path:
        return self.build_dir(env_name) / "stack.tfvars.json"

    def deploy_outputs(self, env_name: str) -> Path:
        return self.build_dir(env_name) / "deploy-outputs.json"

    def ssh_dir(self, env_name: str) -> Path:
        """webfleet's generated SSH key of the environment (when the stack names no key pair)."""
        return self.build_dir(env_name) / "ssh"

    def verify_dir(self, env_name: str) -> Path:
        """verify's reports: JUnit XML, the instance specs' own JUnit, ssh_config."""
        return self.build_dir(env_name) / "verify"


def state_home() -> Path:
    """The XDG state home ($XDG_STATE_HOME, else ~/.local/state): webfleet keeps its own state
    (the local region's, crash logs) under webfleet/ there."""
    xdg_state = os.environ.get("XDG_STATE_HOME")
    return Path(xdg_state) if xdg_state else Path.home() / ".local" / "state"


def stack_artifacts_dir(stack_file: Path) -> Path:
    """Where the environments' build directories of one stack file go."""
    stack_file = stack_file.resolve()
    base = stack_file.parent / ARTIFACTS_DIR
    return base if stack_file.name == DEFAULT_STACK_NAME else base / stack_file.stem


def private_directory(path: Path) -> Path:
    """path, created if missing, readable by its owner only (an existing one is tightened): for
    what holds keys, such as a build directory or the local region's state directory."""
    path.mkdir(mode=PRIVATE_MODE, parents=True, exist_ok=True)
    path.chmod(PRIVATE_MODE)
    return path
