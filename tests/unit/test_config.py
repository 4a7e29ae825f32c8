"""webfleet/config.py: the stack file is validated, every error names its field, envs resolve."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from webfleet.config import StackError, load_stack

MINIMAL = """
[app]
name = "demo"
start = "gunicorn demo.wsgi --bind 0.0.0.0:$PORT"

[network]
public_subnets = [{ cidr = "10.42.1.0/24", zone = "a" }, { cidr = "10.42.2.0/24", zone = "b" }]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "webfleet.toml"
    path.write_text(text)
    return path


def test_example_stack_file_is_valid_for_every_environment() -> None:
    local = load_stack(ROOT / "webfleet.toml", "local")
    aws = load_stack(ROOT / "webfleet.toml", "aws")
    assert local.environment.kind == "local"
    assert local.stack_name == "webfleet-demo-local"
    assert aws.environment.kind == "aws" and aws.environment.profile == "webfleet"
    # Environments differ in sizes only where they say so.
    assert (aws.asg.max_size, aws.image.instance_type) == (6, "t3.small")
    assert (local.asg.max_size, local.image.instance_type) == (4, "t3.micro")


def test_minimal_stack_gets_defaults(tmp_path: Path) -> None:
    stack = load_stack(write(tmp_path, MINIMAL))
    assert stack.env_name == "local"
    assert stack.app.port == 8000
    assert stack.health_check_path == "/healthz"
    assert stack.load_balancer.http.action == "forward"
    assert (stack.asg.min_size, stack.asg.desired_capacity, stack.asg.max_size) == (2, 2, 4)
    assert stack.availability_zone(stack.network.public_subnets[1]) == "us-east-1b"
    assert stack.tags["ManagedBy"] == "webfleet"


def test_health_check_path_override(tmp_path: Path) -> None:
    text = MINIMAL + '\n[load_balancer.health_check]\npath = "/ready"\n'
    assert load_stack(write(tmp_path, text)).health_check_path == "/ready"


def test_environment_overrides_sizes_and_tags(tmp_path: Path) -> None:
    text = MINIMAL + (
        '\n[environments.staging]\nkind = "aws"\nregion = "eu-west-1"\nplain_http = true\n'
        'min_size = 1\ndesired_capacity = 1\nmax_size = 2\ntags = { Team = "web" }\n'
    )
    stack = load_stack(write(tmp_path, text), "staging")
    assert (stack.asg.min_size, stack.asg.max_size) == (1, 2)
    assert stack.tags["Team"] == "web" and stack.tags["Environment"] == "staging"
    assert stack.availability_zone(stack.network.public_subnets[0]) == "eu-west-1a"


# Each malformed stack file: (what to change, the field path the error must name, a word of it).
MALFORMED: list[tuple[str, str, str, str]] = [
    ("wrong type for port", "port = 8000", 'port = "8000"', "app.port"),
    ("port out of range", "port = 8000", "port = 70000", "app.port"),
    ("unknown key", 'name = "demo"', 'name = "demo"\ncolour = "blue"', "app.colour"),
    (
        "health path without /",
        'name = "demo"',
        'name = "demo"\nhealth_check_path = "healthz"',
        "app.health_check_path",
    ),
    ("bad app name", 'name = "demo"', 'name = "Demo App"', "app.name"),
    ("no start command", 'start = "gunicorn demo.wsgi --bind 0.0.0.0:$PORT"\n', "", "app.start"),
    ("unknown runtime", 'name = "demo"', 'name = "demo"\nruntime = "cobol"', "app.runtime"),
    ("empty source", 'name = "demo"', 'name = "demo"\nsource = ""', "app.source"),
    (
        "one subnet",
        '{ cidr = "10.42.1.0/24", zone = "a" }, { cidr = "10.42.2.0/24", zone = "b" }',
        '{ cidr = "10.42.1.0/24", zone = "a" }',
        "network.public_subnets",
    ),
    ("bad subnet CIDR", "10.42.1.0/24", "10.42.1.300/24", "network.public_subnets.0.cidr"),
    ("subnets in one AZ", 'zone = "b"', 'zone = "a"', "network"),
    ("subnet outside VPC", "10.42.2.0/24", "10.99.2.0/24", "network"),
    ("bad VPC CIDR", "[network]", '[network]\nvpc_cidr = "10.42.0.0/33"', "network.vpc_cidr"),
    ("min > max", "", "\n[asg]\nmin_size = 5\nmax_size = 2\ndesired_capacity = 3", "asg"),
    ("desired above max", "", "\n[asg]\ndesired_capacity = 9", "asg"),
    (
        "unknown environment kind",
        "",
        '\n[environments.local]\nkind = "gcp"',
        "environments.local.kind",
    ),
    (
        "redirect without https",
        "",
        '\n[load_balancer]\nhttp = { port = 80, action = "redirect_https" }',
        "load_balancer",
    ),
    ("bad algorithm", "", '\n[load_balancer]\nalgorithm = "ip_hash"', "load_balancer.algorithm"),
    (
        "bad matcher",
        "",
        '\n[load_balancer.health_check]\nmatcher = "ok"',
        "load_balancer.health_check.matcher",
    ),
    (
        "timeout over interval",
        "",
        "\n[load_balancer.health_check]\ninterval = 5\ntimeout = 10",
        "load_balancer.health_check",
    ),
    (
        "rule without condition",
        "",
        '\n[[load_balancer.rules]]\npriority = 1\naction = "forward"',
        "load_balancer.rules.0",
    ),
    (
        "duplicate rule priority",
        "",
        '\n[[load_balancer.rules]]\npriority = 1\npath_patterns = ["/a"]\n'
        '[[load_balancer.rules]]\npriority = 1\npath_patterns = ["/b"]',
        "load_balancer",
    ),
    ("https without certificate", "", "\n[load_balancer.https]\nport = 443", "load_balancer.https"),
    ("secret not an SSM name", "", '\n[app.secrets]\nDB = "password123"', "app.secrets.DB"),
    ("bad env var name", "", '\n[app.env]\n"1BAD" = "x"', "app.env.1BAD"),
    (
        "negative grace period",
        "",
        "\n[asg]\nhealth_check_grace_period = -1",
        "asg.health_check_grace_period",
    ),
    ("missing app", '[app]\nname = "demo"', "", "app"),
    (
        "cpu target over 100",
        "",
        "\n[scaling]\ntarget_cpu_percent = 150",
        "scaling.target_cpu_percent",
    ),
    (
        "profile on local",
        "",
        '\n[environments.local]\nkind = "local"\nprofile = "x"',
        "environments.local",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [(old, new, field) for _, old, new, field in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_stack_names_the_field(tmp_path: Path, old: str, new: str, field: str) -> None:
    base = MINIMAL.replace('name = "demo"', 'name = "demo"\nport = 8000')
    text = base.replace(old, new, 1) if old else base + new
    assert text != base, "the case must change the stack file"
    with pytest.raises(StackError) as caught:
        load_stack(write(tmp_path, text))
    message = str(caught.value)
    assert any(problem.startswith(f"{field}:") for problem in caught.value.problems), message


def test_unknown_environment_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(StackError, match=r"environments\.prod: no such environment.*local"):
        load_stack(write(tmp_path, MINIMAL), "prod")


def test_environment_sizes_are_checked_after_override(tmp_path: Path) -> None:
    text = MINIMAL + '\n[environments.small]\nkind = "local"\nmax_size = 1\n'
    with pytest.raises(StackError, match=r"environments\.small: sizes must satisfy"):
        load_stack(write(tmp_path, text), "small")


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="not valid TOML"):
        load_stack(write(tmp_path, "[app\nname="))
    with pytest.raises(StackError, match="file not found"):
        load_stack(tmp_path / "nope.toml")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = MINIMAL.replace('name = "demo"', 'name = "demo"\nport = 0\ncolour = 1')
    with pytest.raises(StackError) as caught:
        load_stack(write(tmp_path, text))
    fields = {problem.split(":")[0] for problem in caught.value.problems}
    assert {"app.port", "app.colour"} <= fields


# --- SSH access for verify: image.ssh_user, environments.<env>.ssh ---------------------------

LOCAL_ENV = '\n[environments.local]\nkind = "local"\n'
AWS_ENV = '\n[environments.aws]\nkind = "aws"\nplain_http = true\n'


def test_ssh_defaults_debian_user_private_ip_locally_public_ip_on_aws(tmp_path: Path) -> None:
    stack = load_stack(write(tmp_path, MINIMAL + LOCAL_ENV + AWS_ENV))
    assert stack.image.ssh_user == "admin"
    assert stack.ssh_address == "private_ip"
    assert stack.ssh_private_key_file is None
    assert stack.environment.ssh.ingress_cidrs == []
    assert load_stack(write(tmp_path, MINIMAL + LOCAL_ENV + AWS_ENV), "aws").ssh_address == (
        "public_ip"
    )


def test_alb_deletion_protection_is_on_for_aws_and_off_locally_unless_set(
    tmp_path: Path,
) -> None:
    both = MINIMAL + LOCAL_ENV + AWS_ENV
    assert load_stack(write(tmp_path, both), "local").deletion_protection is False
    assert load_stack(write(tmp_path, both), "aws").deletion_protection is True
    off = both.replace("[network]", "[load_balancer]\ndeletion_protection = false\n\n[network]")
    assert load_stack(write(tmp_path, off), "aws").deletion_protection is False
    on = off.replace("deletion_protection = false", "deletion_protection = true")
    assert load_stack(write(tmp_path, on), "local").deletion_protection is True


def test_access_and_flow_logs_are_on_for_aws_and_off_locally_unless_set(tmp_path: Path) -> None:
    both = MINIMAL + LOCAL_ENV + AWS_ENV
    local = load_stack(write(tmp_path, both), "local")
    aws = load_stack(write(tmp_path, both), "aws")
    assert (local.access_logs, local.flow_logs) == (False, False)
    assert (aws.access_logs, aws.flow_logs) == (True, True)
    assert aws.logs.retention_days == 90
    logs = "[logs]\naccess_logs = true\nflow_logs = false\nretention_days = 30\n\n"
    chosen = both.replace("[network]", logs + "[network]")
    for env_name in ("local", "aws"):
        stack = load_stack(write(tmp_path, chosen), env_name)
        assert (stack.access_logs, stack.flow_logs, stack.logs.retention_days) == (True, False, 30)


def test_bake_ingress_cidrs_are_networks_and_name_the_field(tmp_path: Path) -> None:
    text = MINIMAL + AWS_ENV + 'bake_ingress_cidrs = ["198.51.100.0/24"]\n'
    assert load_stack(write(tmp_path, text), "aws").environment.bake_ingress_cidrs == [
        "198.51.100.0/24"
    ]
    assert (
        load_stack(write(tmp_path, MINIMAL + AWS_ENV), "aws").environment.bake_ingress_cidrs is None
    )
    broken = MINIMAL + AWS_ENV + 'bake_ingress_cidrs = ["the office"]\n'
    with pytest.raises(StackError, match=r"environments\.aws\.bake_ingress_cidrs"):
        load_stack(write(tmp_path, broken), "aws")


def test_log_retention_out_of_range_names_the_field(tmp_path: Path) -> None:
    text = MINIMAL.replace("[network]", "[logs]\nretention_days = 0\n\n[network]")
    with pytest.raises(StackError, match=r"logs\.retention_days"):
        load_stack(write(tmp_path, text), "local")


def test_ssh_fields_resolve_relative_to_the_stack_file(tmp_path: Path) -> None:
    text = MINIMAL.replace("[network]", '[image]\nkey_name = "ops"\n\n[network]') + (
        AWS_ENV + 'ssh = { private_key_file = "keys/ops.pem", '
        'proxy_command = "aws ssm start-session --target %h", address = "instance_id", '
        'ingress_cidrs = ["10.0.0.0/8"] }\n'
    )
    stack = load_stack(write(tmp_path, text), "aws")
    assert stack.ssh_private_key_file == (tmp_path / "keys" / "ops.pem").resolve()
    assert stack.ssh_address == "instance_id"
    assert stack.environment.ssh.ingress_cidrs == ["10.0.0.0/8"]


@pytest.mark.parametrize(
    ("ssh", "problem"),
    [
        ('{ address = "elastic_ip" }', "environments.aws.ssh.address: Input should be"),
        ('{ address = "instance_id" }', "environments.aws.ssh: address 'instance_id' needs a"),
        ('{ ingress_cidrs = ["10.0.0.300/8"] }', "environments.aws.ssh.ingress_cidrs"),
        ("{ port = 2222 }", "environments.aws.ssh.port: unknown key"),
        (
            '{ private_key_file = "k.pem" }',
            "environments.aws.ssh.private_key_file: only with image.key_name",
        ),
    ],
)
def test_ssh_errors_name_the_field(tmp_path: Path, ssh: str, problem: str) -> None:
    with pytest.raises(StackError) as error:
        load_stack(write(tmp_path, MINIMAL + AWS_ENV + f"ssh = {ssh}\n"), "aws")
    assert problem in str(error.value)


def test_ssh_user_must_be_a_user_name(tmp_path: Path) -> None:
    text = MINIMAL.replace("[network]", '[image]\nssh_user = "root; rm"\n\n[network]')
    with pytest.raises(StackError, match=r"image\.ssh_user"):
        load_stack(write(tmp_path, text))


def test_app_source_is_relative_to_the_stack_file(tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    text = MINIMAL.replace('name = "demo"', 'name = "demo"\nsource = "../shop"')
    stack = load_stack(write(tmp_path / "stacks", text))
    assert stack.app_source_dir == (tmp_path / "shop").resolve()
    assert load_stack(write(tmp_path, MINIMAL)).app_source_dir == tmp_path.resolve()


APP_WITHOUT_START = MINIMAL.replace('start = "gunicorn demo.wsgi --bind 0.0.0.0:$PORT"\n', "")


@pytest.mark.parametrize(
    ("app_keys", "field", "problem"),
    [
        ('runtime = "static"\nstart = "nginx"', "app.start", "static app has no start command"),
        ('runtime = "node"', "app.start", "required for runtime 'node'"),
        ('runtime = "binary"', "app.start", "required for runtime 'binary'"),
        ('start = "x"\ndocument_root = "dist"', "app.document_root", "only for runtime"),
        ('runtime = "ruby"\nstart = "x"', "app.runtime", "'python', 'node', 'static' or 'binary'"),
        ('start = "x"\npackages = ["libpq5", "Bad_Name"]', "app.packages.1", "pattern"),
        ('start = "x"\nbuild = "make\\nmake install"', "app.build", "pattern"),
        ('start = "x"\nversion = "1.0 beta"', "app.version", "pattern"),
    ],
)
def test_app_keys_are_checked_per_runtime(
    tmp_path: Path, app_keys: str, field: str, problem: str
) -> None:
    text = APP_WITHOUT_START.replace('name = "demo"', f'name = "demo"\n{app_keys}')
    with pytest.raises(StackError) as error:
        load_stack(write(tmp_path, text))
    (line,) = [line for line in error.value.problems if line.startswith(f"{field}:")]
    assert problem in line


@pytest.mark.parametrize(
    ("app_keys", "runtime"),
    [
        ('runtime = "static"\ndocument_root = "dist"\nbuild = "npm run build"', "static"),
        ('runtime = "node"\nstart = "node server.js"\npackages = ["libvips42"]', "node"),
        ('runtime = "binary"\nstart = "./server"\nversion = "2.1.0"', "binary"),
    ],
)
def test_each_runtime_validates(tmp_path: Path, app_keys: str, runtime: str) -> None:
    text = APP_WITHOUT_START.replace('name = "demo"', f'name = "demo"\n{app_keys}')
    assert load_stack(write(tmp_path, text)).app.runtime == runtime


CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c"


def test_an_aws_environment_serves_https_unless_its_stack_file_says_plain_http(
    tmp_path: Path,
) -> None:
    bare = MINIMAL + LOCAL_ENV + '\n[environments.prod]\nkind = "aws"\n'
    with pytest.raises(StackError, match=r"environments\.prod: an AWS environment serves HTTPS"):
        load_stack(write(tmp_path, bare), "prod")
    assert load_stack(write(tmp_path, bare), "local").load_balancer.https is None
    plain = load_stack(write(tmp_path, bare + "plain_http = true\n"), "prod")
    assert (plain.load_balancer.https, plain.load_balancer.http.action) == (None, "forward")
    secure = load_stack(write(tmp_path, bare + f'certificate_arn = "{CERTIFICATE}"\n'), "prod")
    https = secure.load_balancer.https
    assert https is not None and https.certificate_arn == CERTIFICATE
    assert (https.port, https.ssl_policy) == (443, "ELBSecurityPolicy-TLS13-1-2-2021-06")
    assert secure.load_balancer.http.action == "redirect_https"
    both = bare + f'certificate_arn = "{CERTIFICATE}"\nplain_http = true\n'
    with pytest.raises(StackError, match=r"environments\.prod\.plain_http"):
        load_stack(write(tmp_path, both), "prod")


def test_http_redirects_when_there_is_https_unless_the_stack_file_says_forward(
    tmp_path: Path,
) -> None:
    https = f'\n[load_balancer.https]\ncertificate_arn = "{CERTIFICATE}"\nport = 8443\n'
    redirecting = load_stack(write(tmp_path, MINIMAL + https))
    assert redirecting.load_balancer.http.action == "redirect_https"
    forward = MINIMAL + '\n[load_balancer]\nhttp = { action = "forward" }\n' + https
    assert load_stack(write(tmp_path, forward)).load_balancer.http.action == "forward"
    # An environment's certificate replaces the stack file's; the port and policy stay.
    local = (
        https
        + '\n[environments.local]\nkind = "local"\ncertificate_arn = "'
        + (CERTIFICATE.replace("eu-west-1", "us-east-1") + '"\n')
    )
    listener = load_stack(write(tmp_path, MINIMAL + local)).load_balancer.https
    assert listener is not None
    assert (listener.port, listener.certificate_arn) == (
        8443,
        CERTIFICATE.replace("eu-west-1", "us-east-1"),
    )


@pytest.mark.parametrize(
    ("policy", "accepted"),
    [
        ("ELBSecurityPolicy-TLS13-1-2-2021-06", True),
        ("ELBSecurityPolicy-TLS13-1-3-PQ-2025-09", True),
        ("ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04", True),
        ("ELBSecurityPolicy-FS-1-2-Res-2020-10", True),
        ("ELBSecurityPolicy-TLS-1-2-Ext-2018-06", True),
        ("ELBSecurityPolicy-2016-08", False),
        ("ELBSecurityPolicy-TLS13-1-0-2021-06", False),
        ("ELBSecurityPolicy-TLS-1-1-2017-01", False),
    ],
)
def test_the_https_policy_must_refuse_tls_below_1_2(
    tmp_path: Path, policy: str, accepted: bool
) -> None:
    text = MINIMAL + (
        f'\n[load_balancer.https]\ncertificate_arn = "{CERTIFICATE}"\nssl_policy = "{policy}"\n'
    )
    if accepted:
        assert load_stack(write(tmp_path, text)).load_balancer.https is not None
    else:
        with pytest.raises(StackError, match=r"load_balancer\.https\.ssl_policy.*TLS 1\.2"):
            load_stack(write(tmp_path, text))
