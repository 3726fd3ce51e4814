"""Rebuild the shipped character counts from a text file.

Usage: python -m sinkjax.active_dormant.build_counts TEXT_PATH [--out PATH]

Bad input (an unreadable or non-UTF-8 file, a text shorter than two characters, an unwritable
output) is reported on one line of stderr with exit status 2.
"""

import argparse
import pathlib
import sys

from sinkjax.active_dormant.corpus_stats import count_chars, save_counts, shipped_counts_path


def main(argv: list[str] | None = None) -> int:
    """Count TEXT_PATH and write the `.npz`; returns the exit status (0 or 2)."""
    parser = argparse.ArgumentParser(
        prog="python -m sinkjax.active_dormant.build_counts",
        description="Rebuild the unigram/bigram character counts from a text file.",
    )
    parser.add_argument("text", type=pathlib.Path, help="the corpus, a UTF-8 text file")
    parser.add_argument(
        "--out", type=pathlib.Path, help="output .npz (default: the file shipped in the package)"
    )
    args = parser.parse_args(argv)
    try:
        counts = count_chars(args.text.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else err
        print(
            f"build_counts: error: cannot use {args.text} ({reason}); "
            "pass a UTF-8 text file of at least two characters (e.g. tiny Shakespeare's "
            "input.txt)",
            file=sys.stderr,
        )
        return 2
    out = args.out or pathlib.Path(str(shipped_counts_path()))
    try:
        save_counts(counts, out)
    except OSError as err:
        print(
            f"build_counts: error: cannot write {out} ({err.strerror or err}); "
            "pass --out with a writable .npz path",
            file=sys.stderr,
        )
        return 2
    print(
        f"{out}: {len(counts.chars)} characters, V = {counts.vocab_size}, "
        f"{int(counts.unigram.sum())} tokens"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
