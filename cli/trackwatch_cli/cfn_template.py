"""CloudFormation templates as plain dicts: read (short tags included) and translate from SAM.

The local runtime and the infrastructure tests both start from `template.yaml`; this
module is the one place that turns it into the CloudFormation that AWS would deploy.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import boto3
import yaml
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.utils.py27hash_fix import (
    to_py27_compatible_template,
    undo_mark_unicode_str_in_template,
)

#: Where `translate` says local code lives: S3 keys in this bucket are the local paths.
LOCAL_CODE_BUCKET = "trackwatch-local-code"

# Properties that SAM reads as an S3 location but that `sam build` fills from a local folder.
_LOCAL_CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that reads CloudFormation's short-form intrinsic functions."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - yaml has no fourth node kind
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node {node!r}")

    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # "Resource.Attribute.With.Dots" -> ["Resource", "Attribute.With.Dots"]
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)
# CloudFormation reads "2010-09-09" as a string, not as a YAML 1.1 date.
_CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _CfnLoader.yaml_implicit_resolvers.items()
}


def parse_template(text: str) -> dict[str, Any]:
    """Parse a CloudFormation/SAM template given as YAML or JSON text."""
    document = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(document, dict):
        raise ValueError("a template must be a mapping at the top level")
    return document


def load_template(path: str | Path) -> dict[str, Any]:
    """Read the template at `path`, turning short tags (!Ref, !Sub, ...) into their long form."""
    return parse_template(Path(path).read_text(encoding="utf-8"))


def translate(
    template: dict[str, Any],
    region: str,
    account: str,
    *,
    parameter_values: dict[str, Any] | None = None,
    code_bucket: str = LOCAL_CODE_BUCKET,
) -> dict[str, Any]:
    """Translate a SAM template into plain CloudFormation, as the SAM transform would.

    Local `CodeUri`/`ContentUri` folders become `s3://<code_bucket>/<folder>`, so in the
    result each function's and layer's S3Key is the folder that holds its code.
    Parameters not in `parameter_values` take their defaults.
    """
    sam_template = _with_code_in_s3(copy.deepcopy(template), code_bucket)
    values: dict[str, Any] = {
        "AWS::Region": region,
        "AWS::AccountId": account,
        **(parameter_values or {}),
    }
    to_py27_compatible_template(sam_template, values)
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        boto_session=boto3.session.Session(region_name=region),
    )
    translated = translator.translate(
        sam_template,
        parameter_values=values,
        # Policies here are SAM policy templates and ARNs, never bare managed-policy names,
        # so there is nothing to look up in IAM.
        get_managed_policy_map=dict,
    )
    result: dict[str, Any] = undo_mark_unicode_str_in_template(translated)
    return result


def _with_code_in_s3(template: dict[str, Any], code_bucket: str) -> dict[str, Any]:
    def relocate(properties: dict[str, Any], name: str) -> None:
        uri = properties.get(name)
        if isinstance(uri, str) and not uri.startswith("s3://"):
            properties[name] = f"s3://{code_bucket}/{uri.strip('/')}"

    function_globals = template.get("Globals", {}).get("Function", {})
    relocate(function_globals, "CodeUri")
    for resource in template.get("Resources", {}).values():
        name = _LOCAL_CODE_PROPERTIES.get(resource.get("Type", ""))
        if name is not None:
            relocate(resource.setdefault("Properties", {}), name)
    return template
