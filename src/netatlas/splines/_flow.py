"""Gradient flow and gradient descent of a shallow univariate ReLU net on 1-D data, watched in the
spline view (breakpoints, delta slopes, the function).

# NOTE [fast gradient]
    With the data sorted, neuron i is active on a contiguous run of points: n >= k_i if w_i > 0,
    n < k_i if w_i < 0 (z = w x + b is monotone in x, and so is its float64 rounding, so a binary
    search on the predicate w x_n + b > 0 finds k_i exactly as the dense evaluation would). Then
        f(x_n) = c + x_n P_n + Q_n,  P_n, Q_n = sums of v_i w_i, v_i b_i over neurons active at n,
    built from a difference array in O(H + n), and with prefix sums R0, R1 of r_n, r_n x_n,
        S0_i = sum_{A_i} r_n,  S1_i = sum_{A_i} r_n x_n,
        dL/dw_i = v_i S1_i,  dL/db_i = v_i S0_i,  dL/dv_i = w_i S1_i + b_i S0_i,  dL/dc = sum_n r_n.
    One step is O(H log n + n) in a compiled loop (numba), not O(H n).

# NOTE [flow in spline terms]
    Under d theta/dt = -grad L (network coordinates), with S0, S1 as above,
        d beta_i/dt = (v_i / w_i) sum_{A_i} r_n (1 + beta_i x_n)
        d mu_i/dt   = -s_i [ w_i^2 sum_{A_i} r_n (x_n - beta_i) + v_i^2 sum_{A_i} r_n x_n ]
    and d/dt (v_i^2 - w_i^2 - b_i^2) = 2 v (-(w S1 + b S0)) - 2 w (-v S1) - 2 b (-v S0) = 0.
    Breakpoints move at a speed ~ v/w: a large first layer freezes them (kernel regime).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np
from scipy.integrate import solve_ivp

from netatlas._deprecate import renamed
from netatlas.splines._params import ShallowParams
from netatlas.splines._spline import Spline, as_params

__all__ = ["FlowResult", "simulate_flow", "flow_velocity", "fast_gradient", "conserved_quantity",
           "ntk_max_eigenvalue"]

logger = logging.getLogger(__name__)


@numba.njit(cache=True, nogil=True)
def _gradient_kernel(w, b, v, c, x, y, gw, gb, gv, k, diff_p, diff_q, r0, r1):
    # see NOTE [fast gradient]; x sorted ascending; writes gw, gb, gv, returns (dL/dc, loss)
    n, h = x.size, w.size
    for j in range(n + 1):
        diff_p[j] = 0.0
        diff_q[j] = 0.0
    for i in range(h):
        wi, bi, vi = w[i], b[i], v[i]
        lo, hi = 0, n
        if wi > 0:  # active for n >= k: first index where wi x + bi > 0
            while lo < hi:
                mid = (lo + hi) // 2
                if wi * x[mid] + bi > 0:
                    hi = mid
                else:
                    lo = mid + 1
            diff_p[lo] += vi * wi
            diff_q[lo] += vi * bi
        elif wi < 0:  # active for n < k: first index where wi x + bi <= 0
            while lo < hi:
                mid = (lo + hi) // 2
                if wi * x[mid] + bi > 0:
                    lo = mid + 1
                else:
                    hi = mid
            diff_p[0] += vi * wi
            diff_q[0] += vi * bi
            diff_p[lo] -= vi * wi
            diff_q[lo] -= vi * bi
        else:
            lo = 0 if bi > 0 else n  # constant neuron: all points or none, like w > 0
            diff_q[lo] += vi * bi
        k[i] = lo
    slope, icpt, loss = 0.0, 0.0, 0.0
    r0[0] = 0.0
    r1[0] = 0.0
    for j in range(n):
        slope += diff_p[j]
        icpt += diff_q[j]
        r = c + x[j] * slope + icpt - y[j]
        loss += 0.5 * r * r
        r0[j + 1] = r0[j] + r
        r1[j + 1] = r1[j] + r * x[j]
    for i in range(h):
        ki = k[i]
        if w[i] < 0:
            s0, s1 = r0[ki], r1[ki]
        else:
            s0, s1 = r0[n] - r0[ki], r1[n] - r1[ki]
        gw[i] = v[i] * s1
        gb[i] = v[i] * s0
        gv[i] = w[i] * s1 + b[i] * s0
    return r0[n], loss


@numba.njit(cache=True, nogil=True)
def _gd_kernel(w, b, v, c, x, y, lr, n_steps, loss_stop):
    # n_steps of theta <- theta - lr grad L, in place on w, b, v; returns (c, loss of the returned
    # parameters, steps taken); stops early once the loss is <= loss_stop or not finite. The boundary index
    # k_i of each neuron is found by binary search once, then updated by walking (breakpoints move
    # by a few data gaps at most per step), which makes a step O(H + n).
    h, n = w.size, x.size
    gw, gb, gv = np.empty(h), np.empty(h), np.empty(h)
    k = np.empty(h, np.int64)
    dp, dq, r0, r1 = np.empty(n + 1), np.empty(n + 1), np.empty(n + 1), np.empty(n + 1)
    gc, loss = _gradient_kernel(w, b, v, c, x, y, gw, gb, gv, k, dp, dq, r0, r1)
    for step in range(n_steps):
        if loss <= loss_stop or not np.isfinite(loss):
            return c, loss, step
        for j in range(n + 1):
            dp[j] = 0.0
            dq[j] = 0.0
        # update with the gradient of this step, then locate the new boundaries and accumulate
        for i in range(h):
            ki = k[i]
            if w[i] < 0:
                s0, s1 = r0[ki], r1[ki]
            else:
                s0, s1 = r0[n] - r0[ki], r1[n] - r1[ki]
            wi, bi, vi = w[i], b[i], v[i]
            wi, bi, vi = wi - lr * vi * s1, bi - lr * vi * s0, vi - lr * (wi * s1 + bi * s0)
            w[i], b[i], v[i] = wi, bi, vi
            if wi > 0:  # predicate wi x + bi > 0 holds on [k, n)
                if ki > n:
                    ki = n
                while ki > 0 and wi * x[ki - 1] + bi > 0:
                    ki -= 1
                while ki < n and not (wi * x[ki] + bi > 0):
                    ki += 1
                dp[ki] += vi * wi
                dq[ki] += vi * bi
            elif wi < 0:  # holds on [0, k)
                while ki < n and wi * x[ki] + bi > 0:
                    ki += 1
                while ki > 0 and not (wi * x[ki - 1] + bi > 0):
                    ki -= 1
                dp[0] += vi * wi
                dq[0] += vi * bi
                dp[ki] -= vi * wi
                dq[ki] -= vi * bi
            else:
                ki = 0 if bi > 0 else n
                dq[ki] += vi * bi
            k[i] = ki
        c -= lr * gc
        slope, icpt, loss = 0.0, 0.0, 0.0
        for j in range(n):
            slope += dp[j]
            icpt += dq[j]
            r = c + x[j] * slope + icpt - y[j]
            loss += 0.5 * r * r
            r0[j + 1] = r0[j] + r
            r1[j + 1] = r1[j] + r * x[j]
        gc = r0[n]
    return c, loss, n_steps


def _sorted_data(x, y, caller):
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"{caller}: x and y must be non-empty with the same length; got {x.size}, {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(f"{caller}: x and y must be finite")
    order = np.argsort(x, kind="stable")
    return np.ascontiguousarray(x[order]), np.ascontiguousarray(y[order])


@renamed(model_or_params="net")
def fast_gradient(net, x, y) -> tuple[np.ndarray, float]:
    """Gradient (w, b, v, c) of L = 1/2 sum (f(x_n) - y_n)^2 in O(H log n + n) and the loss.

    Returns ``(grad of shape (3H + 1,), loss)``; equals :func:`loss_gradient` up to rounding
    (NOTE [fast gradient]).

    Examples
    --------
    >>> g, loss = fast_gradient(([1.0], [0.0], [1.0], 0.0), [1.0, 2.0], [0.0, 0.0])
    >>> g.tolist(), loss
    ([5.0, 3.0, 5.0, 3.0], 2.5)
    """
    p = as_params(net, caller="fast_gradient")
    x, y = _sorted_data(x, y, "fast_gradient")
    h, n = p.width, x.size
    gw, gb, gv = np.empty(h), np.empty(h), np.empty(h)
    gc, loss = _gradient_kernel(p.w, p.b, p.v, p.c, x, y, gw, gb, gv, np.empty(h, np.int64), np.empty(n + 1),
                                np.empty(n + 1), np.empty(n + 1), np.empty(n + 1))
    return np.concatenate([gw, gb, gv, [gc]]), float(loss)


@renamed(model_or_params="net")
def flow_velocity(net, x, y) -> tuple[np.ndarray, np.ndarray]:
    """(d beta/dt, d mu/dt), each of shape (H,), under gradient flow in network coordinates, from the
    spline-terms formulas of NOTE [flow in spline terms] (neurons with w_i = 0 get NaN for beta).

    Examples
    --------
    >>> dbeta, dmu = flow_velocity(([1.0], [0.0], [1.0], 0.0), [1.0, 2.0], [0.0, 0.0])
    >>> dbeta.tolist(), dmu.tolist()
    ([3.0], [-10.0])
    """
    p = as_params(net, caller="flow_velocity")
    x, y = _sorted_data(x, y, "flow_velocity")
    z = np.multiply.outer(x, p.w) + p.b
    active = (z > 0).astype(np.float64)
    r = np.maximum(z, 0.0) @ p.v + p.c - y
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = -p.b / p.w
        dbeta = np.where(p.w != 0, p.v / p.w * ((r @ active) + beta * ((r * x) @ active)), np.nan)
    s = np.where(p.w < 0, -1.0, 1.0)
    s0, s1 = r @ active, (r * x) @ active
    beta0 = np.where(p.w != 0, beta, 0.0)
    dmu = -s * (p.w ** 2 * (s1 - beta0 * s0) + p.v ** 2 * s1)
    return dbeta, dmu


@renamed(model_or_params="net")
def conserved_quantity(net) -> np.ndarray:
    """v_i^2 - w_i^2 - b_i^2 per neuron, shape (H,): constant under gradient flow."""
    p = as_params(net, caller="conserved_quantity")
    return p.v ** 2 - p.w ** 2 - p.b ** 2


@renamed(model_or_params="net")
def ntk_max_eigenvalue(net, x) -> float:
    """Largest eigenvalue of the neural tangent kernel J J^T (n x n) on the inputs ``x``: the largest
    eigenvalue of the Gauss-Newton part of the Hessian, which sets the stable GD step (~2 / lambda)."""
    p = as_params(net, caller="ntk_max_eigenvalue")
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    z = np.multiply.outer(x, p.w) + p.b
    active = (z > 0) * p.v
    relu = np.maximum(z, 0.0)
    gram = (active @ active.T) * (np.multiply.outer(x, x) + 1) + relu @ relu.T + 1.0
    return float(np.linalg.eigvalsh(gram)[-1])


@dataclass(frozen=True, eq=False)
class FlowResult:
    """A recorded training run. ``T`` records, ``H`` neurons, ``G`` grid points.

    Attributes
    ----------
    times : ndarray of shape (T,)
        Flow time (for GD, the sum of the learning rates so far).
    steps : ndarray of shape (T,)
        GD steps, or for the ODE solver the number of right-hand-side evaluations so far (approx.).
    loss : ndarray of shape (T,)
        L = 1/2 sum r^2 at each record.
    w, b, v : ndarray of shape (T, H)
    c : ndarray of shape (T,)
    grid : ndarray of shape (G,)
    function : ndarray of shape (T, G)
        f on ``grid`` at each record.
    x, y : ndarray of shape (n,)
        The (sorted) training data.
    method : str
    seconds : float
        Wall time of the simulation (recording included).
    converged : bool
        The loss reached ``loss_tol``.
    """

    times: np.ndarray
    steps: np.ndarray
    loss: np.ndarray
    w: np.ndarray
    b: np.ndarray
    v: np.ndarray
    c: np.ndarray
    grid: np.ndarray
    function: np.ndarray
    x: np.ndarray
    y: np.ndarray
    method: str
    seconds: float
    converged: bool

    @property
    def breakpoints(self) -> np.ndarray:
        """(T, H) beta = -b/w (inf where w = 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.w != 0, -self.b / self.w, np.inf)

    @property
    def delta_slopes(self) -> np.ndarray:
        """(T, H) mu = v |w|."""
        return self.v * np.abs(self.w)

    @property
    def orientations(self) -> np.ndarray:
        """(T, H) sign of w (+1 where w = 0)."""
        return np.where(self.w < 0, -1, 1).astype(np.int8)

    def params(self, index: int = -1) -> ShallowParams:
        """Network parameters at record ``index``."""
        return ShallowParams(self.w[index], self.b[index], self.v[index], self.c[index])

    def spline(self, index: int = -1) -> Spline:
        """Spline coordinates at record ``index``."""
        from netatlas.splines._spline import to_spline

        return to_spline(self.params(index))

    def to_dict(self) -> dict:
        return {"method": self.method, "n_records": int(self.times.size), "width": int(self.w.shape[1]),
                "final_time": float(self.times[-1]), "final_step": int(self.steps[-1]),
                "initial_loss": float(self.loss[0]), "final_loss": float(self.loss[-1]),
                "seconds": self.seconds, "converged": self.converged}


def _record_grid(x, grid):
    if grid is None:
        lo, hi = x[0], x[-1]
        pad = 0.25 * (hi - lo) if hi > lo else 1.0
        return np.linspace(lo - pad, hi + pad, 400)
    return np.asarray(grid, dtype=np.float64).reshape(-1)


def _function_on(grid, w, b, v, c, chunk=2048):
    out = np.empty(grid.size)
    for start in range(0, grid.size, chunk):
        g = grid[start:start + chunk]
        out[start:start + chunk] = np.maximum(np.multiply.outer(g, w) + b, 0.0) @ v + c
    return out


@renamed(model_or_params="net")
def simulate_flow(net, x, y, *, method: Literal["gd", "ode"] = "gd", n_steps: int = 10_000,
                  lr: float | Literal["auto"] = "auto", t_max: float | None = None, n_records: int = 100,
                  record: Literal["log", "linear"] = "log", grid=None, loss_tol: float = 0.0,
                  ode_method: str = "RK45", rtol: float = 1e-6, atol: float = 1e-9) -> FlowResult:
    """Train f(x) = sum v relu(w x + b) + c on (x, y) under L = 1/2 sum r^2 and record it.

    Parameters
    ----------
    net : nn.Module, Net, ShallowParams, tuple, dict or Spline
        The initial network (not modified).
    x, y : array_like of shape (n,)
    method : {"gd", "ode"}
        ``gd``: plain gradient descent theta <- theta - lr grad L, compiled (numba), O(H log n + n) per
        step (NOTE [fast gradient]). ``ode``: gradient flow d theta/dt = -grad L with
        ``scipy.integrate.solve_ivp`` (adaptive; ``ode_method`` RK45, DOP853, LSODA, ...).
    n_steps : int
        GD steps.
    lr : float or "auto"
        GD step. ``auto``: 1 / lambda_max(NTK), re-estimated every max(50, 5 % of the steps so far)
        steps, halved after a loss increase (a chunk that doubles the loss is undone) - GD that tracks
        the flow at about the largest stable pace; a float is plain fixed-step GD.
    t_max : float, optional
        Flow time for ``ode`` (required there).
    n_records : int
        Records (plus the initial state), spaced log-uniformly (``record="log"``) or linearly in
        steps / time.
    grid : array_like of shape (G,), optional
        Where the function is recorded; default 400 points over the data range padded by 25 %.
    loss_tol : float
        Stop once L <= loss_tol (GD: checked every step; ODE: a terminal event).

    Returns
    -------
    FlowResult

    Examples
    --------
    >>> from netatlas.splines import init_scheme, sample_init
    >>> p = sample_init(init_scheme("torch", 50), seed=0)
    >>> x = np.linspace(-1, 1, 8); y = np.abs(x)
    >>> run = simulate_flow(p, x, y, n_steps=2000, n_records=10)
    >>> bool(run.loss[-1] < 0.1 * run.loss[0]), run.breakpoints.shape
    (True, (11, 50))
    """
    p = as_params(net, caller="simulate_flow")
    x, y = _sorted_data(x, y, "simulate_flow")
    if method not in ("gd", "ode"):
        raise ValueError(f"simulate_flow: method must be 'gd' or 'ode'; got {method!r}")
    if int(n_records) < 1:
        raise ValueError(f"simulate_flow: n_records must be >= 1; got {n_records}")
    grid = _record_grid(x, grid)
    start = time.perf_counter()
    if method == "gd":
        out = _run_gd(p, x, y, int(n_steps), lr, int(n_records), record, grid, float(loss_tol))
    else:
        if t_max is None or not t_max > 0:
            raise ValueError(f"simulate_flow: method='ode' needs t_max > 0; got {t_max!r}")
        out = _run_ode(p, x, y, float(t_max), int(n_records), record, grid, float(loss_tol), ode_method,
                       rtol, atol)
    return FlowResult(**out, grid=grid, x=x, y=y, method=method if method == "gd" else f"ode:{ode_method}",
                      seconds=time.perf_counter() - start)


def _schedule(total, n_records, record, integer):
    if record == "log":
        # Steps: 1..total. Continuous time: three decades below t_max (geomspace(1, t_max) is empty-ish for
        # t_max <= 1 and repeats values, which solve_ivp's t_eval refuses).
        start = 1 if integer else total * 1e-3
        points = np.geomspace(start, total, n_records) if total > start else np.array([float(total)])
    elif record == "linear":
        points = np.linspace(0, total, n_records + 1)[1:]
    else:
        raise ValueError(f"simulate_flow: record must be 'log' or 'linear'; got {record!r}")
    if integer:
        return np.unique(np.maximum(np.round(points).astype(np.int64), 1))
    return np.unique(points)


def _run_gd(p, x, y, n_steps, lr, n_records, record, grid, loss_tol):
    if not (lr == "auto" or (isinstance(lr, (int, float)) and lr > 0)):
        raise ValueError(f"simulate_flow: lr must be a positive float or 'auto'; got {lr!r}")
    w, b, v, c = p.w.copy(), p.b.copy(), p.v.copy(), float(p.c)
    marks = _schedule(n_steps, n_records, record, integer=True) if n_steps > 0 else np.array([], np.int64)
    rec = {k: [] for k in ("times", "steps", "loss", "w", "b", "v", "c", "function")}

    def save(step, t, loss):
        rec["times"].append(t)
        rec["steps"].append(step)
        rec["loss"].append(loss)
        for key, value in (("w", w), ("b", b), ("v", v)):
            rec[key].append(value.copy())
        rec["c"].append(c)
        rec["function"].append(_function_on(grid, w, b, v, c))

    loss0 = fast_gradient(ShallowParams(w, b, v, c), x, y)[1]
    save(0, 0.0, loss0)
    factor, step, t, converged = 1.0, 0, 0.0, loss0 <= loss_tol
    current = fast_gradient(ShallowParams(w, b, v, c), x, y)[1]
    for mark in marks:
        if converged:
            break
        while step < mark:
            chunk = int(mark - step)
            if lr == "auto":
                step_size = factor / max(ntk_max_eigenvalue(ShallowParams(w, b, v, c), x), 1e-300)
                chunk = min(chunk, max(50, int(0.05 * step)))  # re-estimate as weights change
            else:
                step_size = float(lr)
            saved = (w.copy(), b.copy(), v.copy(), c)
            c, new, taken = _gd_kernel(w, b, v, c, x, y, step_size, chunk, loss_tol)
            new = float(new) if np.isfinite(new) and np.all(np.isfinite(w)) else np.inf
            if lr == "auto" and not (new <= 2 * current + 1e-300):
                w, b, v, c = saved  # the chunk blew up: undo it and halve the step
                factor *= 0.5
                if factor < 1e-8:
                    raise FloatingPointError("simulate_flow: gradient descent diverges even with tiny steps")
                continue
            if not np.isfinite(new):
                raise FloatingPointError(f"simulate_flow: gradient descent diverged at step {step + taken} "
                                         f"(lr = {step_size:.3g}); use a smaller lr or lr='auto'")
            step += taken
            t += taken * step_size
            current = new
            if lr == "auto":  # the loss may rise a little (GD is not monotone off the flow): slow down then
                factor = min(1.0, factor * 1.25) if new <= current * (1 + 1e-12) else 0.5 * factor
            if taken < chunk or new <= loss_tol:
                converged = True
                break
        save(step, t, current)
    logger.info("gd: %d steps, loss %.3g -> %.3g", step, loss0, current)
    return {"times": np.array(rec["times"]), "steps": np.array(rec["steps"]), "loss": np.array(rec["loss"]),
            "w": np.array(rec["w"]), "b": np.array(rec["b"]), "v": np.array(rec["v"]), "c": np.array(rec["c"]),
            "function": np.array(rec["function"]), "converged": bool(converged)}


def _run_ode(p, x, y, t_max, n_records, record, grid, loss_tol, ode_method, rtol, atol):
    h = p.width
    work = (np.empty(h), np.empty(h), np.empty(h), np.empty(h, np.int64), np.empty(x.size + 1),
            np.empty(x.size + 1), np.empty(x.size + 1), np.empty(x.size + 1))
    counter = [0]

    def rhs(_t, theta):
        counter[0] += 1
        gw, gb, gv = work[:3]
        gc, _ = _gradient_kernel(theta[:h], theta[h:2 * h], theta[2 * h:3 * h], theta[-1], x, y, gw, gb, gv,
                                 *work[3:])
        return -np.concatenate([gw, gb, gv, [gc]])

    def loss_event(_t, theta):
        r = ShallowParams.from_vector(theta)(x) - y
        return 0.5 * r @ r - loss_tol

    loss_event.terminal = True
    times = _schedule(t_max, n_records, record, integer=False)
    times = np.concatenate([[0.0], times[times > 0]])
    sol = solve_ivp(rhs, (0.0, t_max), p.vector(), method=ode_method, t_eval=times, rtol=rtol, atol=atol,
                    events=loss_event if loss_tol > 0 else None)
    if sol.status == -1:
        raise FloatingPointError(f"simulate_flow: solve_ivp failed: {sol.message}")
    thetas = sol.y.T
    converged = sol.status == 1
    if converged and (sol.t.size == 0 or sol.t[-1] < sol.t_events[0][0]):
        thetas = np.concatenate([thetas, sol.y_events[0][:1]])
        t_all = np.concatenate([sol.t, sol.t_events[0][:1]])
    else:
        t_all = sol.t
    params = [ShallowParams.from_vector(theta) for theta in thetas]
    losses = np.array([0.5 * np.sum((q(x) - y) ** 2) for q in params])
    logger.info("ode %s: %d rhs evaluations, loss %.3g -> %.3g", ode_method, counter[0], losses[0], losses[-1])
    return {"times": t_all, "steps": np.round(np.linspace(0, counter[0], t_all.size)).astype(np.int64),
            "loss": losses, "w": thetas[:, :h], "b": thetas[:, h:2 * h], "v": thetas[:, 2 * h:3 * h],
            "c": thetas[:, -1], "function": np.array([_function_on(grid, q.w, q.b, q.v, q.c) for q in params]),
            "converged": bool(converged or losses[-1] <= loss_tol)}
