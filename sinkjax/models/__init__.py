"""The Flax NNX model zoo."""

from .config import TransformerConfig as TransformerConfig
from .simplified import CodeSimpleModel as CodeSimpleModel
from .simplified import SinkAttentionModel as SinkAttentionModel
from .trace import AttentionTrace as AttentionTrace
from .trace import LayerTrace as LayerTrace
from .trace import ModelTrace as ModelTrace
from .transformer import Transformer as Transformer
