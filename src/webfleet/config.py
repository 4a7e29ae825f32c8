"""The stack file: one TOML file describing the app, its image, network, load balancer and fleet.

`load_stack` reads and validates it and resolves one environment into an `EnvironmentStack`, the
input every stage works from. Every validation error names the field path and what was expected.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from webfleet import certificates, regions
from webfleet.errors import WebfleetError

DEFAULT_STACK_FILE = Path("webfleet.toml")
DEFAULT_ENVIRONMENT = "local"

Port = Annotated[int, Field(ge=1, le=65535)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,19}$")]
EnvVarName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
UrlPath = Annotated[str, Field(pattern=r"^/[^\s]*$", max_length=1024)]
# Target group matchers: a code, a list of codes or a range, between 200 and 499 (AWS's bounds).
Matcher = Annotated[str, Field(pattern=r"^[2-4]\d\d((,[2-4]\d\d)*|-[2-4]\d\d)$")]


class StackError(WebfleetError):
    """A stack file that cannot be used, with every problem named by its field path."""

    def __init__(self, source: Path, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{source}: invalid stack file\n{lines}")


class Strict(BaseModel):
    """Base for every section: unknown keys are errors, values are never coerced across types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Runtime = Literal["python", "node", "static", "binary"]
# A Debian package name (Debian policy 5.6.1): what app.packages may name.
DebianPackage = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9+.-]+$")]
# One line: the command runs through /bin/sh.
ShellCommand = Annotated[str, Field(min_length=1, pattern=r"^[^\n]*$")]


class App(Strict):
    name: Name
    # The app's directory, relative to the stack file.
    source: Annotated[str, Field(min_length=1)] = "."
    # How the bundle is built and installed: python (a venv from pyproject.toml or
    # requirements.txt), node (package.json + package-lock.json, Debian's nodejs), static (files
    # served by Debian's nginx) or binary (a prebuilt executable and its files).
    runtime: Runtime = "python"
    # The service's command, run by /bin/sh in the app's directory with $PORT set to app.port
    # and the env file's variables in its environment. Not for static apps: nginx serves those.
    start: ShellCommand | None = None
    port: Port = 8000
    health_check_path: UrlPath = "/healthz"
    # The version in the AMI's name and tags; default: the project's (pyproject.toml,
    # package.json), else the app directory's last git commit.
    version: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")] | None = None
    # Debian packages the app needs at run time, for the base image's release, installed offline.
    packages: list[DebianPackage] = Field(default_factory=list)
    # Run by /bin/sh in app.source on this machine before bundling (e.g. "npm run build").
    build: ShellCommand | None = None
    # static: the directory nginx serves, relative to app.source (e.g. app.build's output).
    document_root: Annotated[str, Field(min_length=1)] = "."
    env: dict[EnvVarName, str] = Field(default_factory=dict)
    # Secrets stay out of the stack file and the user data: only each SSM parameter's name
    # reaches the instance (secrets.refs beside the env file).
    secrets: dict[EnvVarName, Annotated[str, Field(pattern=r"^/[A-Za-z0-9_.\-/]+$")]] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _env_and_secrets_disjoint(self) -> Self:
        both = sorted(set(self.env) & set(self.secrets))
        if both:
            raise ValueError(f"{', '.join(both)} set both in app.env and app.secrets")
        return self

    @model_validator(mode="after")
    def _start_fits_runtime(self) -> Self:
        if self.runtime == "static" and self.start is not None:
            raise ValueError(
                "app.start: a static app has no start command (nginx serves app.document_root); "
                'remove it, or use runtime "binary" for a server of your own'
            )
        if self.runtime != "static" and self.start is None:
            raise ValueError(
                f"app.start: required for runtime {self.runtime!r}: the command that starts the "
                f"server on $PORT, e.g. {START_EXAMPLES[self.runtime]!r}"
            )
        if self.runtime != "static" and self.document_root != ".":
            raise ValueError('app.document_root: only for runtime "static"')
        return self


# What `init` proposes and errors suggest, per runtime.
START_EXAMPLES: dict[str, str] = {
    "python": "gunicorn myapp.wsgi --bind 0.0.0.0:$PORT --workers 2",
    "node": "node server.js",
    "binary": "./server --listen :$PORT",
}


class BaseAmi(Strict):
    owners: list[Annotated[str, Field(pattern=r"^(\d{12}|self|amazon|aws-marketplace)$")]] = Field(
        default_factory=lambda: ["136693071363"], min_length=1
    )
    name: str = Field(default="debian-12-amd64-*", min_length=1)
    architecture: Literal["x86_64", "arm64"] = "x86_64"


class Image(Strict):
    instance_type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*\d[a-z0-9-]*\.[a-z0-9]+$")] = (
        "t3.micro"
    )
    base_ami: BaseAmi = Field(default_factory=BaseAmi)
    # An existing EC2 key pair; without one, deploy makes "<app>-<env>-webfleet" from a key it
    # generates under .webfleet/<env>/ssh/.
    key_name: str | None = None
    # The AMI's login user: "admin" on Debian's AMIs (the base image).
    ssh_user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")] = "admin"


class Subnet(Strict):
    cidr: str
    # The zone's letter: the environment's region completes it (a → us-east-1a).
    zone: Annotated[str, Field(pattern=r"^[a-z]$")]

    @field_validator("cidr")
    @classmethod
    def _cidr_is_ipv4_network(cls, value: str) -> str:
        return str(_ipv4_network(value))


# Ranges a VPC cannot use (AWS refuses them; the local region also uses 127/8 itself).
_RESERVED_RANGES = tuple(
    (ipaddress.IPv4Network(cidr), what)
    for cidr, what in (
        ("0.0.0.0/8", '"this network"'),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
    )
)


class Network(Strict):
    vpc_cidr: str = "10.42.0.0/16"
    public_subnets: list[Subnet] = Field(min_length=2)

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr_is_ipv4_network(cls, value: str) -> str:
        network = _ipv4_network(value)
        if not 16 <= network.prefixlen <= 28:
            raise ValueError("a VPC's prefix length must be between /16 and /28")
        for reserved, what in _RESERVED_RANGES:
            if network.overlaps(reserved):
                raise ValueError(
                    f"{network} is in the {what} range {reserved}, which AWS refuses for a VPC; "
                    "use a private range such as 10.42.0.0/16"
                )
        return str(network)

    @model_validator(mode="after")
    def _subnets_fit_the_vpc(self) -> Self:
        vpc = ipaddress.IPv4Network(self.vpc_cidr)
        subnets = [ipaddress.IPv4Network(s.cidr) for s in self.public_subnets]
        for index, subnet in enumerate(subnets):
            if not subnet.subnet_of(vpc):
                raise ValueError(f"public_subnets[{index}] {subnet} is outside vpc_cidr {vpc}")
            for other_index, other in enumerate(subnets[:index]):
                if subnet.overlaps(other):
                    raise ValueError(
                        f"public_subnets[{index}] {subnet} overlaps public_subnets[{other_index}]"
                    )
        if len({s.zone for s in self.public_subnets}) < 2:
            raise ValueError("public_subnets must span at least two availability zones")
        return self


class HttpListener(Strict):
    port: Port = 80
    # Unset: "redirect_https" when the environment has an HTTPS listener, else "forward".
    action: Literal["forward", "redirect_https"] = "forward"


# ELB's policies that refuse TLS below 1.2: TLS13-1-2*/1-3* (the first is ELB's recommended),
# their PQ and FIPS variants, FS-1-2* (forward secrecy) and TLS-1-2*.
_MODERN_TLS_POLICY = re.compile(r"ELBSecurityPolicy-(TLS13-1-[23]|FS-1-2|TLS-1-2)(-[A-Za-z0-9]+)*")


class HttpsListener(Strict):
    port: Port = 443
    ssl_policy: str = "ELBSecurityPolicy-TLS13-1-2-2021-06"
    # Either an existing ACM certificate, or PEM files (relative to the stack file) to import.
    certificate_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:acm:")] | None = None
    certificate_file: str | None = None
    private_key_file: str | None = None
    certificate_chain_file: str | None = None

    @field_validator("ssl_policy")
    @classmethod
    def _modern_tls(cls, value: str) -> str:
        if not _MODERN_TLS_POLICY.fullmatch(value):
            raise ValueError(
                f"{value!r} is not an ELB policy that requires TLS 1.2 or later: use "
                "ELBSecurityPolicy-TLS13-1-2-2021-06 (recommended), or another TLS13-1-2, "
                "TLS13-1-3, FS-1-2 or TLS-1-2 policy"
            )
        return value

    @model_validator(mode="after")
    def _one_certificate_source(self) -> Self:
        has_files = self.certificate_file is not None or self.private_key_file is not None
        if self.certificate_arn is not None and has_files:
            raise ValueError("give certificate_arn or certificate_file/private_key_file, not both")
        if self.certificate_arn is None and (
            self.certificate_file is None or self.private_key_file is None
        ):
            raise ValueError(
                "needs certificate_arn, or both certificate_file and private_key_file to import"
            )
        return self


class HealthCheck(Strict):
    # Defaults to app.health_check_path.
    path: UrlPath | None = None
    matcher: Matcher = "200"
    interval: Annotated[int, Field(ge=5, le=300)] = 15
    timeout: Annotated[int, Field(ge=2, le=120)] = 5
    healthy_threshold: Annotated[int, Field(ge=2, le=10)] = 2
    unhealthy_threshold: Annotated[int, Field(ge=2, le=10)] = 2

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> Self:
        if self.timeout >= self.interval:
            raise ValueError(
                f"timeout ({self.timeout}) must be less than interval ({self.interval})"
            )
        return self


class Stickiness(Strict):
    enabled: bool = False
    duration: Annotated[int, Field(ge=1, le=604800)] = 86400


class FixedResponse(Strict):
    status_code: Annotated[int, Field(ge=200, le=599)]
    content_type: Literal[
        "text/plain", "text/css", "text/html", "application/javascript", "application/json"
    ] = "text/plain"
    message_body: Annotated[str, Field(max_length=1024)] = ""


class Rule(Strict):
    priority: Annotated[int, Field(ge=1, le=50000)]
    path_patterns: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list, max_length=5
    )
    host_headers: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list, max_length=5
    )
    action: Literal["forward", "fixed_response"] = "forward"
    fixed_response: FixedResponse | None = None

    @model_validator(mode="after")
    def _condition_and_action_complete(self) -> Self:
        if not self.path_patterns and not self.host_headers:
            raise ValueError("a rule needs path_patterns or host_headers")
        if (self.action == "fixed_response") != (self.fixed_response is not None):
            raise ValueError(
                "fixed_response is required with action 'fixed_response' and only then"
            )
        return self


class LoadBalancer(Strict):
    http: HttpListener = Field(default_factory=HttpListener)
    https: HttpsListener | None = None
    ingress_cidrs: list[str] = Field(default_factory=lambda: ["0.0.0.0/0"], min_length=1)
    algorithm: Literal["round_robin", "least_outstanding_requests"] = "round_robin"
    deregistration_delay: Annotated[int, Field(ge=0, le=3600)] = 30
    stickiness: Stickiness = Field(default_factory=Stickiness)
    health_check: HealthCheck = Field(default_factory=HealthCheck)
    rules: list[Rule] = Field(default_factory=list)
    # Unset: on for kind "aws" (a console or CLI delete is refused), off in the local region.
    deletion_protection: bool | None = None

    @field_validator("ingress_cidrs")
    @classmethod
    def _cidrs_are_networks(cls, values: list[str]) -> list[str]:
        return [str(_ipv4_network(value)) for value in values]

    @model_validator(mode="after")
    def _listeners_consistent(self) -> Self:
        if self.http.action == "redirect_https" and self.https is None:
            raise ValueError("http.action 'redirect_https' needs an [load_balancer.https] listener")
        if self.https is not None and self.https.port == self.http.port:
            raise ValueError(f"http and https listeners both use port {self.http.port}")
        priorities = [rule.priority for rule in self.rules]
        duplicates = sorted({p for p in priorities if priorities.count(p) > 1})
        if duplicates:
            raise ValueError(f"rules share priority {', '.join(map(str, duplicates))}")
        return self


class Logs(Strict):
    """The stack's log bucket (<stack>-logs-<account id>), made when either log is on."""

    # Unset: on for kind "aws", off in the local region (which writes no log objects).
    access_logs: bool | None = None  # the ALB's access logs, under alb/
    flow_logs: bool | None = None  # the VPC's flow logs, under vpc-flow-logs/
    retention_days: Annotated[int, Field(ge=1, le=3650)] = 90


class InstanceRefresh(Strict):
    min_healthy_percentage: Annotated[int, Field(ge=0, le=100)] = 50
    instance_warmup: Annotated[int, Field(ge=0)] = 60
    auto_rollback: bool = True


class Fleet(Strict):
    min_size: Annotated[int, Field(ge=0)] = 2
    desired_capacity: Annotated[int, Field(ge=0)] = 2
    max_size: Annotated[int, Field(ge=1)] = 4
    health_check_type: Literal["ELB", "EC2"] = "ELB"
    health_check_grace_period: Annotated[int, Field(ge=0)] = 120
    instance_refresh: InstanceRefresh = Field(default_factory=InstanceRefresh)

    @model_validator(mode="after")
    def _sizes_ordered(self) -> Self:
        _check_sizes(self.min_size, self.desired_capacity, self.max_size)
        return self


class Scaling(Strict):
    target_cpu_percent: Annotated[float, Field(gt=0, le=100)] = 50
    target_requests_per_target: Annotated[int, Field(ge=1)] | None = None


class SshAccess(Strict):
    """How verify reaches the instances over SSH in one environment."""

    # The private key of image.key_name (relative to the stack file). Without image.key_name,
    # webfleet uses the key it generated (.webfleet/<env>/ssh/) and this must be left out.
    private_key_file: str | None = Field(default=None, min_length=1)
    # Which address of an instance ssh connects to; "instance_id" is for a proxy_command such as
    # SSM's. Default: private_ip for local environments and with a proxy_command, else public_ip.
    address: Literal["private_ip", "public_ip", "instance_id"] | None = None
    # An ssh ProxyCommand (%h host, %p port, %r user), e.g. a bastion's `ssh -W %h:%p bastion`
    # or `aws ssm start-session --target %h --document-name AWS-StartSSHSession
    # --parameters portNumber=%p`.
    proxy_command: str | None = Field(default=None, min_length=1)
    # Who may reach port 22 of the instances directly (e.g. your bastion's or runner's CIDR).
    ingress_cidrs: list[str] = Field(default_factory=list)

    @field_validator("ingress_cidrs")
    @classmethod
    def _cidrs_are_networks(cls, values: list[str]) -> list[str]:
        return [str(_ipv4_network(value)) for value in values]

    @model_validator(mode="after")
    def _instance_id_needs_a_proxy(self) -> Self:
        if self.address == "instance_id" and self.proxy_command is None:
            raise ValueError("address 'instance_id' needs a proxy_command (e.g. SSM's)")
        return self


class Environment(Strict):
    kind: Literal["local", "aws"]
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")] = "us-east-1"
    # aws: a named profile from ~/.aws; unset means the default credential chain (env, OIDC, ...).
    profile: str | None = None
    # local: where the local region's API listens on loopback.
    api_port: Port = 4599
    # What may differ between environments besides endpoints and credentials: sizes.
    instance_type: str | None = None
    min_size: Annotated[int, Field(ge=0)] | None = None
    desired_capacity: Annotated[int, Field(ge=0)] | None = None
    max_size: Annotated[int, Field(ge=1)] | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    ssh: SshAccess = Field(default_factory=SshAccess)
    # The HTTPS listener's certificate in this environment (ACM certificates are per account and
    # region): adds the listener if the stack file has none, replaces its certificate if it has.
    certificate_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:acm:")] | None = None
    # An AWS environment serves HTTPS unless this says plain HTTP is meant.
    plain_http: bool = False
    # Who may reach port 22 of Packer's builder; unset: the build host (its public IP on AWS).
    bake_ingress_cidrs: list[str] | None = Field(default=None, min_length=1)

    @field_validator("bake_ingress_cidrs")
    @classmethod
    def _bake_cidrs_are_networks(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else [str(_ipv4_network(value)) for value in values]

    @model_validator(mode="after")
    def _profile_only_for_aws(self) -> Self:
        if self.kind == "local" and self.profile is not None:
            raise ValueError("profile is for kind 'aws'; the local region needs no credentials")
        return self


class StackFile(Strict):
    app: App
    image: Image = Field(default_factory=Image)
    network: Network
    load_balancer: LoadBalancer = Field(default_factory=LoadBalancer)
    asg: Fleet = Field(default_factory=Fleet)
    scaling: Scaling = Field(default_factory=Scaling)
    logs: Logs = Field(default_factory=Logs)
    tags: dict[str, str] = Field(default_factory=dict)
    environments: dict[Name, Environment] = Field(
        default_factory=lambda: {DEFAULT_ENVIRONMENT: Environment(kind="local")}
    )


class EnvironmentStack(Strict):
    """The stack file resolved for one environment: what every stage reads."""

    source: Path
    env_name: str
    environment: Environment
    app: App
    image: Image
    network: Network
    load_balancer: LoadBalancer
    asg: Fleet
    scaling: Scaling
    logs: Logs
    tags: dict[str, str]

    @property
    def stack_name(self) -> str:
        """The prefix of every resource's name: app and environment."""
        return f"{self.app.name}-{self.env_name}"

    @property
    def deletion_protection(self) -> bool:
        """Whether the ALB refuses deletion (`destroy` turns it off first)."""
        return self._on_for_aws(self.load_balancer.deletion_protection)

    @property
    def access_logs(self) -> bool:
        """Whether the ALB writes access logs to the stack's log bucket."""
        return self._on_for_aws(self.logs.access_logs)

    @property
    def flow_logs(self) -> bool:
        """Whether the VPC writes flow logs to the stack's log bucket."""
        return self._on_for_aws(self.logs.flow_logs)

    def _on_for_aws(self, explicit: bool | None) -> bool:
        # Protections that cost money or block a teardown: the default for AWS, not locally.
        return self.environment.kind == "aws" if explicit is None else explicit

    @property
    def health_check_path(self) -> str:
        return self.load_balancer.health_check.path or self.app.health_check_path

    @property
    def ssh_address(self) -> Literal["private_ip", "public_ip", "instance_id"]:
        """The instance address verify connects to over SSH."""
        ssh = self.environment.ssh
        if ssh.address is not None:
            return ssh.address
        if self.environment.kind == "local" or ssh.proxy_command is not None:
            return "private_ip"
        return "public_ip"

    @property
    def app_source_dir(self) -> Path:
        """app.source, resolved against the stack file's directory."""
        return (self.source.parent / self.app.source).resolve()

    @property
    def ssh_private_key_file(self) -> Path | None:
        """The private key of image.key_name (from the stack), or None: webfleet's own key."""
        name = self.environment.ssh.private_key_file
        return None if name is None else (self.source.parent / name).resolve()

    def availability_zone(self, subnet: Subnet) -> str:
        return f"{self.environment.region}{subnet.zone}"


def load_stack(
    path: Path = DEFAULT_STACK_FILE, env_name: str = DEFAULT_ENVIRONMENT
) -> EnvironmentStack:
    """Read, validate and resolve the stack file for one environment, or raise StackError."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StackError(
            path, ["file not found (pass --stack PATH or create webfleet.toml)"]
        ) from None
    except IsADirectoryError:
        raise StackError(
            path, [f"is a directory: pass the stack file itself (e.g. {path / 'webfleet.toml'})"]
        ) from None
    except UnicodeDecodeError as error:
        raise StackError(
            path,
            [
                f"not UTF-8 text: byte {error.object[error.start]:#04x} at offset {error.start} "
                "(TOML files are UTF-8; save it as UTF-8)"
            ],
        ) from None
    except OSError as error:
        raise StackError(path, [f"cannot be read: {error.strerror or error}"]) from None
    except tomllib.TOMLDecodeError as error:
        raise StackError(path, [f"not valid TOML: {error}"]) from None
    try:
        stack = StackFile.model_validate(raw)
    except ValidationError as error:
        raise StackError(path, _describe(error)) from None
    return _resolve(path, stack, env_name)


def _resolve(path: Path, stack: StackFile, env_name: str) -> EnvironmentStack:
    if env_name not in stack.environments:
        known = ", ".join(sorted(stack.environments))
        raise StackError(path, [f"environments.{env_name}: no such environment (known: {known})"])
    environment = stack.environments[env_name]
    _check_region(path, env_name, environment, stack.network)
    fleet = stack.asg.model_copy(
        update={
            key: value
            for key in ("min_size", "desired_capacity", "max_size")
            if (value := getattr(environment, key)) is not None
        }
    )
    try:
        _check_sizes(fleet.min_size, fleet.desired_capacity, fleet.max_size)
    except ValueError as error:
        raise StackError(path, [f"environments.{env_name}: {error}"]) from None
    if environment.ssh.private_key_file is not None and stack.image.key_name is None:
        raise StackError(
            path,
            [
                f"environments.{env_name}.ssh.private_key_file: only with image.key_name "
                "(without it, webfleet makes the key pair and uses its own key)"
            ],
        )
    https = stack.load_balancer.https
    if https is not None and https.certificate_file and https.private_key_file:
        base = path.parent
        problems = certificates.check_listener_files(
            "load_balancer.https",
            base / https.certificate_file,
            base / https.private_key_file,
            base / https.certificate_chain_file if https.certificate_chain_file else None,
        )
        if problems:
            raise StackError(path, problems)
    load_balancer = _environment_load_balancer(path, env_name, environment, stack.load_balancer)
    image = stack.image
    if environment.instance_type is not None:
        image = image.model_copy(update={"instance_type": environment.instance_type})
    tags = {"App": stack.app.name, "Environment": env_name, "ManagedBy": "webfleet"}
    return EnvironmentStack(
        source=path.resolve(),
        env_name=env_name,
        environment=environment,
        app=stack.app,
        image=image,
        network=stack.network,
        load_balancer=load_balancer,
        asg=fleet,
        scaling=stack.scaling,
        logs=stack.logs,
        tags={**tags, **stack.tags, **environment.tags},
    )


def _environment_load_balancer(
    path: Path, env_name: str, environment: Environment, load_balancer: LoadBalancer
) -> LoadBalancer:
    """The load balancer in this environment: its certificate, HTTPS by default on AWS, and HTTP
    redirecting to HTTPS unless the stack file says what HTTP does."""
    where = f"environments.{env_name}"
    https = load_balancer.https
    if environment.certificate_arn is not None:
        # The stack file's port and policy if it has a listener; the defaults if not.
        kept = https.model_dump(include={"port", "ssl_policy"}) if https is not None else {}
        https = HttpsListener(certificate_arn=environment.certificate_arn, **kept)
    if https is not None and environment.plain_http:
        raise StackError(
            path, [f"{where}.plain_http: true, but the environment has an HTTPS listener"]
        )
    if https is None and environment.kind == "aws" and not environment.plain_http:
        raise StackError(
            path,
            [
                f"{where}: an AWS environment serves HTTPS by default: set {where}.certificate_arn "
                f"(an ACM certificate in {environment.region}) or [load_balancer.https]; or "
                f"{where}.plain_http = true to serve plain HTTP only"
            ],
        )
    http = load_balancer.http
    if https is not None and "action" not in http.model_fields_set:
        http = http.model_copy(update={"action": "redirect_https"})
    return load_balancer.model_copy(update={"https": https, "http": http})


def _check_region(path: Path, env_name: str, environment: Environment, network: Network) -> None:
    """The region exists and has the zones the subnets name."""
    letters = regions.zone_letters(environment.region)
    if letters is None:
        raise StackError(
            path,
            [
                f"environments.{env_name}.region: unknown region {environment.region!r} "
                f"(known: {', '.join(sorted(regions.ZONE_LETTERS))})"
            ],
        )
    problems = [
        f"network.public_subnets.{index}.zone: {subnet.zone!r} is not a zone of "
        f"{environment.region} (environment {env_name}); its zones are {', '.join(letters)}"
        for index, subnet in enumerate(network.public_subnets)
        if subnet.zone not in letters
    ]
    if problems:
        raise StackError(path, problems)


def _check_sizes(min_size: int, desired: int, max_size: int) -> None:
    if not min_size <= desired <= max_size:
        raise ValueError(
            f"sizes must satisfy min_size <= desired_capacity <= max_size "
            f"(got {min_size} <= {desired} <= {max_size})"
        )


def _ipv4_network(value: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as error:
        raise ValueError(f"not an IPv4 CIDR block: {error}") from None


_MODEL_PREFIX = re.compile(r"^Value error, ")


def _describe(error: ValidationError) -> list[str]:
    problems = []
    for detail in error.errors():
        parts = [str(part) for part in detail["loc"]]
        message = _MODEL_PREFIX.sub("", detail["msg"])
        if parts and parts[-1] == "[key]":
            # A bad table key: name the key itself as the field.
            parts.pop()
            message = f"invalid name: {message}"
        location = ".".join(parts) or "(top level)"
        if detail["type"] == "extra_forbidden":
            message = "unknown key"
        elif detail["type"] == "missing":
            message = "required but missing"
        elif "input" in detail and detail["type"] not in ("value_error", "assertion_error"):
            message = f"{message} (got {detail['input']!r})"
        field, _, rest = message.partition(": ")
        if rest and field.startswith(f"{location}."):
            # A section's own check naming one of its fields: that field is the location.
            location, message = field, rest
        problems.append(f"{location}: {message}")
    return problems
