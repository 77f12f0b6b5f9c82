"""Section anchors: give every heading the id a citation should point at, and write it as `{#id}`.

The chunker reads anchors back from Markdown headings in attribute-list form
(`## Heading text {#anchor-id}`, as Pandoc and MkDocs attr_list write them).

Sphinx API entries (`<dl class="py method"><dt id="flask.Flask.route">`) are
anchors too. They become headings one level below the section they sit in
(nested entries one more level down, at most h6), with the signature as text
and the fully qualified name taken from the id:
`#### flask.Flask.route(rule, **options) {#flask.Flask.route}`.
"""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser, LexborNode

from docshelf.extract.dom import HEADINGS, ancestors, classes, clean_text, remove_all, select

# The headerlink-like marks whose href names the heading's anchor.
_PERMALINK = "a.headerlink[href^='#'], a.hash-link[href^='#'], a.anchor[href^='#']"
# Empty named anchors inside a heading, as hand-written pages place them.
_NAMED_ANCHOR = "a[id], a[name]"
# Sphinx object descriptions: `sig-object` since Sphinx 4, bare domain classes before.
API_ENTRY = (
    "dt.sig-object[id], dl.function > dt[id], dl.class > dt[id], dl.method > dt[id],"
    " dl.attribute > dt[id], dl.data > dt[id], dl.exception > dt[id]"
)


def assign_heading_ids(root: LexborNode) -> None:
    """Set an `id` on each heading of `root` that lacks one, from its section, permalink or named anchor.

    Must run before cleanup, which removes the permalinks.
    """
    for heading in select(root, HEADINGS):
        if heading.attributes.get("id"):
            continue
        anchor = _section_id(heading) or _permalink_id(heading)
        if anchor:
            heading.attrs["id"] = anchor


def _section_id(heading: LexborNode) -> str | None:
    """Return the id of the section this heading is the title of (Sphinx, docutils)."""
    section = heading.parent
    if section is None or not section.attributes.get("id"):
        return None
    if section.tag != "section" and "section" not in classes(section):
        return None
    first = section.css_first(HEADINGS)
    return section.attributes["id"] if first is not None and first.mem_id == heading.mem_id else None


def _permalink_id(heading: LexborNode) -> str | None:
    """Return the fragment of the heading's permalink, or the name of an anchor inside it."""
    link = heading.css_first(_PERMALINK)
    if link is not None:
        return (link.attributes.get("href") or "#")[1:] or None
    named = heading.css_first(_NAMED_ANCHOR)
    if named is not None:
        return named.attributes.get("id") or named.attributes.get("name")
    return None


def api_entries_to_headings(tree: LexborHTMLParser, main: LexborNode) -> None:
    """Turn each Sphinx API entry signature (`dt[id]`) of `main` into a heading that keeps its id."""
    section_level = 1
    entry_lists: list[LexborNode] = []
    entry_list_ids: set[int] = set()
    for node in select(main, f"{HEADINGS}, {API_ENTRY}"):
        tag = node.tag or ""
        if tag != "dt":
            section_level = int(tag[1])
            continue
        entry_list = node.parent
        if entry_list is None:
            continue
        nesting = sum(1 for a in ancestors(entry_list) if a.mem_id in entry_list_ids)
        if entry_list.mem_id not in entry_list_ids:
            entry_list_ids.add(entry_list.mem_id)
            entry_lists.append(entry_list)
        heading = tree.create_node(f"h{min(section_level + 1 + nesting, 6)}")
        heading.attrs["id"] = node.attributes["id"] or ""
        heading.insert_child(_signature(node))
        node.insert_before(heading, move=True)
    remove_all(dt for dl in entry_lists for dt in dl.iter() if dt.tag == "dt")
    # The <dl>/<dd> wrappers would make the converter write the body as a
    # definition; unwrapped, it reads as the section under the new heading.
    for entry_list in entry_lists:
        for child in entry_list.iter():
            if child.tag == "dd":
                child.unwrap()
        entry_list.unwrap()


def _signature(dt: LexborNode) -> str:
    """Return the entry's signature text, with the fully qualified name when the id gives it."""
    anchor = dt.attributes.get("id") or ""
    before: list[str] = []
    name: list[str] = []
    after: list[str] = []
    for child in dt.iter(include_text=True):
        child_classes = classes(child) if child.tag != "-text" else []
        if "sig-prename" in child_classes or "sig-name" in child_classes:
            name.append(child.text(deep=True))
        else:
            (after if name else before).append(child.text(deep=True))
    if not name:
        return clean_text(dt)
    short = "".join(name).strip()
    qualified = anchor if anchor.endswith(short) and anchor != short and "." in anchor else short
    return " ".join("".join([*before, qualified, *after]).split())


def mark_heading_anchors(main: LexborNode) -> None:
    """Append ` {#id}` to every heading of `main` that has a usable id; drop headings with no text."""
    for heading in select(main, HEADINGS):
        if not clean_text(heading):
            heading.decompose()
            continue
        anchor = heading.attributes.get("id") or ""
        if anchor and not any(c.isspace() or c in "{}" for c in anchor):
            heading.insert_child(f" {{#{anchor}}}")
