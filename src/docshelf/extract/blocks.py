"""Block rewrites: admonitions become blockquotes with a bold title, definition lists and tab
labels become bold paragraphs, layout tables become plain blocks.

Markdown has none of these constructs; these shapes keep every word readable,
each tab's label next to its own content, and survive any converter.
"""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser, LexborNode

from docshelf.extract.dom import ancestors, clean_text, remove_all, select

# Sphinx and Material `div.admonition`, Docusaurus `.theme-admonition`, collapsible `<details>`.
_ADMONITION = "div.admonition, aside.admonition, .theme-admonition, details"
# The title element, in the same order: Sphinx/Material, Docusaurus, <details>.
_ADMONITION_TITLE = ".admonition-title, [class^=admonitionHeading], summary"


def admonitions_to_blockquotes(tree: LexborHTMLParser, main: LexborNode) -> None:
    """Rewrite each admonition of `main` as `<blockquote><p><strong>Title</strong></p>…</blockquote>`."""
    for box in select(main, _ADMONITION):
        quote = tree.create_node("blockquote")
        title = box.css_first(_ADMONITION_TITLE)
        if title is not None:
            quote.insert_child(_bold_paragraph(tree, _title_case(clean_text(title))), move=True)
            remove_all([title])
        for child in list(box.iter(include_text=True)):
            quote.insert_child(child, move=True)
        box.insert_before(quote, move=True)
        box.decompose()


def _title_case(title: str) -> str:
    """Return the title with a capital first letter (Docusaurus writes "tip" and capitalises in CSS)."""
    return title[:1].upper() + title[1:] if title.islower() else title


def _bold_paragraph(tree: LexborHTMLParser, text: str) -> LexborNode:
    """Return a new `<p><strong>text</strong></p>`."""
    strong = tree.create_node("strong")
    strong.insert_child(text)
    paragraph = tree.create_node("p")
    paragraph.insert_child(strong, move=True)
    return paragraph


def definition_lists_to_paragraphs(tree: LexborHTMLParser, main: LexborNode) -> None:
    """Rewrite each `<dt>` of `main` as a bold paragraph and unwrap `<dd>`/`<dl>`, keeping their content.

    A term that holds a link keeps its markup, link included: in a generated index every entry is
    a `<dt>` link, and the link is what tells where the entry points.
    """
    for term in main.css("dt"):
        text = clean_text(term)
        if text and term.css_first("a[href]") is not None:
            strong = tree.create_node("strong")
            for child in list(term.iter(include_text=True)):
                strong.insert_child(child, move=True)
            paragraph = tree.create_node("p")
            paragraph.insert_child(strong, move=True)
            term.insert_before(paragraph, move=True)
        elif text:
            term.insert_before(_bold_paragraph(tree, text), move=True)
    remove_all(main.css("dt"))
    for node in select(main, "dd, dl"):
        node.unwrap()


def tabs_to_sections(tree: LexborHTMLParser, main: LexborNode) -> None:
    """Put each tab's label, as a bold paragraph, at the top of its panel, and drop the tab strip.

    Covers Material's `.tabbed-set` and ARIA tabs (`[role=tablist]` + `[role=tabpanel]`, Docusaurus).
    Inactive panels are kept: the yarn and pnpm variants are content too.
    """
    for tab_set in main.css(".tabbed-set"):
        labels = tab_set.css(".tabbed-labels > label")
        _label_panels(tree, labels, tab_set.css(".tabbed-content > .tabbed-block"))
        remove_all(tab_set.css(".tabbed-labels"))
    for tab_list in main.css("[role=tablist]"):
        container = tab_list.parent
        if container is None:
            continue
        _label_panels(tree, tab_list.css("[role=tab]"), container.css("[role=tabpanel]"))
        tab_list.decompose()


def _label_panels(tree: LexborHTMLParser, labels: list[LexborNode], panels: list[LexborNode]) -> None:
    """Insert each label's text as a bold first paragraph of the panel at the same position."""
    for label, panel in zip(labels, panels):
        text = clean_text(label)
        if not text:
            continue
        paragraph = _bold_paragraph(tree, text)
        if panel.child is not None:
            panel.child.insert_before(paragraph, move=True)
        else:
            panel.insert_child(paragraph, move=True)


def layout_tables_to_blocks(tree: LexborHTMLParser, main: LexborNode) -> None:
    """Replace one-row tables whose cells hold blocks (lists, paragraphs) with one <div> per cell.

    Such tables only lay out columns (Sphinx's genindex, hand-written pages);
    as a pipe table their lists would be squeezed into one line per cell.
    """
    for table in main.css("table"):
        rows = [row for row in table.css("tr") if _closest_table(row) == table.mem_id]
        if len(rows) != 1:
            continue
        cells = [cell for cell in rows[0].iter() if cell.tag in ("td", "th")]
        if not any(cell.css_first("ul, ol, p, div, pre, table, dl") is not None for cell in cells):
            continue
        for cell in cells:
            block = tree.create_node("div")
            for child in list(cell.iter(include_text=True)):
                block.insert_child(child, move=True)
            table.insert_before(block, move=True)
        table.decompose()


def _closest_table(node: LexborNode) -> int | None:
    """Return the mem_id of the nearest <table> above `node`."""
    return next((a.mem_id for a in ancestors(node) if a.tag == "table"), None)
