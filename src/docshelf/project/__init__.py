"""A project's stack on the shelf: its dependencies (manifests, lockfiles), the sources that document them, its scope.

`manifests` reads what the project depends on, `matching` finds each dependency's docs on the
shelf, `scope` writes and reads the `.docshelf.toml` that search, ask, chat, mcp and serve honour.
"""
