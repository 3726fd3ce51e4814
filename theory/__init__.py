"""Closed-form gradient flows of the papers and their diffrax solvers (float64, pure functions).

`theory` depends on neither `sinkjax` nor `experiments`.
"""

from .flows import FlowSolution as FlowSolution
from .flows import solve_alpha_flow as solve_alpha_flow
from .flows import solve_alpha_flow_batch as solve_alpha_flow_batch
from .flows import solve_beta_flow as solve_beta_flow
from .flows import solve_joint_flow as solve_joint_flow
from .predictions import alpha_asymptote as alpha_asymptote
from .predictions import alpha_curvature_at_stationary as alpha_curvature_at_stationary
from .predictions import alpha_log_offset as alpha_log_offset
from .predictions import beta_limit as beta_limit
from .predictions import beta_limit_paper as beta_limit_paper
from .predictions import hessian as hessian
from .predictions import phi_variance as phi_variance
from .predictions import stationary_point as stationary_point
from .simplified_model import SimplifiedProblem as SimplifiedProblem
from .simplified_model import alpha_dot as alpha_dot
from .simplified_model import beta_dot as beta_dot
from .simplified_model import excess_loss as excess_loss
from .simplified_model import loss as loss
from .simplified_model import q_matrix as q_matrix
from .simplified_model import random_problem as random_problem

# isort: split
# The reduced Markov-chain model of chain identification (cot_rl spec §3.2-3.5).
from .chains_flow import ChainFlowSolution as ChainFlowSolution
from .chains_flow import chain_flow_field as chain_flow_field
from .chains_flow import chain_gradient_norms as chain_gradient_norms
from .chains_flow import chain_losses as chain_losses
from .chains_flow import chain_preconditioner as chain_preconditioner
from .chains_flow import extrapolation_losses as extrapolation_losses
from .chains_flow import reach_time_vs_mass as reach_time_vs_mass
from .chains_flow import reach_time_vs_n as reach_time_vs_n
from .chains_flow import reach_times as reach_times
from .chains_flow import solve_chain_flow as solve_chain_flow
from .chains_model import ChainModel as ChainModel
from .chains_model import ChainPrediction as ChainPrediction
from .chains_model import ChainProblem as ChainProblem
from .chains_model import chain_class_sizes as chain_class_sizes
from .chains_model import chain_loss as chain_loss
from .chains_model import chain_loss_grad_adjoint as chain_loss_grad_adjoint
from .chains_model import chain_move_probabilities as chain_move_probabilities
from .chains_model import chain_problem as chain_problem
from .chains_model import chain_problems as chain_problems
from .chains_model import chain_success_probabilities as chain_success_probabilities
from .chains_model import chain_transition_matrix as chain_transition_matrix
from .chains_model import hard_steps as hard_steps
from .chains_model import mixed_steps as mixed_steps
from .chains_model import pad_chain_problem as pad_chain_problem
from .chains_model import predict_chain as predict_chain
from .chains_model import stack_chain_problems as stack_chain_problems
from .chains_model import uniform_steps as uniform_steps
