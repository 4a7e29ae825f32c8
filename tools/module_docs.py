"""The generated part of each Terraform module's README.md: requirements, module calls, resources,
inputs and outputs, read from the module's .tf files.

terraform-docs makes these tables elsewhere, but it is a Go binary that neither Debian, PyPI nor
npm ships as a package. So this tool parses the modules with python-hcl2 (a real HCL2 parser, no
regular expressions over Terraform) and writes the same layout between terraform-docs' own markers
(BEGIN_TF_DOCS / END_TF_DOCS). The prose and the usage example around the markers are written by
hand and kept as they are.

    .venv/bin/python -m tools.module_docs          # rewrite the tables of every README
    .venv/bin/python -m tools.module_docs --check  # exit 1 if a table or usage example is stale

tests/unit/test_module_docs.py runs the check, so a variables.tf or outputs.tf change that is not
followed by a regeneration fails the unit tests.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hcl2 import SerializationOptions
from hcl2.query import AttributeView, BlockView, DocumentView, NodeView
from lark.exceptions import LarkError

ROOT = Path(__file__).resolve().parents[1]
# The modules with a README, from the repository root: the three building blocks, then the root
# module that composes them.
MODULE_DIRS = (
    Path("terraform/modules/network"),
    Path("terraform/modules/alb"),
    Path("terraform/modules/asg"),
    Path("terraform/modules/logs"),
    Path("terraform/stack"),
)

BEGIN_MARKER = "<!-- BEGIN_TF_DOCS -->"
END_MARKER = "<!-- END_TF_DOCS -->"
REGENERATE = ".venv/bin/python -m tools.module_docs"

# Arguments of a module block that are Terraform's, not the module's variables.
META_ARGUMENTS = frozenset({"source", "version", "providers", "count", "for_each", "depends_on"})

# Attribute values as Python values: strings without their quotes, heredocs resolved.
_VALUES = SerializationOptions(
    with_comments=False,
    explicit_blocks=False,
    strip_string_quotes=True,
    preserve_heredocs=False,
)
# In a <pre> table cell: characters Markdown would read (a `_` only at the edge of a word).
_PRE_MARKDOWN = re.compile(r"[\\`*|]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_FENCE = re.compile(r"^```(hcl|terraform|tf)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


class ModuleDocsError(Exception):
    """A module or README this tool cannot read (bad HCL, missing markers)."""


@dataclass(frozen=True)
class Variable:
    name: str
    description: str
    type: str
    """The type constraint as written (`any` when there is none)."""
    default: str | None
    """The default as written, or None when the variable has none and so is required."""

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class Output:
    name: str
    description: str


@dataclass(frozen=True)
class Requirement:
    name: str
    version: str


@dataclass(frozen=True)
class ModuleCall:
    name: str
    source: str


@dataclass(frozen=True)
class Resource:
    address: str
    kind: str
    """"resource" or "data source"."""


@dataclass(frozen=True)
class Module:
    path: Path
    requirements: tuple[Requirement, ...]
    module_calls: tuple[ModuleCall, ...]
    resources: tuple[Resource, ...]
    variables: tuple[Variable, ...]
    outputs: tuple[Output, ...]

    def variable(self, name: str) -> Variable | None:
        return next((v for v in self.variables if v.name == name), None)


@dataclass(frozen=True)
class UsageExample:
    """One usage example of a README: a `module` block, or tfvars-style top-level assignments."""

    kind: str
    """"module" or "tfvars"."""
    label: str
    source: str | None
    arguments: tuple[str, ...]


# --- Reading a module ---------------------------------------------------------------------------


def _parse(text: str, where: Path | str) -> DocumentView:
    try:
        return DocumentView.parse(text)
    except LarkError as error:
        raise ModuleDocsError(f"{where}: not valid HCL: {error}") from error


def _blocks(node: DocumentView | BlockView, block_type: str) -> list[BlockView]:
    return [b for b in node.blocks(block_type) if isinstance(b, BlockView)]


def _attribute(block: BlockView, name: str) -> AttributeView | None:
    found = block.attribute(name)
    return found if isinstance(found, AttributeView) else None


def _attributes(node: DocumentView | BlockView) -> list[AttributeView]:
    return [a for a in node.attributes() if isinstance(a, AttributeView)]


def _string(block: BlockView, name: str, where: str) -> str | None:
    attribute = _attribute(block, name)
    if attribute is None:
        return None
    value = attribute.value_node.to_dict(_VALUES)
    if not isinstance(value, str):
        raise ModuleDocsError(f"{where}: {name} must be a string, not {value!r}")
    return value


def _as_written(node: NodeView) -> str:
    """An expression's HCL text, its continuation lines de-indented to the enclosing block."""
    first, *rest = node.to_hcl().strip().splitlines()
    indent = min((len(line) - len(line.lstrip()) for line in rest if line.strip()), default=0)
    return "\n".join([first, *(line[indent:].rstrip() for line in rest)])


def _label(block: BlockView, count: int, where: str) -> list[str]:
    labels = block.name_labels
    if len(labels) != count:
        raise ModuleDocsError(f"{where}: a {block.block_type} block needs {count} label(s)")
    return labels


def read_module(path: Path) -> Module:
    """Everything the README tables show, from every .tf file of the module at `path`."""
    files = sorted(path.glob("*.tf"))
    if not files:
        raise ModuleDocsError(f"{path}: no .tf files")
    requirements: list[Requirement] = []
    providers: list[Requirement] = []
    module_calls: list[ModuleCall] = []
    resources: list[Resource] = []
    variables: list[Variable] = []
    outputs: list[Output] = []
    for file in files:
        document = _parse(file.read_text(encoding="utf-8"), file)
        for terraform in _blocks(document, "terraform"):
            version = _string(terraform, "required_version", str(file))
            if version is not None:
                requirements.append(Requirement("terraform", version))
            for required in _blocks(terraform, "required_providers"):
                for provider in _attributes(required):
                    providers.append(Requirement(provider.name, _provider_version(provider)))
        for block in _blocks(document, "module"):
            (name,) = _label(block, 1, str(file))
            source = _string(block, "source", f"{file}: module {name}")
            module_calls.append(ModuleCall(name, source or ""))
        for kind, prefix, blocks in (
            ("resource", "", _blocks(document, "resource")),
            ("data source", "data.", _blocks(document, "data")),
        ):
            for block in blocks:
                resource_type, name = _label(block, 2, str(file))
                resources.append(Resource(f"{prefix}{resource_type}.{name}", kind))
        for block in _blocks(document, "variable"):
            (name,) = _label(block, 1, str(file))
            where = f"{file}: variable {name}"
            type_ = _attribute(block, "type")
            default = _attribute(block, "default")
            variables.append(
                Variable(
                    name=name,
                    description=_string(block, "description", where) or "",
                    type="any" if type_ is None else _as_written(type_.value_node),
                    default=None if default is None else _as_written(default.value_node),
                )
            )
        for block in _blocks(document, "output"):
            (name,) = _label(block, 1, str(file))
            description = _string(block, "description", f"{file}: output {name}") or ""
            outputs.append(Output(name, description))
    return Module(
        path=path,
        requirements=(*requirements, *sorted(providers, key=lambda r: r.name)),
        module_calls=tuple(sorted(module_calls, key=lambda m: m.name)),
        resources=tuple(sorted(resources, key=lambda r: r.address)),
        variables=tuple(sorted(variables, key=lambda v: v.name)),
        outputs=tuple(sorted(outputs, key=lambda o: o.name)),
    )


def _provider_version(provider: AttributeView) -> str:
    value = provider.value_node.to_dict(_VALUES)
    if isinstance(value, str):  # the pre-0.13 form: aws = "~> 5.0"
        return value
    if isinstance(value, dict):
        version = value.get("version")
        return version if isinstance(version, str) else ""
    return ""


# --- Rendering the tables -----------------------------------------------------------------------


def _text(value: str) -> str:
    """Plain text for a table cell: no cell breaks, no HTML tags, one line."""
    escaped = value.strip().replace("\\", "\\\\")
    for char in "|<*":
        escaped = escaped.replace(char, "\\" + char)
    return "<br>".join(escaped.splitlines()) or "n/a"


def _code(value: str) -> str:
    """HCL for a table cell: inline code, or a <pre> block when it spans lines."""
    if "\n" not in value:
        cell = value.replace("|", "\\|")
        return f"`` {cell} ``" if "`" in cell else f"`{cell}`"
    # Markdown still applies inside an inline <pre>: HTML-escape, and backslash-escape what would
    # turn into emphasis or code.
    html = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    html = _PRE_MARKDOWN.sub(r"\\\g<0>", html)
    return "<pre>" + "<br>".join(html.splitlines()) + "</pre>"


def _anchor(kind: str, name: str) -> str:
    return f'<a name="{kind}_{name}"></a> [{name}](#{kind}_{name})'


def _table(heading: str, columns: str, rows: Iterable[str], empty: str) -> list[str]:
    lines = [f"## {heading}", ""]
    body = list(rows)
    if not body:
        return [*lines, empty]
    names = [c.strip() for c in columns.split("|")]
    rule = "|".join(":-:" if name == "Required" else "---" for name in names)
    return [*lines, f"| {columns} |", f"|{rule}|", *body]


def render(module: Module) -> str:
    """The README text between the markers (without them)."""
    sections = [
        _table(
            "Requirements",
            "Name | Version",
            (f"| {r.name} | {_code(r.version)} |" for r in module.requirements),
            "No requirements.",
        ),
        _table(
            "Modules",
            "Name | Source",
            (f"| {m.name} | {_code(m.source)} |" for m in module.module_calls),
            "No modules.",
        ),
        _table(
            "Resources",
            "Name | Type",
            (f"| {_code(r.address)} | {r.kind} |" for r in module.resources),
            "No resources.",
        ),
        _table(
            "Inputs",
            "Name | Description | Type | Default | Required",
            (
                f"| {_anchor('input', v.name)} | {_text(v.description)} | {_code(v.type)} | "
                f"{'n/a' if v.default is None else _code(v.default)} | "
                f"{'yes' if v.required else 'no'} |"
                for v in module.variables
            ),
            "No inputs.",
        ),
        _table(
            "Outputs",
            "Name | Description",
            (f"| {_anchor('output', o.name)} | {_text(o.description)} |" for o in module.outputs),
            "No outputs.",
        ),
    ]
    return "\n\n".join("\n".join(section) for section in sections)


# --- The README around the tables ---------------------------------------------------------------


def _marker_span(readme: str, where: Path | str) -> tuple[int, int]:
    """Where the generated text starts and ends (just inside the markers)."""
    if readme.count(BEGIN_MARKER) != 1 or readme.count(END_MARKER) != 1:
        raise ModuleDocsError(
            f"{where}: needs exactly one {BEGIN_MARKER} and one {END_MARKER} line"
        )
    start = readme.index(BEGIN_MARKER) + len(BEGIN_MARKER)
    end = readme.index(END_MARKER)
    if end < start:
        raise ModuleDocsError(f"{where}: {END_MARKER} comes before {BEGIN_MARKER}")
    return start, end


def generated_part(readme: str, where: Path | str = "README.md") -> str:
    start, end = _marker_span(readme, where)
    return readme[start:end].strip("\n")


def with_tables(readme: str, module: Module, where: Path | str = "README.md") -> str:
    """`readme` with the text between its markers replaced by the module's tables."""
    start, end = _marker_span(readme, where)
    return f"{readme[:start]}\n{render(module)}\n{readme[end:]}"


def usage_examples(readme: str, where: Path | str = "README.md") -> list[UsageExample]:
    """The HCL code blocks outside the generated part: module blocks and tfvars assignments."""
    start, end = _marker_span(readme, where)
    examples: list[UsageExample] = []
    for match in _FENCE.finditer(readme[:start] + readme[end:]):
        document = _parse(match.group(2), f"{where}: usage example")
        for block in _blocks(document, "module"):
            (label,) = _label(block, 1, f"{where}: usage example")
            names = tuple(a.name for a in _attributes(block))
            examples.append(
                UsageExample(
                    kind="module",
                    label=label,
                    source=_string(block, "source", f"{where}: module {label}"),
                    arguments=tuple(n for n in names if n not in META_ARGUMENTS),
                )
            )
        assignments = tuple(a.name for a in _attributes(document))
        if assignments:
            examples.append(UsageExample("tfvars", "", None, assignments))
    return examples


def example_problems(module: Module, examples: Sequence[UsageExample]) -> list[str]:
    """What is wrong with a README's usage examples: none, or names the module does not have."""
    if not examples:
        return ["has no usage example (an ```hcl block)"]
    problems: list[str] = []
    declared = {v.name for v in module.variables}
    required = {v.name for v in module.variables if v.required}
    for example in examples:
        what = f'module "{example.label}"' if example.kind == "module" else "the tfvars example"
        unknown = sorted(set(example.arguments) - declared)
        if unknown:
            problems.append(f"{what} sets {', '.join(unknown)}: no such variable")
        missing = sorted(required - set(example.arguments))
        if missing:
            problems.append(f"{what} leaves out the required {', '.join(missing)}")
        if example.kind == "module" and (
            example.source is None or Path(example.source).name != module.path.name
        ):
            problems.append(f"{what} has source {example.source!r}, not this module")
    return problems


def check(module_dir: Path) -> list[str]:
    """Why the README of the module at `module_dir` is stale; empty when it is up to date."""
    readme_path = module_dir / "README.md"
    if not readme_path.is_file():
        return [f"{readme_path}: missing"]
    readme = readme_path.read_text(encoding="utf-8")
    module = read_module(module_dir)
    problems = []
    if generated_part(readme, readme_path) != render(module):
        problems.append(f"{readme_path}: the tables are out of date: run {REGENERATE}")
    problems += [
        f"{readme_path}: {p}" for p in example_problems(module, usage_examples(readme, readme_path))
    ]
    return problems


def write(module_dir: Path) -> bool:
    """Regenerate the tables of the module's README; True if that changed the file."""
    readme_path = module_dir / "README.md"
    if not readme_path.is_file():
        raise ModuleDocsError(
            f"{readme_path}: missing; write one with a {BEGIN_MARKER} and an {END_MARKER} line"
        )
    readme = readme_path.read_text(encoding="utf-8")
    updated = with_tables(readme, read_module(module_dir), readme_path)
    if updated == readme:
        return False
    readme_path.write_text(updated, encoding="utf-8")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.module_docs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    parser.add_argument(
        "modules",
        nargs="*",
        type=Path,
        help="module directories (default: the modules and the stack under terraform/)",
    )
    args = parser.parse_args(argv)
    module_dirs: list[Path] = args.modules or [ROOT / d for d in MODULE_DIRS]
    try:
        if args.check:
            problems = [p for d in module_dirs for p in check(d)]
            for problem in problems:
                print(problem, file=sys.stderr)
            return 1 if problems else 0
        for module_dir in module_dirs:
            print(f"{module_dir / 'README.md'}: {'updated' if write(module_dir) else 'up to date'}")
    except ModuleDocsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
