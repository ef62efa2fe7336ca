"""The KRMSyncer CRD's descriptions that restate the code, generated from it.

``kubectl explain`` shows the CRD's descriptions; two of them say what the code decides, so
they are written from the code's own constants and cannot drift: what a glob rule never
expands to (``ray_syncer.kube.discovery.GLOB_EXCLUDED``) and which namespaces an unset
``namespaces`` leaves out (``ray_syncer.engine.transform.SYSTEM_NAMESPACES``). ``make crd``
(hack/gen-crd.py) writes them into ray_syncer/data/krmsyncer.yaml and its copies;
tests/api/test_crd.py fails when the file says anything else. (It lives with the tests because
ray_syncer/api may not import the engine; docs/design.md §8.)
"""

from __future__ import annotations

import functools
import re
import textwrap

from ray_syncer.engine.transform import SYSTEM_NAMESPACES
from ray_syncer.kube.discovery import GLOB_EXCLUDED


def rules_description() -> str:
    """``spec.rules``' description, with every kind a glob never expands to."""
    names = []
    for group, kind, _ in GLOB_EXCLUDED:
        if kind == "*":
            names.append(f"every {group} kind")
        else:
            names.append(f"{kind}.{group}" if group else kind)
    return (
        'What to sync: at least one group/version/kind, each with optional filters. A "*" in '
        "group, version or kind is a glob expanded through discovery (and re-expanded when CRDs "
        f"appear or go). A glob never expands, in any version, to {', '.join(names)}, nor to kinds "
        "that cannot be listed and watched, nor, when the rule names namespaces, to cluster-scoped "
        "kinds; a rule that names one of them exactly syncs it."
    )


def namespaces_description() -> str:
    """``spec.rules[].namespaces``' description, with the namespaces unset leaves out."""
    left_out = sorted(SYSTEM_NAMESPACES)
    listed = ", ".join(left_out[:-1]) + f" and {left_out[-1]}"
    return (
        "Only objects in these source namespaces. Unset or empty means every namespace except "
        f"{listed}, whose objects are synced only by a rule that names them. Ignored for "
        "cluster-scoped kinds."
    )


GENERATED_DESCRIPTIONS = {
    # The key whose description is generated, with its indentation in the file.
    "                rules:": rules_description,
    "                      namespaces:": namespaces_description,
}


def _literal(text: str, _match: re.Match[str]) -> str:
    return text


def regenerated_text(text: str) -> str:
    """``text`` (the CRD file) with the generated descriptions written in, as folded blocks."""
    for anchor, make in GENERATED_DESCRIPTIONS.items():
        indent = " " * (len(anchor) - len(anchor.lstrip()) + 2)
        block = re.compile(
            rf"^{re.escape(anchor)}\n{indent}description: >-\n(?:{indent}  .*\n)+", re.M
        )
        body = textwrap.fill(make(), width=100, initial_indent=indent + "  ",
                             subsequent_indent=indent + "  ", break_on_hyphens=False,
                             break_long_words=False)
        replacement = f"{anchor}\n{indent}description: >-\n{body}\n"
        # A function, not a template: the text is taken literally (no backslash escapes).
        text, n = block.subn(functools.partial(_literal, replacement), text)
        if n != 1:
            raise ValueError(f"the CRD file should have one {anchor.strip()} description, found {n}")
    return text
