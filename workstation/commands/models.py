"""`workstation models ...`: which MONAI bundles and checkpoints the user trusts.

Loading a bundle runs code from it, so analyses load only trusted ones. None of these commands
executes anything from a bundle: configs are read as plain JSON and files are only hashed.
"""

from __future__ import annotations

import argparse
import sys

from workstation.commands.common import fail, print_json, store_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="trust, list and forget MONAI bundles and checkpoints",
        description="Bundles and checkpoints run code when loaded; only trusted ones are loaded.",
    )
    commands = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    trust = commands.add_parser(
        "trust", help="review a bundle or checkpoint and record it as trusted (content hash)"
    )
    trust.add_argument("path", metavar="PATH", help="bundle folder or checkpoint file")
    trust.set_defaults(func=_trust)

    review = commands.add_parser("review", help="show what a bundle would run, without trusting")
    review.add_argument("path", metavar="PATH", help="bundle folder")
    review.set_defaults(func=_review)

    listing = commands.add_parser("ls", help="list trusted models and whether their files changed")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=_ls)

    untrust = commands.add_parser("untrust", help="forget a trusted bundle or checkpoint")
    untrust.add_argument("path", metavar="PATH")
    untrust.set_defaults(func=_untrust)


def _trust(args: argparse.Namespace) -> int:
    from workstation.models import ModelError, review_bundle, trust
    from workstation.models.trustable import check_trustable

    try:
        check_trustable(args.path)  # refuses empty folders, plain weights, unreadable files
        review = review_bundle(args.path)
        status = trust(args.path, store_dir(args))
    except ModelError as error:
        return fail(str(error))
    print(review.render())
    label = f" ({status.name}{f' {status.version}' if status.version else ''})"
    print(f"trusted {status.kind} {status.path}{label}")
    return 0


def _review(args: argparse.Namespace) -> int:
    from workstation.models import ModelError, review_bundle, trust_status

    try:
        review = review_bundle(args.path)
        status = trust_status(args.path, store_dir(args))
    except ModelError as error:
        return fail(str(error))
    print(review.render())
    print(f"status: {status.state}" + (f" ({'; '.join(status.changes)})" if status.changes else ""))
    return 0


def _ls(args: argparse.Namespace) -> int:
    from workstation.models import list_trusted

    statuses = list_trusted(store_dir(args))
    if args.json:
        print_json([status.as_dict() for status in statuses])
        return 0
    if not statuses:
        print("no trusted models; add one with: workstation models trust PATH")
        return 0
    for status in statuses:
        name = f"{status.name} {status.version}".strip()
        print(f"{status.state:8} {status.kind:10} {name:30} {status.path}")
        for change in status.changes:
            print(f"{'':20}{change}")
    return 0


def _untrust(args: argparse.Namespace) -> int:
    from workstation.models import untrust

    if untrust(args.path, store_dir(args)):
        print(f"no longer trusted: {args.path}")
        return 0
    print(f"workstation: {args.path} was not trusted", file=sys.stderr)
    return 1
