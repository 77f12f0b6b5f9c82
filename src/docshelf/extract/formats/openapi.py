"""OpenAPI 3.x and Swagger 2 descriptions (JSON or YAML) → one Markdown page per tag, plus an overview.

Each operation is a section: `## GET /pets — List pets {#listPets}`, its description,
parameters and responses as tables, request and response schemas as fenced JSON.
`$ref`s inside the document are resolved (a recursive schema shows the name it
recurses to); a `$ref` that points nowhere, or to another file, makes the document
fail with that reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import yaml

from docshelf.errors import ExtractError

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
MAX_SCHEMA_CHARS = 6000
"""A schema longer than this (as indented JSON) is cut; giant schemas drown the operation's prose."""
UNTAGGED = "default"

# `openapi: 3.0.3` / `"swagger": "2.0"` near the top of a file: cheap to test before parsing a large file.
_MARKER = re.compile(r"""(?:^|[{,\s])["']?(openapi|swagger)["']?\s*:\s*["']?[23]\.""", re.MULTILINE)
_SAFE_ANCHOR = re.compile(r"^[\w.~-]+$")


@dataclass(frozen=True)
class ApiPage:
    """One page of an API description: the overview (`tag` None) or one tag's operations."""

    url: str
    tag: str | None
    title: str
    markdown: str


def looks_like_openapi(text: str) -> bool:
    """Return True when the start of `text` declares an OpenAPI or Swagger version."""
    return _MARKER.search(text[:4096]) is not None


def tag_url(url: str, tag: str) -> str:
    """Return the page URL of one tag of the description at `url`: `…/openapi.yaml?tag=pets`."""
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit((parts.scheme, parts.netloc, parts.path, f"{query}tag={quote(slug(tag), safe='')}", ""))


def load_spec(text: str, url: str) -> dict[str, Any]:
    """Return the parsed description (JSON or YAML) with every internal `$ref` resolved.

    Raises:
        ExtractError: not JSON/YAML, not an OpenAPI 3.x or Swagger 2 document, or a `$ref` that
            cannot be resolved.
    """
    try:
        spec = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ExtractError(url, f"unreadable OpenAPI document: {str(exc).splitlines()[0]}") from exc
    if not isinstance(spec, dict) or not (str(spec.get("openapi", "")).startswith("3") or
                                          str(spec.get("swagger", "")).startswith("2")):
        raise ExtractError(url, "not an OpenAPI 3.x or Swagger 2 document (no `openapi: 3…` or `swagger: 2…`)")
    return _Resolver(spec, url).resolve(spec)


def openapi_pages(text: str, url: str) -> list[ApiPage]:
    """Return the overview page (at `url`) and one page per tag (at `tag_url`) of an API description.

    Raises:
        ExtractError: as `load_spec`.
    """
    spec = load_spec(text, url)
    info = spec.get("info") or {}
    api = str(info.get("title") or "API")
    tags = _operations_by_tag(spec)
    described = {t.get("name"): t for t in spec.get("tags") or [] if isinstance(t, dict)}
    pages = [ApiPage(url, None, api, _overview(spec, api, tags, url))]
    for tag, operations in tags.items():
        title = f"{tag} — {api}"
        lines = [f"# {tag} {{#{slug(tag)}}}", ""]
        if described.get(tag, {}).get("description"):
            lines += [str(described[tag]["description"]).strip(), ""]
        for path, method, operation in operations:
            lines += _operation(spec, path, method, operation)
        pages.append(ApiPage(tag_url(url, tag), tag, title, "\n".join(lines).rstrip("\n") + "\n"))
    return pages


def openapi_to_markdown(text: str, url: str) -> tuple[str, str]:
    """Return the title and Markdown of the whole description as one page (a tag page when `url` names one)."""
    pages = openapi_pages(text, _spec_url(url))
    wanted = next((page for page in pages if page.url == url), None)
    if wanted is not None:
        return wanted.title, wanted.markdown
    return pages[0].title, "\n".join(page.markdown for page in pages)


def slug(text: str) -> str:
    """Return a tag's anchor and URL form: lowercase words joined by hyphens."""
    return re.sub(r"[^\w]+", "-", text.strip().lower()).strip("-") or "default"


def _spec_url(url: str) -> str:
    """Return the description's own URL for one of its tag pages' URLs."""
    parts = urlsplit(url)
    query = "&".join(p for p in parts.query.split("&") if p and not p.startswith("tag="))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


class _Resolver:
    """Replaces `{"$ref": "#/…"}` by what it points to, keeping a recursive reference as its name."""

    def __init__(self, spec: dict[str, Any], url: str) -> None:
        self._spec = spec
        self._url = url

    def resolve(self, node: Any, active: tuple[str, ...] = ()) -> Any:
        if isinstance(node, list):
            return [self.resolve(item, active) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in active:  # a recursive schema: say where it recurses instead of unrolling it forever
                return {"$ref": ref.rsplit("/", 1)[-1]}
            return self.resolve(self._target(ref), (*active, ref))
        return {key: self.resolve(value, active) for key, value in node.items()}

    def _target(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise ExtractError(self._url, f"$ref to another file is not supported: {ref}")
        node: Any = self._spec
        for part in ref[1:].split("/")[1:] if ref != "#" else []:
            key = unquote(part).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise ExtractError(self._url, f"dangling $ref {ref}: nothing in the document at that path")
        return node


def _operations_by_tag(spec: dict[str, Any]) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """Return each tag's operations (path, method, operation) in the order of `tags`, then of first use."""
    order = [str(t["name"]) for t in spec.get("tags") or [] if isinstance(t, dict) and t.get("name")]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {name: [] for name in order}
    for path, item in (spec.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for method in METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                shared = item.get("parameters") or []
                operation = {**operation, "parameters": [*shared, *(operation.get("parameters") or [])]}
                tag = str((operation.get("tags") or [UNTAGGED])[0])
                by_tag.setdefault(tag, []).append((str(path), method, operation))
    return {tag: operations for tag, operations in by_tag.items() if operations}


def _overview(spec: dict[str, Any], api: str, tags: dict[str, list], url: str) -> str:
    info = spec.get("info") or {}
    lines = [f"# {api}", ""]
    if info.get("version"):
        lines += [f"Version {info['version']}", ""]
    if info.get("description"):
        lines += [str(info["description"]).strip(), ""]
    servers = [s.get("url") for s in spec.get("servers") or [] if isinstance(s, dict) and s.get("url")]
    if spec.get("host"):
        servers.append(f"{(spec.get('schemes') or ['https'])[0]}://{spec['host']}{spec.get('basePath', '')}")
    if servers:
        lines += ["## Servers {#servers}", "", *(f"- `{server}`" for server in servers), ""]
    if tags:
        lines += ["## Operations {#operations}", ""]
        for tag, operations in tags.items():
            lines.append(f"- [{tag}]({tag_url(url, tag)}): {len(operations)} operations")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _operation(spec: dict[str, Any], path: str, method: str, operation: dict[str, Any]) -> list[str]:
    """Return the Markdown lines of one operation's section."""
    summary = str(operation.get("summary") or "").strip()
    operation_id = str(operation.get("operationId") or "")
    anchor = operation_id if _SAFE_ANCHOR.match(operation_id) else slug(f"{method} {path}")
    heading = f"{method.upper()} {path}" + (f" — {summary}" if summary else "")
    lines = [f"## {_one_line(heading)} {{#{anchor}}}", ""]
    if operation.get("deprecated"):
        lines += ["**Deprecated.**", ""]
    if operation.get("description"):
        lines += [str(operation["description"]).strip(), ""]
    parameters = [p for p in operation.get("parameters") or [] if isinstance(p, dict)]
    plain = [p for p in parameters if p.get("in") not in ("body",)]
    if plain:
        lines += ["**Parameters**", "", "| name | in | type | required | description |", "| --- | --- | --- | --- | --- |"]
        lines += [
            f"| `{_cell(p.get('name'))}` | {_cell(p.get('in'))} | {_cell(_type(p.get('schema') or p))} | "
            f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description'))} |"
            for p in plain
        ]
        lines.append("")
    body = next((p for p in parameters if p.get("in") == "body"), None)  # Swagger 2
    if body is not None and body.get("schema"):
        lines += ["**Request body**", "", *_schema_block(body["schema"]), ""]
    request = operation.get("requestBody")
    if isinstance(request, dict):
        for media, content in (request.get("content") or {}).items():
            if isinstance(content, dict) and content.get("schema"):
                lines += [f"**Request body** (`{media}`)", "", *_schema_block(content["schema"]), ""]
    responses = {str(k): v for k, v in (operation.get("responses") or {}).items() if isinstance(v, dict)}
    if responses:
        lines += ["**Responses**", "", "| status | description |", "| --- | --- |"]
        lines += [f"| {status} | {_cell(response.get('description'))} |" for status, response in responses.items()]
        lines.append("")
        for status, response in responses.items():
            schemas = [(media, c["schema"]) for media, c in (response.get("content") or {}).items()
                       if isinstance(c, dict) and c.get("schema")]
            if response.get("schema"):  # Swagger 2
                schemas.append(("", response["schema"]))
            for media, schema in schemas:
                label = f"**Response {status}**" + (f" (`{media}`)" if media else "")
                lines += [label, "", *_schema_block(schema), ""]
    return lines


def _schema_block(schema: Any) -> list[str]:
    text = json.dumps(schema, indent=2, ensure_ascii=False, default=str)
    if len(text) > MAX_SCHEMA_CHARS:
        text = text[:MAX_SCHEMA_CHARS].rsplit("\n", 1)[0] + "\n…"
    return ["```json", text, "```"]


def _type(schema: Any) -> str:
    """Return a parameter's type as one short word: `string`, `integer (int64)`, `array of string`."""
    if not isinstance(schema, dict):
        return ""
    kind = str(schema.get("type") or ("object" if "properties" in schema else ""))
    if kind == "array":
        return f"array of {_type(schema.get('items')) or 'any'}"
    return f"{kind} ({schema['format']})" if schema.get("format") else kind


def _cell(value: Any) -> str:
    """Return `value` as text that fits in one table cell."""
    return _one_line(str(value or "")).replace("|", "\\|")


def _one_line(text: str) -> str:
    return " ".join(text.split())
