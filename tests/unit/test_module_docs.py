"""The Terraform modules' READMEs: their generated tables match the .tf files, and their usage
examples set only variables the module has (tools/module_docs.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools.module_docs import (
    BEGIN_MARKER,
    END_MARKER,
    MODULE_DIRS,
    REGENERATE,
    ModuleDocsError,
    Variable,
    check,
    example_problems,
    generated_part,
    main,
    read_module,
    render,
    usage_examples,
    with_tables,
    write,
)

ROOT = Path(__file__).resolve().parents[2]


def _readme(module_dir: Path) -> str:
    return (module_dir / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=str)
def test_readme_tables_match_the_module(module_dir: Path) -> None:
    path = ROOT / module_dir
    readme = _readme(path)

    assert generated_part(readme) == render(read_module(path)), (
        f"{module_dir}/README.md is out of date with its .tf files: run {REGENERATE}"
    )


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=str)
def test_usage_example_sets_only_real_variables(module_dir: Path) -> None:
    path = ROOT / module_dir
    examples = usage_examples(_readme(path))

    assert examples, f"{module_dir}/README.md has no HCL usage example"
    assert example_problems(read_module(path), examples) == []


def test_every_module_has_its_readme_checked() -> None:
    on_disk = {
        p.parent.relative_to(ROOT)
        for p in (ROOT / "terraform").glob("**/variables.tf")
        if ".terraform" not in p.parts
    }

    assert on_disk == set(MODULE_DIRS)


def test_the_tables_list_every_variable_and_output() -> None:
    module = read_module(ROOT / "terraform/modules/alb")
    tables = render(module)

    assert {v.name for v in module.variables} >= {"name", "vpc_id", "https", "rules", "tags"}
    for variable in module.variables:
        assert f'<a name="input_{variable.name}"></a>' in tables
    for output in module.outputs:
        assert f'<a name="output_{output.name}"></a>' in tables
    assert module.variable("https") == Variable(
        name="https",
        description=(
            "The HTTPS listener, or null for none: port, TLS policy and the ARN of the "
            "certificate (ACM or IAM)."
        ),
        type=(
            "object({\n"
            "  port            = number\n"
            '  ssl_policy      = optional(string, "ELBSecurityPolicy-TLS13-1-2-2021-06")\n'
            "  certificate_arn = string\n"
            "})"
        ),
        default="null",
    )
    vpc_id = module.variable("vpc_id")
    assert vpc_id is not None
    assert vpc_id.required


def _module(tmp_path: Path, variables: str, outputs: str = "") -> Path:
    module_dir = tmp_path / "demo"
    module_dir.mkdir()
    (module_dir / "variables.tf").write_text(variables, encoding="utf-8")
    (module_dir / "outputs.tf").write_text(outputs, encoding="utf-8")
    return module_dir


def test_rows_escape_markdown_and_show_multi_line_types_as_pre(tmp_path: Path) -> None:
    module_dir = _module(
        tmp_path,
        'variable "mode" {\n'
        '  description = "\\"a\\" | \\"b\\": the <mode>"\n'
        "  type        = string\n"
        "}\n\n"
        'variable "sizes" {\n'
        "  type = object({\n"
        "    min  = number\n"
        '    glob = optional(string, "*_x")\n'
        "  })\n"
        "  default = { min = 1 }\n"
        "}\n",
        'output "id" {\n  description = "The id."\n  value       = 1\n}\n',
    )

    tables = render(read_module(module_dir))

    assert (
        '| <a name="input_mode"></a> [mode](#input_mode) | "a" \\| "b": the \\<mode> '
        "| `string` | n/a | yes |"
    ) in tables
    assert (
        '| <a name="input_sizes"></a> [sizes](#input_sizes) | n/a '
        '| <pre>object({<br>  min  = number<br>  glob = optional(string, "\\*\\_x")<br>})</pre> '
        "| `{min = 1}` | no |"
    ) in tables
    assert '| <a name="output_id"></a> [id](#output_id) | The id. |' in tables
    assert "## Resources\n\nNo resources." in tables


def test_a_changed_description_makes_the_readme_stale_until_regenerated(tmp_path: Path) -> None:
    module_dir = tmp_path / "network"
    shutil.copytree(ROOT / "terraform/modules/network", module_dir)
    assert check(module_dir) == []
    variables = module_dir / "variables.tf"
    original = 'description = "IPv4 CIDR block of the VPC, e.g. \\"10.20.0.0/16\\"."'
    text = variables.read_text(encoding="utf-8")
    assert original in text
    variables.write_text(text.replace(original, 'description = "The VPC range."'), "utf-8")

    problems = check(module_dir)
    assert problems == [f"{module_dir / 'README.md'}: the tables are out of date: run {REGENERATE}"]
    assert main(["--check", str(module_dir)]) == 1

    before = _readme(module_dir)
    assert write(module_dir) is True
    after = _readme(module_dir)
    assert check(module_dir) == []
    assert main(["--check", str(module_dir)]) == 0
    assert "| The VPC range. |" in after
    # Only the generated part changed: the prose and the usage example are kept.
    assert before.split(BEGIN_MARKER)[0] == after.split(BEGIN_MARKER)[0]
    assert before.split(END_MARKER)[1] == after.split(END_MARKER)[1]
    assert write(module_dir) is False


def test_a_new_output_makes_the_readme_stale(tmp_path: Path) -> None:
    module_dir = tmp_path / "asg"
    shutil.copytree(ROOT / "terraform/modules/asg", module_dir)
    with (module_dir / "outputs.tf").open("a", encoding="utf-8") as outputs:
        outputs.write('\noutput "extra" {\n  description = "More."\n  value = 1\n}\n')

    assert check(module_dir) != []


_README = f"""# demo

```hcl
module "demo" {{
  source = "../modules/demo"

  size  = 2
  sizze = 3
}}
```

{BEGIN_MARKER}
{END_MARKER}
"""


def test_usage_example_problems_name_unknown_and_missing_variables(tmp_path: Path) -> None:
    module_dir = _module(
        tmp_path,
        'variable "size" {\n  type = number\n}\n\n'
        'variable "name" {\n  type = string\n}\n\n'
        'variable "tags" {\n  type    = map(string)\n  default = {}\n}\n',
    )
    module = read_module(module_dir)

    examples = usage_examples(_README)

    assert [e.arguments for e in examples] == [("size", "sizze")]
    assert example_problems(module, examples) == [
        'module "demo" sets sizze: no such variable',
        'module "demo" leaves out the required name',
    ]
    assert example_problems(module, []) == ["has no usage example (an ```hcl block)"]


def test_usage_example_of_another_module_is_reported(tmp_path: Path) -> None:
    module_dir = _module(tmp_path, 'variable "size" {\n  type = number\n}\n')
    readme = _README.replace("../modules/demo", "../modules/other").replace("  sizze = 3\n", "")

    assert example_problems(read_module(module_dir), usage_examples(readme)) == [
        "module \"demo\" has source '../modules/other', not this module"
    ]


def test_tfvars_examples_are_checked_against_the_variables(tmp_path: Path) -> None:
    module_dir = _module(tmp_path, 'variable "size" {\n  type = number\n}\n')
    readme = f"```hcl\nsize  = 1\ncolor = 2\n```\n\n{BEGIN_MARKER}\n{END_MARKER}\n"

    assert example_problems(read_module(module_dir), usage_examples(readme)) == [
        "the tfvars example sets color: no such variable"
    ]


def test_code_inside_the_generated_part_is_no_usage_example() -> None:
    readme = f"{BEGIN_MARKER}\n```hcl\nsize = 1\n```\n{END_MARKER}\n"

    assert usage_examples(readme) == []


@pytest.mark.parametrize(
    "readme",
    [
        "no markers",
        f"{END_MARKER}\n{BEGIN_MARKER}\n",
        f"{BEGIN_MARKER}\n{BEGIN_MARKER}\n{END_MARKER}",
    ],
)
def test_a_readme_needs_one_pair_of_markers(tmp_path: Path, readme: str) -> None:
    module = read_module(_module(tmp_path, 'variable "size" {\n  type = number\n}\n'))

    with pytest.raises(ModuleDocsError):
        with_tables(readme, module)


def test_invalid_hcl_names_the_file(tmp_path: Path) -> None:
    module_dir = _module(tmp_path, 'variable "size" {\n  type = \n')

    with pytest.raises(ModuleDocsError, match=r"variables\.tf: not valid HCL"):
        read_module(module_dir)
