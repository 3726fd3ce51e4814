"""Closed-form gradient flows of the papers and their diffrax solvers (float64, pure functions).

`theory` depends on neither `sinkjax` nor `experiments`.
"""

from theory.flows import FlowSolution as FlowSolution
from theory.flows import solve_alpha_flow as solve_alpha_flow
from theory.flows import solve_alpha_flow_batch as solve_alpha_flow_batch
from theory.flows import solve_beta_flow as solve_beta_flow
from theory.flows import solve_joint_flow as solve_joint_flow
from theory.predictions import alpha_asymptote as alpha_asymptote
from theory.predictions import alpha_curvature_at_stationary as alpha_curvature_at_stationary
from theory.predictions import alpha_log_offset as alpha_log_offset
from theory.predictions import beta_limit as beta_limit
from theory.predictions import beta_limit_paper as beta_limit_paper
from theory.predictions import hessian as hessian
from theory.predictions import phi_variance as phi_variance
from theory.predictions import stationary_point as stationary_point
from theory.simplified_model import SimplifiedProblem as SimplifiedProblem
from theory.simplified_model import alpha_dot as alpha_dot
from theory.simplified_model import beta_dot as beta_dot
from theory.simplified_model import excess_loss as excess_loss
from theory.simplified_model import loss as loss
from theory.simplified_model import q_matrix as q_matrix
from theory.simplified_model import random_problem as random_problem

# isort: split
# The reduced Markov-chain model of chain identification (cot_rl spec §3.2-3.5).
from theory.chains_flow import ChainFlowSolution as ChainFlowSolution
from theory.chains_flow import chain_flow_field as chain_flow_field
from theory.chains_flow import chain_gradient_norms as chain_gradient_norms
from theory.chains_flow import chain_losses as chain_losses
from theory.chains_flow import chain_preconditioner as chain_preconditioner
from theory.chains_flow import extrapolation_losses as extrapolation_losses
from theory.chains_flow import reach_time_vs_mass as reach_time_vs_mass
from theory.chains_flow import reach_time_vs_n as reach_time_vs_n
from theory.chains_flow import reach_times as reach_times
from theory.chains_flow import solve_chain_flow as solve_chain_flow
from theory.chains_model import ChainModel as ChainModel
from theory.chains_model import ChainPrediction as ChainPrediction
from theory.chains_model import ChainProblem as ChainProblem
from theory.chains_model import chain_class_sizes as chain_class_sizes
from theory.chains_model import chain_loss as chain_loss
from theory.chains_model import chain_loss_grad_adjoint as chain_loss_grad_adjoint
from theory.chains_model import chain_move_probabilities as chain_move_probabilities
from theory.chains_model import chain_problem as chain_problem
from theory.chains_model import chain_problems as chain_problems
from theory.chains_model import chain_success_probabilities as chain_success_probabilities
from theory.chains_model import chain_transition_matrix as chain_transition_matrix
from theory.chains_model import hard_steps as hard_steps
from theory.chains_model import mixed_steps as mixed_steps
from theory.chains_model import pad_chain_problem as pad_chain_problem
from theory.chains_model import predict_chain as predict_chain
from theory.chains_model import stack_chain_problems as stack_chain_problems
from theory.chains_model import uniform_steps as uniform_steps

# isort: split
# Theorem 3 measured on one problem (active_dormant spec D.4).
from .theorem3 import AlphaLaw as AlphaLaw
from .theorem3 import ValueDrain as ValueDrain
from .theorem3 import alpha_law as alpha_law
from .theorem3 import gradient_check as gradient_check
from .theorem3 import stationary_family as stationary_family
from .theorem3 import value_drain as value_drain
