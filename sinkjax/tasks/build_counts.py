"""Rebuild the shipped character counts from a text file.

python -m sinkjax.tasks.build_counts TEXT_PATH [--out PATH]
"""

import argparse
import pathlib
import sys

from .corpus_stats import count_chars, shipped_counts_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", type=pathlib.Path, help="the corpus, a UTF-8 text file")
    parser.add_argument("--out", type=pathlib.Path, help="output .npz (default: the shipped file)")
    args = parser.parse_args(argv)
    try:
        text = args.text.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        print(
            f"build_counts: error: cannot read {args.text} ({err}); pass a UTF-8 text file",
            file=sys.stderr,
        )
        return 2
    counts = count_chars(text)
    out = args.out or pathlib.Path(str(shipped_counts_path()))
    counts.save(out)
    print(f"{out}: {len(counts.chars)} characters, {counts.unigram.sum()} tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
