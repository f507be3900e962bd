"""The operator docs against the code: one troubleshooting section per condition reason,
links that resolve, the declared license shipped, no reference to a document
that is not in the repository.

Why: docs drift silently. A reason added to the code without a section, a
section for a reason that no longer exists, a link to a moved file: each of
these fails here instead of in front of an operator.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from eni_controller.aws import errors
from eni_controller.aws.lookup import LookupReason
from eni_controller.reconcile.planner import ProblemReason
from eni_controller.reconcile.status import Reason
from eni_controller.reconcile.status_fit import FitReason

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
TROUBLESHOOTING = DOCS / "troubleshooting.md"
# The section for every AWS code without a reason of its own (errors.reason_for).
CATCH_ALL = "Any other AWS error code"
UNMAPPED = "ZzNoSuchCode"
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


def _subclasses(cls: type[errors.EC2Error]) -> set[type[errors.EC2Error]]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def _named_ec2_reasons() -> set[str]:
    """Reasons reason_for gives from an error's class rather than from its AWS code."""
    reasons = set()
    for cls in _subclasses(errors.EC2Error):
        reason = errors.reason_for(cls(action="AttachNetworkInterface", code=UNMAPPED))
        if reason != UNMAPPED:
            reasons.add(reason)
    return reasons


def _code_reasons() -> set[str]:
    return {
        *(str(r) for r in Reason),
        *(str(r) for r in FitReason),
        *(str(r) for r in ProblemReason),
        *(str(r) for r in LookupReason),
        *_named_ec2_reasons(),
    }


def _sections() -> list[str]:
    return re.findall(r"^## (.+)$", TROUBLESHOOTING.read_text(), flags=re.MULTILINE)


def test_the_reason_scan_is_real() -> None:
    assert {"Unauthorized", "CircuitOpen", "AttachmentLimitExceeded"} <= _named_ec2_reasons()
    assert errors.reason_for(errors.EC2Error(action="A", code="Odd.Code-1")) == "OddCode1"


def test_one_troubleshooting_section_per_condition_reason() -> None:
    sections = _sections()
    assert len(sections) == len(set(sections)), "a section twice"
    assert CATCH_ALL in sections
    assert set(sections) - {CATCH_ALL} == _code_reasons()


def test_relative_links_resolve() -> None:
    for page in [REPO / "README.md", *sorted(DOCS.glob("*.md"))]:
        for target, _anchor in LINK.findall(page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            assert (page.parent / target).exists(), f"{page.name}: {target}"


def test_the_readme_links_the_operator_docs() -> None:
    readme = (REPO / "README.md").read_text()
    for name in ("install", "upgrade", "uninstall", "troubleshooting", "deploy", "agent"):
        assert f"](docs/{name}.md)" in readme, name
    assert "](LICENSE)" in readme


def test_the_declared_license_is_shipped() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"]
    assert declared == "Apache-2.0"
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_no_reference_to_a_spec_outside_the_repository() -> None:
    pages = [REPO / "README.md", *DOCS.glob("*.md"), *(REPO / "helm").rglob("*.yaml")]
    for page in pages:
        assert not re.search(r"SPEC(\.md| ?§)", page.read_text()), page
