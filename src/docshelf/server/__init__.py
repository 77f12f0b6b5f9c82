"""`docshelf serve`: the HTTP API (api.py) and the web UI (ui.py) over the same library calls."""
