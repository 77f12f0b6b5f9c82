"""Remove what is not the page's own content: navigation, chrome, widgets and permalink marks.

Runs on the whole document before main-content detection, so that the generic
fallback measures prose without menus and whatever block it picks holds no chrome.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborNode

from docshelf.extract.dom import ancestors, clean_text, remove_all

# Elements that never carry readable text worth keeping.
_NON_CONTENT = "script, style, noscript, template, svg, iframe, object, embed, canvas, link, form, button, input, select, textarea"

# Site chrome, by role and by the class names of the themes docshelf knows.
_CHROME = (
    "nav, [role=navigation], [role=search], [role=banner], [role=contentinfo], [role=complementary], footer,"
    " .sphinxsidebar, .related, .md-sidebar, .md-header, .md-footer, .md-top, .md-source-file, .md-skip,"
    " .theme-doc-sidebar-container, .theme-doc-toc-mobile, .theme-doc-toc-desktop, .theme-doc-footer,"
    " .theme-doc-breadcrumbs, .theme-doc-version-banner, .theme-back-to-top-button, .pagination-nav,"
    " .wy-nav-side, .wy-breadcrumbs, .rst-footer-buttons, .bs-sidebar, .bd-sidebar, .bd-sidebar-primary,"
    " .bd-sidebar-secondary, .bd-header, .bd-footer, .prev-next-area, .prev-next-footer, .related-pages,"
    " .sidebar-drawer, .toc-drawer, .mobile-header, .breadcrumbs, .breadcrumb, .pager, .skip-link,"
    # Hand-written sites (SQLite's among them) name their chrome with these common class names.
    # `aside.sidebar` is kept: that is the Sphinx sidebar directive, a side note of the text.
    " .menu, .navbar, .topbar, .masthead, .tagline, .logo, .site-header, .site-footer, #header, #footer,"
    " .sidebar:not(aside), #sidebar"
)

# Permalink marks beside a heading's text (Sphinx's "¶", Docusaurus' hash-link).
_PERMALINKS = "a.headerlink, a.hash-link, a.anchor, a.anchorjs-link, a.anchor-link"

# Marks and widgets inside the article: permalinks, tables of contents, edit
# buttons, feedback and cookie prompts. A section about cookies (Sphinx's
# `<section id="set-cookie-options">`) is documentation, not a prompt.
_NOT_A_SECTION = ":not(section):not(h1):not(h2):not(h3):not(h4):not(h5):not(h6)"
_IN_ARTICLE = (
    _PERMALINKS + ", .md-content__button,"
    " .theme-edit-this-page, .edit-this-page, .toc, #toc, .table-of-contents, [role=doc-toc], .contents.topic,"
    " [class^=toc]:not([class*=toctree]), [class*=-toc], [class*=_toc], [class*=feedback],"
    f" [class*=cookie]{_NOT_A_SECTION}, [id*=cookie]{_NOT_A_SECTION}, [class*=consent], .copybtn, .linenos,"
    " .linenodiv"
)

_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})

_EDIT_OR_SKIP_LINK = re.compile(
    r"^(edit( this page| this page on \w+| on \w+| page| source)?|view (page )?source|show source|"
    r"suggest (an )?edits?|improve this (page|doc)|skip to (main )?content|back to top)$",
    re.IGNORECASE,
)


def remove_boilerplate(root: LexborNode) -> None:
    """Strip chrome, non-content elements, permalink marks and edit links from `root`, in place."""
    remove_all(root.css(_NON_CONTENT))
    remove_all(root.css(_CHROME))
    marks = root.css(_IN_ARTICLE)
    heading_text = [mark for mark in marks if _is_heading_text(mark)]
    for link in heading_text:
        link.unwrap()
    kept = {node.mem_id for node in heading_text}
    remove_all(mark for mark in marks if mark.mem_id not in kept)
    remove_all(h for h in root.css("header") if h.css_first("h1") is None)
    remove_all(a for a in root.css("a") if _is_edit_or_skip_link(a))


def _is_heading_text(node: LexborNode) -> bool:
    """Return whether `node` is a link that carries the text of the heading it sits in.

    Some themes wrap the heading's words in a link: MkDocs' `toc_link`
    (`<h2><a class="toclink" href="#x">Setup</a></h2>`), Sphinx's contents
    back-links (`<a class="toc-backref">2.2.8</a>`), a permalink around the whole
    title. That link is the heading, not a mark beside it like Sphinx's `¶`.
    """
    heading = next((a for a in ancestors(node) if a.tag in _HEADINGS), None)
    if heading is None:
        return False
    text = clean_text(node)
    if not any(ch.isalnum() for ch in text):
        return False
    return not node.css_matches(_PERMALINKS) or text == clean_text(heading)


def _is_edit_or_skip_link(link: LexborNode) -> bool:
    """Return whether the link is an "Edit this page", "View source" or "Skip to content" link."""
    text = link.text(deep=True)
    # Pages have thousands of links; only short ones can match, so skip the regex for the rest.
    return len(text) < 60 and _EDIT_OR_SKIP_LINK.match(clean_text(link)) is not None
