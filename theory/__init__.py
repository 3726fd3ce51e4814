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
