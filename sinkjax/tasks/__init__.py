"""Data generators: the Bigram-Backcopy task and the corpus statistics it is built from."""

from .bb import BBTask as BBTask
from .bb import bayes_risks as bayes_risks
from .bb import default_bb_task as default_bb_task
from .bb import is_trigger as is_trigger
from .bb import oracle_distribution as oracle_distribution
from .bb import sample_bb as sample_bb
from .corpus_stats import CorpusCounts as CorpusCounts
from .corpus_stats import count_chars as count_chars
from .corpus_stats import load_counts as load_counts
from .corpus_stats import load_shipped_counts as load_shipped_counts
from .corpus_stats import save_counts as save_counts
