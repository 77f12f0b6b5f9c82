"""extract: HTML (or Markdown, or text) → the title and clean Markdown of a page's main content.

    extract_html(html, url) -> Extracted(title, markdown)
    extract_document(text, kind, url) -> Extracted

Steps, one module each: `anchors` (heading ids, before chrome goes), `cleanup`
(navigation, chrome, permalinks), `main_content` (detector registry),
`codeblocks`, `blocks` (admonitions, definition lists), `links`, `markdown`
(conversion and whitespace), `title`; `document` runs them in order.
"""

from docshelf.extract.document import Extracted, extract_document, extract_html
from docshelf.extract.main_content import (
    DEFAULT_DETECTORS,
    DensestBlockDetector,
    Detector,
    SelectorDetector,
    detectors,
    register_detector,
)

__all__ = [
    "DEFAULT_DETECTORS",
    "DensestBlockDetector",
    "Detector",
    "Extracted",
    "SelectorDetector",
    "detectors",
    "extract_document",
    "extract_html",
    "register_detector",
]
