"""The Flax NNX model zoo shared by the studies: the transformer, its layers and traces, and
GPT-2 (the studies' own small models live in their packages: `sinkjax.active_dormant.
simplified_model`, `sinkjax.cot_rl.policy`)."""

from .config import TransformerConfig as TransformerConfig
from .gpt2 import CheckpointError as CheckpointError
from .gpt2 import MissingCheckpointFileError as MissingCheckpointFileError
from .gpt2 import gpt2_config as gpt2_config
from .gpt2 import load_gpt2 as load_gpt2
from .gpt2 import load_gpt2_tokenizer as load_gpt2_tokenizer
from .trace import AttentionTrace as AttentionTrace
from .trace import LayerTrace as LayerTrace
from .trace import ModelTrace as ModelTrace
from .transformer import Transformer as Transformer
