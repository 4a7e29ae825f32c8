"""The stack file turned into the variables of the Terraform root module (terraform/stack)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from webfleet.config import EnvironmentStack, HttpsListener


def terraform_variables(
    stack: EnvironmentStack,
    user_data: str,
    ami_id: str | None = None,
    ssh_public_key: str | None = None,
) -> dict[str, Any]:
    """Variables for terraform/stack; ami_id None means the newest base AMI matching the filter.

    ssh_public_key: webfleet's generated key, made a key pair when image.key_name is not set.
    """
    lb = stack.load_balancer
    fleet = stack.asg
    return {
        "name": stack.stack_name,
        "region": stack.environment.region,
        "tags": stack.tags,
        "logs": {
            "access_logs": stack.access_logs,
            "flow_logs": stack.flow_logs,
            "retention_days": stack.logs.retention_days,
        },
        "vpc_cidr": stack.network.vpc_cidr,
        "public_subnets": [
            {"cidr": subnet.cidr, "availability_zone": stack.availability_zone(subnet)}
            for subnet in stack.network.public_subnets
        ],
        "app_port": stack.app.port,
        "ami_id": ami_id,
        "base_ami": stack.image.base_ami.model_dump(),
        "instance_type": stack.image.instance_type,
        "key_name": stack.image.key_name,
        "ssh_public_key": ssh_public_key if stack.image.key_name is None else None,
        "ssh_ingress_cidrs": stack.environment.ssh.ingress_cidrs,
        "user_data": user_data,
        "load_balancer": {
            "http_port": lb.http.port,
            "http_action": lb.http.action,
            "https": _https(lb.https, stack.source.parent) if lb.https else None,
            "ingress_cidrs": lb.ingress_cidrs,
            "algorithm": lb.algorithm,
            "deregistration_delay": lb.deregistration_delay,
            "stickiness": lb.stickiness.model_dump(),
            "deletion_protection": stack.deletion_protection,
            "health_check": {
                **lb.health_check.model_dump(exclude={"path"}),
                "path": stack.health_check_path,
            },
            "rules": [
                {
                    "priority": rule.priority,
                    "path_patterns": rule.path_patterns,
                    "host_headers": rule.host_headers,
                    "action": rule.action,
                    "fixed_response": (
                        {
                            **rule.fixed_response.model_dump(),
                            "status_code": str(rule.fixed_response.status_code),
                        }
                        if rule.fixed_response
                        else None
                    ),
                }
                for rule in lb.rules
            ],
        },
        "asg": fleet.model_dump(),
        "scaling": stack.scaling.model_dump(),
    }


def _https(listener: HttpsListener, base: Path) -> dict[str, Any]:
    def absolute(name: str | None) -> str | None:
        return None if name is None else str((base / name).resolve())

    return {
        "port": listener.port,
        "ssl_policy": listener.ssl_policy,
        "certificate_arn": listener.certificate_arn,
        "certificate_pem_file": absolute(listener.certificate_file),
        "private_key_pem_file": absolute(listener.private_key_file),
        "certificate_chain_pem_file": absolute(listener.certificate_chain_file),
    }


def write_variables(path: Path, variables: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(variables, indent=2, sort_keys=True) + "\n", encoding="utf-8")
