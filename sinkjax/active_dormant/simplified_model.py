"""The simplified attention models of the active-dormant paper, as Flax NNX modules.

`SinkAttentionModel` is the spec D.1 model written as a forward pass: a query token attends to
`<s>` and to an explicit bag of context tokens, and the attention output is added to the fixed
MLP output log p. Its exact (population) loss is what the theory's gradient flow descends, so
training it with small-step gradient descent is an independent check of that flow.

`CodeSimpleModel` is the looser model of the official code (spec D.5), trained on BB batches.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, Float, Int


class SinkAttentionModel(nnx.Module):
    """Spec D.1: one-hot tokens, attention to `<s>` with logit alpha_v, MLP fixed to log p.

    For query token v the keys are `<s>` (logit alpha_v, value beta) and the context bag that
    holds W_k copies of each token k (logit 0, value xi_k e_k). The output logits are
    log p_v + sum_j A_vj value_j, with no residual.

    Args:
        P: (V, V) row-stochastic next-token law p_v (the fixed MLP outputs log p_v).
        pi: (V,) weights of the query tokens in the loss (0 removes a token, e.g. a trigger).
        counts: (V,) non-negative integer counts W_k of the context bag.
        xi: (V,) value scales xi_k >= 0 (fixed).
        alpha0, beta0: (V,) initial trainable parameters.
    """

    def __init__(self, P, pi, counts, xi, alpha0, beta0):
        counts = np.asarray(counts)
        if np.any(counts < 0) or np.any(counts != np.round(counts)):
            raise ValueError("counts must be non-negative integers")
        if np.any(np.asarray(xi) < 0):
            raise ValueError("xi must be non-negative")
        self.log_p = nnx.Variable(jnp.log(jnp.where(P > 0, P, 1.0)))
        self.support = nnx.Variable(jnp.asarray(P) > 0)
        self.pi = nnx.Variable(jnp.asarray(pi))
        # The context bag, token by token: W_k copies of token k (length W = sum_k W_k).
        self.context = nnx.Variable(
            jnp.asarray(np.repeat(np.arange(len(counts)), counts.astype(int)))
        )
        self.xi = nnx.Variable(jnp.asarray(xi))
        self.alpha = nnx.Param(jnp.asarray(alpha0))
        self.beta = nnx.Param(jnp.asarray(beta0))

    def __call__(self) -> Float[Array, "V V"]:
        """Output logits (V, V): row v is the model's next-token logits for query token v."""
        n_tokens = self.alpha.shape[0]
        context = self.context[...]
        scores = jnp.concatenate(  # (V, 1 + W): <s> first, then the bag
            [self.alpha[...][:, None], jnp.zeros((n_tokens, context.shape[0]), self.alpha.dtype)],
            axis=1,
        )
        weights = jax.nn.softmax(scores, axis=-1)
        bag_values = self.xi[...][context, None] * jax.nn.one_hot(
            context, n_tokens, dtype=scores.dtype
        )
        values = jnp.concatenate([self.beta[...][None, :], bag_values], axis=0)  # (1 + W, V)
        return self.log_p[...] + weights @ values

    def loss(self) -> Float[Array, ""]:
        """Exact loss sum_v pi_v CE(p_v, softmax(logits_v)), dropping p_vk = 0 terms."""
        log_q = jax.nn.log_softmax(jnp.where(self.support[...], self(), -jnp.inf), axis=-1)
        p = jnp.exp(self.log_p[...]) * self.support[...]
        per_token = -jnp.sum(jnp.where(self.support[...], p * log_q, 0.0), axis=-1)
        return jnp.dot(self.pi[...], per_token)


class CodeSimpleModel(nnx.Module):
    """Spec D.5, the official `SimpleModel`: learned sink logits and values, learned MLP.

    Attention logit (n, 0) = alpha[x_n] for non-trigger x_n, logit (n, n-1) = lam[x_n] for a
    trigger x_n, every other visible logit 0 (causal softmax). Values: W_O beta at key 0 and
    xi[x_j] e_{x_j} at key j >= 1. Output = attention + MLP(one-hot x_n), MLP V -> 128 -> V.

    Args:
        vocab_size: V.
        trigger_mask: (V,) bool, the trigger tokens.
        rngs: N(0, 1) for alpha, lam, beta and xi; PyTorch-default linears for W_O and the MLP.
    """

    def __init__(self, vocab_size: int, trigger_mask, *, hidden: int = 128, rngs: nnx.Rngs):
        normal = nnx.initializers.normal(1.0)
        self.vocab_size = vocab_size
        # Static (hashable) trigger ids, so the parameter state holds trainable arrays only.
        self.triggers = tuple(int(t) for t in np.flatnonzero(np.asarray(trigger_mask)))
        self.alpha = nnx.Param(normal(rngs.params(), (vocab_size,)))
        self.lam = nnx.Param(normal(rngs.params(), (vocab_size,)))
        self.beta = nnx.Param(normal(rngs.params(), (vocab_size,)))
        self.xi = nnx.Param(normal(rngs.params(), (vocab_size,)))

        def linear(fan_in, fan_out):
            bound = fan_in**-0.5
            init = nnx.initializers.uniform(2 * bound)
            return nnx.Linear(
                fan_in,
                fan_out,
                use_bias=False,
                rngs=rngs,
                kernel_init=lambda key, shape, dtype: init(key, shape, dtype) - bound,
            )

        self.w_o = linear(vocab_size, vocab_size)
        self.mlp_up = linear(vocab_size, hidden)
        self.mlp_down = linear(hidden, vocab_size)

    def attention_logits(self, tokens: Int[Array, "B N"]) -> Float[Array, "B N N"]:
        """Causally masked attention logits (query, key); -inf above the diagonal."""
        n = tokens.shape[-1]
        trigger = jnp.isin(tokens, jnp.asarray(self.triggers, jnp.int32))  # (B, N)
        is_first = (jnp.arange(n) == 0)[None, None, :]
        is_previous = (jnp.arange(n)[None, :] == jnp.arange(n)[:, None] - 1)[None]
        to_first = jnp.where(trigger, 0.0, self.alpha[...][tokens])[..., None] * is_first
        to_previous = jnp.where(trigger, self.lam[...][tokens], 0.0)[..., None] * is_previous
        logits = to_first + to_previous
        return jnp.where(jnp.tril(jnp.ones((n, n), bool)), logits, -jnp.inf)

    def __call__(self, tokens: Int[Array, "B N"]) -> Float[Array, "B N V"]:
        """Next-token logits (B, N, V) of token sequences (B, N) that start with `<s>`."""
        one_hot = jax.nn.one_hot(tokens, self.vocab_size)
        weights = jax.nn.softmax(self.attention_logits(tokens), axis=-1)  # (B, N, N)
        values = one_hot * self.xi[...][tokens][..., None]  # key j >= 1: xi[x_j] e_{x_j}
        values = values.at[:, 0].set(self.w_o(self.beta[...]))  # key 0 carries W_O beta
        mlp = self.mlp_down(jax.nn.relu(self.mlp_up(one_hot)))
        return jnp.einsum("bnj,bjv->bnv", weights, values) + mlp
