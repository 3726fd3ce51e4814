"""Text corpora and language-model plumbing shared by the studies that train on text: the
byte-level prose + code corpus, the prose/code/math domains, and the windowed next-token loss."""
