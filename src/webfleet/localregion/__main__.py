"""`python -m webfleet.localregion serve`: run the local region in the foreground."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from webfleet.localregion.errors import LocalRegionError
from webfleet.localregion.images.baseimage import default_cache_dir
from webfleet.localregion.runtime.server import serve
from webfleet.localregion.runtime.settings import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    RegionSettings,
    default_state_dir,
    default_vpc_cidr,
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m webfleet.localregion")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the local region in the foreground")
    serve_parser.add_argument("--state-dir", type=Path, default=default_state_dir())
    serve_parser.add_argument("--host", default=DEFAULT_HOST)
    serve_parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve_parser.add_argument("--image-cache", type=Path, default=default_cache_dir())
    serve_parser.add_argument("--default-vpc-cidr", default=default_vpc_cidr())
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        serve(
            RegionSettings(
                state_dir=args.state_dir,
                host=args.host,
                port=args.port,
                image_cache=args.image_cache,
                default_vpc_cidr=args.default_vpc_cidr,
            )
        )
    except LocalRegionError as error:
        logging.getLogger("webfleet.localregion").error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
