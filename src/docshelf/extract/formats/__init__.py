"""Documentation formats other than HTML and Markdown, each converted to the Markdown the HTML path produces.

`rst` (docutils → HTML → the HTML extractor), `notebook` (nbformat), `openapi`
(one page per tag) and `pdf` (pypdf). `extract.document.extract_document`
dispatches to them by the document's kind; each is imported only when used.
"""
