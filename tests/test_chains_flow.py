"""The reduced chain model of the cot_rl spec (§3.2-3.5) and checks 2-9 of its §4, in float64.

Check 1 (Monte-Carlo REINFORCE on the tokenized model) lives with the tokenized model and
compares against `theory.predict_chain`. To keep compilations few, every problem is padded to
SIZE indices (padding never changes a result), every quantity at one theta comes from one
jitted `_report` per model, every flow is saved on 37 times and every T_reach sweep has 7
members. The file runs in about 40 s on 2 busy CPU cores.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import theory as T

SIZE = 24  # the code's D_m vocabulary
LINEAR = T.ChainModel()
MASKED = T.ChainModel(mask_self=True)
HORIZON = T.ChainModel(horizon=6)
MASKED_HORIZON = T.ChainModel(mask_self=True, horizon=6)
COLD = T.ChainModel(tau=0.5)
SOFTMAX = T.ChainModel(attention="softmax")
COLD_SOFTMAX = T.ChainModel(tau=0.5, attention="softmax")
CODE_LIKE = T.ChainModel(tau=0.05, mask_self=True, horizon=4, attention="softmax")
MODELS = [LINEAR, MASKED, HORIZON, MASKED_HORIZON, CODE_LIKE]  # each compiles `_report` once
THETA0 = np.array([1.0, 0.0, 0.0])  # a proficient base model (`test_proficient_base_model`)
NS = list(range(4, 11))
MASSES = [1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01]
TS = np.concatenate([[0.0], np.geomspace(1e-2, 1e5, 36)])


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _padded(n, steps=None, n_isolated=0):
    """The problem padded to SIZE indices, as (device) jax arrays."""
    steps = T.uniform_steps(n) if steps is None else steps
    problem = T.pad_chain_problem(T.chain_problem(n, steps, n_isolated=n_isolated), SIZE)
    return jax.tree.map(jnp.asarray, problem)


@functools.partial(jax.jit, static_argnums=2)
def _report(theta, problem, model):
    loss, grad = jax.value_and_grad(T.chain_loss)(theta, problem, model)
    return {
        "loss": loss,
        "grad": grad,
        "adjoint": T.chain_loss_grad_adjoint(theta, problem, model),
        "h": T.chain_success_probabilities(theta, problem, model),
        "P": T.chain_transition_matrix(theta, problem, model),
        "moves": T.chain_move_probabilities(theta, problem, model),  # (3, N)
    }


def report(theta, problem, model=MASKED):
    """Loss, grad, adjoint grad, h, P and (p_fwd, p_bwd, p_self) at one theta (numpy)."""
    return jax.tree.map(np.asarray, _report(jnp.asarray(theta, jnp.float64), problem, model))


_transitions = jax.jit(T.chain_transition_matrix, static_argnums=2)  # cheap: no solve


def _edges(n):
    return np.array([(i, i + 1) for i in range(n - 1)] + [(n + i, n + i + 1) for i in range(n - 1)])


def _symmetric_attention(theta, size):
    """A: (N, N, N), A[u, w, z] = score of query u on the edge token (w, z) (w != z used)."""
    u, w, z = np.indices((size,) * 3)
    return np.where(w == u, theta[0], np.where(z == u, theta[1], theta[2]))


def _softmax(x, xp=np):
    e = xp.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _attention_logits(A, n, size, tau, attention, xp=np):
    """z_u(v) = (1/tau) sum_{e in E} weight(u, e) 1{v in e}, straight from the edge list."""
    edges = _edges(n)
    scores = A[:, edges[:, 0], edges[:, 1]]  # (N, |E|)
    weights = scores if attention == "linear" else _softmax(scores, xp)
    incidence = np.zeros((len(edges), size))
    incidence[np.arange(len(edges)), edges[:, 0]] = 1
    incidence[np.arange(len(edges)), edges[:, 1]] = 1
    return weights @ incidence / tau


def _series(P, n, horizon):
    """sum_{j < H} Q^j r (numpy), Q, r on the transient set of the two chains."""
    transient = [*range(n - 1), *range(n, 2 * n - 1)]
    Q, r = P[np.ix_(transient, transient)], P[transient, n - 1]
    h, term = np.zeros_like(r), r
    for _ in range(horizon):
        h, term = h + term, Q @ term
    return h


# --- the reduction --------------------------------------------------------------------------


@pytest.mark.parametrize("n, n_isolated", [(6, 0), (5, 3)])
def test_counts_match_the_spec_table(n, n_isolated):
    counts = T.chain_problem(n, T.uniform_steps(n), n_isolated=n_isolated).counts
    degree = np.r_[[1] + [2] * (n - 2) + [1], [1] + [2] * (n - 2) + [1], np.zeros(n_isolated)]
    for i in range(1, n):  # u = a_i (index i - 1) and its mirror b_i
        for u in (i - 1, n + i - 1):
            expected = np.zeros((3, len(degree)))
            expected[2] = degree  # any other vertex x: gamma deg(x)
            expected[:, u + 1] = [1, 0, i + 1 <= n - 1]  # successor
            if i >= 2:
                expected[:, u - 1] = [0, 1, i - 1 >= 2]  # predecessor
            expected[:, u] = [1, i >= 2, 0]  # u itself
            np.testing.assert_array_equal(counts[:, u], expected)


@pytest.mark.parametrize("model", [LINEAR, MASKED, COLD, COLD_SOFTMAX])
def test_transitions_equal_attention_over_the_edge_list(model):
    n, theta = 5, np.array([0.9, -0.4, 0.3])
    P = np.asarray(_transitions(jnp.asarray(theta), _padded(n), model))
    z = _attention_logits(_symmetric_attention(theta, 2 * n), n, 2 * n, model.tau, model.attention)
    if model.mask_self:
        z = np.where(np.eye(2 * n, dtype=bool), -np.inf, z)
    np.testing.assert_allclose(P[: 2 * n, : 2 * n], _softmax(z), atol=1e-15)
    assert np.all(P[:, 2 * n :] == 0)  # padding never receives probability


@pytest.mark.parametrize("theta", [(0.8, 0.3, -0.4), (0.0, 0.0, 0.0), (3.0, -1.0, 1.0)])
def test_two_vertex_chains_closed_form(theta):
    """n = 2: h(a_1) = (e^alpha + e^gamma) / (e^alpha + 3 e^gamma), with or without the mask."""
    closed = (np.exp(theta[0]) + np.exp(theta[2])) / (np.exp(theta[0]) + 3 * np.exp(theta[2]))
    for model in (LINEAR, MASKED):
        h = report(theta, _padded(2), model)["h"]
        np.testing.assert_allclose(h[:4], [closed, 1.0, 1.0 - closed, 0.0], atol=1e-14)


@pytest.mark.parametrize("model", MODELS)
def test_chain_swap_symmetry(model):
    """h(a_j) + h(b_j) = 1 without isolated vertices (all rollouts end at a_n or b_n, and the
    chains are mirror images); isolated sinks or a horizon take a share."""
    theta = np.array([0.7, 0.2, -0.5])
    h = report(theta, _padded(7), model)["h"]
    total = h[:6] + h[7:13]
    if model.horizon is None:
        np.testing.assert_allclose(total, 1.0, atol=1e-13)
    else:  # some rollouts are still running after `horizon` moves
        assert np.all(total < 1.0)
    h = report(theta, _padded(7, n_isolated=4), model)["h"]
    assert np.all(h[:6] + h[7:13] < 1.0 - 1e-3)


def test_finite_horizon_and_absorption_solve():
    """h^{(H)} = sum_{j<H} Q^j r; the solve equals its H -> infinity limit."""
    theta, problem = np.array([1.2, -0.3, -0.6]), _padded(5)
    finite, infinite = report(theta, problem, HORIZON), report(theta, problem, LINEAR)
    transient = np.asarray(problem.transient)
    np.testing.assert_allclose(finite["P"], infinite["P"], atol=1e-15)
    np.testing.assert_allclose(finite["h"][transient], _series(finite["P"], 5, 6), atol=1e-14)
    np.testing.assert_allclose(infinite["h"][transient], _series(finite["P"], 5, 5000), atol=1e-13)
    assert np.all(finite["h"][transient] < infinite["h"][transient])
    assert finite["loss"] > infinite["loss"]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("n, n_isolated, steps", [(5, 0, None), (4, 3, [0.2, 0.5, 0.3])])
def test_adjoint_equals_jax_grad(model, n, n_isolated, steps):
    problem = _padded(n, None if steps is None else np.array(steps), n_isolated)
    for theta in (np.array([0.7, -0.3, 0.2]), np.array([2.5, 0.4, -1.1])):
        out = report(theta, problem, model)
        np.testing.assert_allclose(out["adjoint"], out["grad"], atol=1e-13, rtol=1e-10)
        assert np.linalg.norm(out["grad"]) > 1e-6
    eps, theta = 1e-6, np.array([0.7, -0.3, 0.2])  # and against central differences
    central = [
        (
            report(theta + eps * e, problem, model)["loss"]
            - report(theta - eps * e, problem, model)["loss"]
        )
        / (2 * eps)
        for e in np.eye(3)
    ]
    np.testing.assert_allclose(report(theta, problem, model)["adjoint"], central, atol=1e-9)


def test_temperature_is_a_time_rescaling_for_linear_attention_only():
    """Linear: P_tau(theta) = P_1(theta/tau), so L_tau(theta) = L_1(theta/tau), grad L_tau(theta)
    = grad L_1(theta/tau)/tau and theta_tau(t) = tau theta_1(t/tau^2) from theta_1(0) =
    theta_0/tau. With softmax attention tau scales the logits after the attention softmax, so
    no rescaling of theta absorbs it."""
    theta, tau, problem = jnp.array([0.6, 0.1, -0.2]), 0.5, _padded(5)
    for cold, warm, holds in ((COLD, LINEAR, True), (COLD_SOFTMAX, SOFTMAX, False)):
        P_tau = np.asarray(_transitions(theta, problem, cold))
        P_one = np.asarray(_transitions(theta / tau, problem, warm))
        assert np.allclose(P_tau, P_one, rtol=1e-13, atol=1e-16) == holds


def test_predict_chain():
    """The entry point for the Monte-Carlo check: success, per-step success, gradient."""
    steps, theta = np.array([0.5, 0.3, 0.2]), np.array([0.4, 0.1, -0.1])
    pred = T.predict_chain(theta, 4, steps, HORIZON, n_isolated=2)
    out = report(theta, _padded(4, steps, 2), HORIZON)
    np.testing.assert_allclose(pred.success, 1 - out["loss"], atol=1e-15)
    np.testing.assert_allclose(pred.success, steps @ pred.success_by_step, atol=1e-15)
    np.testing.assert_allclose(pred.success_by_step, out["h"][[2, 1, 0]], atol=1e-15)
    np.testing.assert_allclose(pred.loss_grad, out["adjoint"], atol=1e-14)


# --- §4 check 2: the symmetric subspace and (G2) --------------------------------------------


def test_full_matrix_flow_stays_symmetric_and_matches_g2():
    """GD on the full A, with the loss averaged over all 6! labelings of the n = 3 graph (the
    code's random perm), keeps each class constant, and the class values follow (G2)."""
    n, size, steps = 3, 6, T.uniform_steps(3)
    perms = np.array(list(itertools.permutations(range(size))))  # perms[0] is the identity
    transient = np.array([0, 1, 3, 4])

    def labeled_loss(A):  # the canonical graph under the scores of a relabeled A
        z = _attention_logits(A, n, size, 1.0, "linear", jnp)
        P = jax.nn.softmax(jnp.where(np.eye(size, dtype=bool), -jnp.inf, z), axis=-1)
        Q, r = P[np.ix_(transient, transient)], P[transient, n - 1]
        h = jnp.linalg.solve(jnp.eye(len(transient)) - Q, r)
        return 1.0 - steps @ h[np.array([1, 0])]  # D(s) at a_{n-s}

    def mean_loss(A, weights):  # weights: (6!,) over the labelings
        relabeled = A[perms[:, :, None, None], perms[:, None, :, None], perms[:, None, None, :]]
        return weights @ jax.vmap(labeled_loss)(relabeled)

    jitted = jax.jit(jax.value_and_grad(mean_loss))

    def value_and_grad(A, weights):
        return jax.tree.map(np.asarray, jitted(A, weights))

    uniform, identity = np.full(len(perms), 1 / len(perms)), np.eye(len(perms))[0]
    u, w, z = np.indices((size,) * 3)
    classes = [(w == u) & (z != u), (z == u) & (w != u), (w != u) & (z != u) & (w != z)]
    sizes = np.asarray(T.chain_class_sizes(size))
    assert [c.sum() for c in classes] == list(sizes)
    problem = _padded(n, steps)
    reduced = report(THETA0, problem)
    A = _symmetric_attention(THETA0, size)
    loss, grad = value_and_grad(A, uniform)
    np.testing.assert_allclose(loss, reduced["loss"], atol=1e-15)
    for j, c in enumerate(classes):
        np.testing.assert_allclose(grad[c], reduced["grad"][j] / sizes[j], rtol=1e-10, atol=1e-17)
    single = value_and_grad(A, identity)[1][classes[2]]  # one labeling alone is not symmetric
    assert np.ptp(single) > 0.1 * np.abs(reduced["grad"][2]) / sizes[2]

    eta, n_steps, euler = 10.0, 40, THETA0
    for _ in range(n_steps):
        A = A - eta * value_and_grad(A, uniform)[1]
        euler = euler - eta * report(euler, problem)["grad"] / sizes
    for j, c in enumerate(classes):
        assert np.ptp(A[c]) < 1e-13  # the within-class spread stays at float error
        np.testing.assert_allclose(np.mean(A[c]), euler[j], atol=1e-13)
    moved = np.abs(euler - THETA0).max()
    assert moved > 0.2
    ts = np.linspace(0.0, eta * n_steps, len(TS))
    g2 = T.solve_chain_flow(THETA0, problem, ts, MASKED, "G2")
    assert g2.ok
    np.testing.assert_allclose(g2.theta[-1], euler, atol=0.02 * moved)  # Euler error O(eta)
    g1 = T.solve_chain_flow(THETA0, problem, ts, MASKED, "G1")
    assert np.abs(g1.theta[-1] - euler).max() > moved  # (G1) runs 30-120x faster


# --- §4 checks 3-5 and 9: flows ---------------------------------------------------------------


@pytest.fixture(scope="module")
def uniform_flow():
    """(G1) from the uniform policy theta = 0 on n = 5, Unif{1..4}, self-masked."""
    return T.solve_chain_flow(np.zeros(3), _padded(5), TS, MASKED)


def _moves(thetas, problem, model=MASKED):
    """(T, 3, |transient|) p_fwd, p_bwd, p_self along a path."""
    transient = np.asarray(problem.transient)
    return np.array([report(theta, problem, model)["moves"][:, transient] for theta in thetas])


@pytest.mark.parametrize("flow", ["G1", "G2"])
def test_loss_decreases_along_the_flows(uniform_flow, flow):
    """Check 3: dL/dt = -grad L . precond grad L <= 0 on the diffrax solution."""
    sol = uniform_flow
    if flow == "G2":
        ts = np.geomspace(1.0, 1e7, len(TS))
        sol = T.solve_chain_flow(THETA0, _padded(6, T.mixed_steps(6, 0.3)), ts, MASKED, "G2")
    assert sol.ok
    assert np.all(np.diff(sol.loss) <= 1e-14)
    assert sol.loss[-1] < 0.01 * sol.loss[0]


def test_emergence_of_efficient_traversal(uniform_flow):
    """Check 4: L -> 0, min_u p_fwd -> 1 and p_bwd / p_fwd -> 0, from the uniform policy."""
    sol, problem = uniform_flow, _padded(5)
    assert sol.loss[0] > 0.49 and sol.loss[-1] < 1e-4
    moves = _moves(sol.theta, problem)
    assert moves[0, 0].min() < 0.12 and moves[-1, 0].min() > 0.999
    ratio = (moves[:, 1] / moves[:, 0]).max(axis=1)
    assert ratio[-1] < 1e-3 * ratio[0]
    # alpha grows like log t, gamma drifts down slowly, beta barely moves.
    i = np.searchsorted(TS, 1e3)
    slope = (sol.theta[-1] - sol.theta[i]) / np.log(TS[-1] / TS[i])
    assert 0.9 < slope[0] < 1.1 and -0.15 < slope[2] < 0 and abs(slope[1]) < 0.01
    # Mass c = 0.2 on s = 1, the rest on the hardest start, does the same from THETA0.
    mixed = T.solve_chain_flow(THETA0, _padded(5, T.mixed_steps(5, 0.2)), TS, MASKED)
    assert mixed.loss[-1] < 1e-4 and _moves(mixed.theta[-1:], problem)[0, 0].min() > 0.999


def test_extrapolation_to_longer_chains(uniform_flow):
    """Check 5: theta learned at n = 5 solves n = 5..12; so does D_m (n = 4 in 24 labels)."""
    for steps in (T.uniform_steps, T.hard_steps):
        problems = T.chain_problems(range(5, 13), steps, size=SIZE)
        early, late = (T.chain_losses(uniform_flow.theta[i], problems, MASKED) for i in (10, -1))
        assert np.all(early > 0.49) and np.all(late < 1e-4)
    d_m = _padded(4, n_isolated=16)
    problems = T.chain_problems(range(4, 12), T.hard_steps, n_vocab=SIZE)
    test_losses = T.extrapolation_losses(THETA0, d_m, TS, problems, MASKED)
    assert test_losses.shape == (len(TS), 8)
    assert np.all(test_losses[10] > 0.49) and np.all(test_losses[-1] < 1e-4)
    # With isolated sinks gamma rises: a jump to a chain vertex is recoverable, to a sink is not.
    theta = T.solve_chain_flow(THETA0, d_m, TS, MASKED).theta[-1]
    assert theta[2] > 0 > uniform_flow.theta[-1, 2]


def test_isolated_sinks_make_a_spurious_attractor_without_a_horizon():
    """D_m-like graph n = 5 with 14 isolated sinks: with no horizon the flow from THETA0 raises
    gamma without bound (wandering among chain vertices avoids the isolated sinks) and L -> 1/2.
    A horizon (the code's max_new_tokens) makes that policy fail and pushes gamma back down."""
    problem = _padded(5, n_isolated=14)
    sol = T.solve_chain_flow(THETA0, problem, TS, MASKED)
    theta = sol.theta[-1]
    assert abs(sol.loss[-1] - 0.5) < 1e-3 and theta[2] > 2 * theta[0]
    infinite, finite = report(theta, problem, MASKED), report(theta, problem, MASKED_HORIZON)
    assert infinite["moves"][0].max() < 1e-3  # p_fwd ~ 0: the policy wanders
    assert infinite["grad"][2] < 0 < finite["grad"][2]  # gamma keeps rising / is pushed down
    assert finite["loss"] > 0.99


def test_self_repeat_caveat(uniform_flow):
    """Check 9: without a horizon the mask changes neither L nor grad L (only the jump chain
    matters), so the flow is the same; but without the mask p_self does not go to 0."""
    sol, problem = uniform_flow, _padded(5)
    for theta in sol.theta[::4]:
        masked, unmasked = report(theta, problem, MASKED), report(theta, problem, LINEAR)
        np.testing.assert_allclose(unmasked["loss"], masked["loss"], atol=1e-14)
        np.testing.assert_allclose(unmasked["grad"], masked["grad"], atol=1e-14)
    moves = _moves(sol.theta, problem, LINEAR)
    assert moves[-1, 2].max() > 0.9 and moves[-1, 0].min() < 0.1
    assert moves[-1, 2].max() > moves[len(TS) // 2, 2].max()  # p_self keeps growing
    # Under a horizon the mask matters: self-repeats use up moves.
    assert report(sol.theta[-1], problem, MASKED_HORIZON)["loss"] < 1e-4
    assert report(sol.theta[-1], problem, HORIZON)["loss"] > 0.5


# --- §4 checks 6 and 7: vanishing gradient, exponential vs polynomial T_reach ---------------


@pytest.fixture(scope="module")
def reach():
    """T_reach(n), n = 4..10, hard-only vs Unif{1..n-1} under (G1) and (G2); T_reach(c)."""
    out = {
        (steps.__name__, flow): T.reach_time_vs_n(THETA0, NS, steps, MASKED, flow=flow, size=SIZE)
        for steps in (T.hard_steps, T.uniform_steps)
        for flow in ("G1", "G2")
    }
    out["mass"] = T.reach_time_vs_mass(THETA0, 10, MASSES, MASKED, size=SIZE)
    return out


def test_proficient_base_model():
    """THETA0 meets assumption 1 with c0 = 0.1, b0 = 0.05: p_fwd > c0, p_fwd > p_bwd + b0."""
    for n in NS:
        p_fwd, p_bwd, _ = _moves(THETA0[None], _padded(n))[0]
        assert np.all(p_fwd > 0.1) and np.all(p_fwd > p_bwd + 0.05)


@pytest.mark.parametrize("n", [5, 7])
def test_uniform_policy_is_stationary_without_one_step_examples(n):
    """At theta = 0 every transient h is 1/2, and the occupations of a_{n-1} and b_{n-1} from
    any other start are equal (swap symmetry of the uniform chain), so with no horizon
    grad L(0) = 0 exactly unless D puts mass on s = 1. A horizon breaks this."""
    theta = np.zeros(3)
    for model in (LINEAR, MASKED):
        for steps in (T.hard_steps(n), T.uniform_steps(n, range(2, n))):
            assert np.abs(report(theta, _padded(n, steps), model)["grad"]).max() < 1e-15
        assert np.abs(report(theta, _padded(n), model)["grad"]).max() > 1e-3
    assert np.all(report(theta, _padded(n, T.hard_steps(n)), HORIZON)["grad"] > 1e-3)


def test_hard_only_gradient_vanishes_exponentially():
    """Check 6: log ||grad L(theta0)|| falls at least linearly in n (by > log 2 per step) for
    hard-only data, but only polynomially when simple examples are present."""
    norms = {
        steps: T.chain_gradient_norms(THETA0, T.chain_problems(NS, steps, size=SIZE), MASKED)
        for steps in (T.hard_steps, T.uniform_steps)
    }
    hard, uniform = norms[T.hard_steps], norms[T.uniform_steps]
    assert np.all(hard[1:] / hard[:-1] < 0.5) and hard[-1] < 1e-8
    assert np.all(uniform[1:] / uniform[:-1] > 0.6)


def test_reach_time_exponential_for_hard_only_polynomial_with_simple(reach):
    """Check 6 (and the (G2) envelope of check 7): the ratios T(n+1)/T(n) grow for hard-only
    data (faster than exponential: N = 2n grows too) and shrink towards 1 for Unif{1..n-1}."""
    for flow, degree in (("G1", 2), ("G2", 5)):
        hard, uniform = reach["hard_steps", flow], reach["uniform_steps", flow]
        assert np.all(np.isfinite(hard)) and np.all(np.isfinite(uniform))
        hard_ratio, uniform_ratio = hard[1:] / hard[:-1], uniform[1:] / uniform[:-1]
        assert np.all(hard_ratio > 3) and np.all(np.diff(hard_ratio) > 0)
        assert np.all(np.diff(uniform_ratio) < 0)
        assert np.all(uniform <= uniform[0] * (np.array(NS) / NS[0]) ** degree)
        assert hard[-1] > 1e4 * uniform[-1]
    # (G2) runs on the 1/N^2 (alpha, beta) and 1/N^3 (gamma) time scale of the full matrix.
    assert np.all(reach["uniform_steps", "G2"] > 50 * reach["uniform_steps", "G1"])


def test_reach_time_inverse_in_the_mass_of_simple_examples(reach):
    """Check 7: for D_c = c delta_1 + (1-c) delta_{n-1} at n = 10, c T_reach stays bounded as
    c -> 0 (T_reach = O(1/c)), far below hard-only; c = 1 is not the fastest."""
    t, c = reach["mass"], np.array(MASSES)
    assert np.all(np.diff(c[1:] * t[1:]) < 0)  # c T_reach decreases as c -> 0
    assert np.all(t < 1e-3 * reach["hard_steps", "G1"][-1])
    assert t[0] > 10 * t.min()  # only simple data: its gradient saturates once s = 1 is solved


# --- §4 check 8: the monotonicity lemma -----------------------------------------------------


@pytest.mark.parametrize(
    "model, n_isolated, holds",
    [(MASKED, 0, True), (LINEAR, 0, True), (HORIZON, 0, True), (MASKED, 16, False)],
)
def test_monotonicity_lemma(model, n_isolated, holds):
    """dh(a_{n-1})/d alpha > 0, d/d beta <= 0, d/d gamma < 0 where alpha > max(beta, gamma);
    the signs flip outside that region, and with isolated sinks d/d gamma > 0 occurs inside.
    With D = delta_{s=1}, L = 1 - h(a_{n-1}), so dh(a_{n-1})/dtheta = -grad L."""
    n = 5 if n_isolated == 0 else 4
    problem = _padded(n, T.uniform_steps(n, [1]), n_isolated)
    grid = np.array(list(itertools.product(np.linspace(-3, 3, 7), repeat=3)))
    grads = np.array([-report(theta, problem, model)["grad"] for theta in grid])
    inside = (grid[:, 0] > grid[:, 1]) & (grid[:, 0] > grid[:, 2])
    signs = (grads[:, 0] > 0) & (grads[:, 1] <= 0) & (grads[:, 2] < 0)
    assert np.all(signs[inside]) == holds
    assert np.all(grads[inside, 0] > 0) and np.all(grads[inside, 1] <= 0)
    assert not np.all(signs[~inside])
