"""Transitional: `facecast.cli` imports the `serve` command from here. The live server now lives in
`protocol`, `access`, `uploads`, `portraits`, `session`, `renders`, `app`, `serve` and `client`;
delete this module once cli.py imports `add_serve_parser` and `cmd_serve` from `facecast.live.serve`."""
from .serve import add_serve_parser, cmd_serve

__all__ = ["add_serve_parser", "cmd_serve"]
