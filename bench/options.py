"""The command line every benchmark here shares: whole-number options with their defaults."""

import argparse


def options(doc, **defaults):
    """A parser for ``--name N`` per keyword (``one_by_one`` is ``--one-by-one``), each defaulting to its value."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in defaults.items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    return parser
