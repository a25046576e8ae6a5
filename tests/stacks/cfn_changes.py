"""What CloudFormation would do between two templates: which resources it replaces and which it updates.

A resource is replaced when a create-only property (from the CloudFormation registry schemas that cfn-lint
ships) changes, or refers to a resource that is replaced; it is updated when any other property changes. A custom
resource that is updated answers anew, so what refers to its attributes counts as changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cfnlint.schema import PROVIDER_SCHEMA_MANAGER


def create_only(resource_type: str) -> set[str]:
    if resource_type.startswith("Custom::"):
        return set()
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    return {p.removeprefix("/properties/").split("/")[0] for p in schema.get("createOnlyProperties", [])}


def _refers_to(value: Any, names: set[str]) -> bool:
    text = json.dumps(value)
    return any(f'{{"Ref": "{n}"}}' in text or f'["{n}", ' in text for n in names)


def plan(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, set[str]]:
    """``{"replace": ..., "update": ..., "add": ..., "remove": ...}`` by logical id."""
    old, new = before["Resources"], after["Resources"]
    common = set(old) & set(new)
    replace: set[str] = set()
    answers_anew = {
        r
        for r in common
        if new[r]["Type"].startswith("Custom::") and old[r].get("Properties") != new[r].get("Properties")
    }
    while True:
        found = {
            r
            for r in common - replace
            for p in create_only(new[r]["Type"])
            if old[r].get("Properties", {}).get(p) != new[r].get("Properties", {}).get(p)
            or _refers_to(new[r].get("Properties", {}).get(p), replace | answers_anew)
        }
        if not found:
            break
        replace |= found
    update = {
        r
        for r in common - replace
        if old[r].get("Properties") != new[r].get("Properties") or _refers_to(new[r].get("Properties"), replace)
    }
    return {"replace": replace, "update": update, "add": set(new) - set(old), "remove": set(old) - set(new)}
