"""``python -m fms_dgt.view [OUTPUT_DIR]`` (also ``dgt view``): serve the read-only run
viewer for an output folder on 127.0.0.1 and print its URL with the access token.

starlette, uvicorn and jinja2 are imported only once the server starts, so ``--help`` and
argument errors stay fast and work without the ``view`` extra.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from fms_dgt.view.security import is_loopback, new_token

INSTALL_HINT = "pip install 'fms_dgt[view]'"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fms_dgt.view",
        description="Read-only local web viewer for the runs under an output folder: tasks, "
        "records (paged, searchable, filtered), rejections, lineage and charts.",
    )
    p.add_argument(
        "output_dir",
        nargs="?",
        default=os.environ.get("DGT_OUTPUT_DIR") or "output",
        help="the run's output folder (default: $DGT_OUTPUT_DIR or ./output, as for a run)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host that is not a loopback address (anyone who can reach it and has "
        "the token can read every record)",
    )
    return p


def free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = Path(args.output_dir)
    if not root.is_dir():
        print(
            f"error: output folder '{root}' does not exist (give the folder a run wrote to)", file=sys.stderr
        )
        return 2
    if not is_loopback(args.host) and not args.allow_remote:
        print(
            f"error: --host {args.host} is not a loopback address; the viewer serves every record "
            "of the folder, so it listens on 127.0.0.1 unless you add --allow-remote",
            file=sys.stderr,
        )
        return 2
    if not 0 <= args.port <= 65535:
        print(f"error: --port {args.port} is out of range (0-65535; 0 = a free port)", file=sys.stderr)
        return 2
    try:
        import uvicorn

        from fms_dgt.view.app import create_app
    except ImportError as exc:
        print(f"error: the viewer needs {exc.name}: {INSTALL_HINT}", file=sys.stderr)
        return 2
    if not is_loopback(args.host):
        print(
            f"warning: listening on {args.host}, not loopback: anyone who can reach this machine "
            "and learns the token can read every record under the folder",
            file=sys.stderr,
        )
    port = args.port or free_port(args.host)
    token = new_token()
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"fms_dgt viewer for {root.resolve()}", flush=True)
    print(f"  open http://{shown}:{port}/?token={token}", flush=True)
    print("  (read-only; Ctrl-C stops it)", flush=True)
    app = create_app(root, token)
    uvicorn.run(app, host=args.host, port=port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    from fms_dgt.console import run_cli

    sys.exit(run_cli(main))
