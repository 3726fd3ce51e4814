"""The Flax NNX model zoo."""

from .chain_policy import ChainPolicyConfig as ChainPolicyConfig
from .chain_policy import init_policy_params as init_policy_params
from .chain_policy import policy_weights as policy_weights
from .chain_policy import prefix_logits as prefix_logits
from .chain_policy import symmetric_policy_params as symmetric_policy_params
from .config import TransformerConfig as TransformerConfig
from .gpt2 import CheckpointError as CheckpointError
from .gpt2 import MissingCheckpointFileError as MissingCheckpointFileError
from .gpt2 import gpt2_config as gpt2_config
from .gpt2 import load_gpt2 as load_gpt2
from .gpt2 import load_gpt2_tokenizer as load_gpt2_tokenizer
from .simplified import CodeSimpleModel as CodeSimpleModel
from .simplified import SinkAttentionModel as SinkAttentionModel
from .trace import AttentionTrace as AttentionTrace
from .trace import LayerTrace as LayerTrace
from .trace import ModelTrace as ModelTrace
from .transformer import Transformer as Transformer
