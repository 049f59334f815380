"""Comparing a trained classifier with the theory built from its data.

The theory needs a discrete X. Real inputs are discretised by k-means clustering (scikit-learn,
``n_init=3``, seeded) of the flattened training inputs: X = the cluster of an input, and the joint
P_XY is the table of (cluster, label) frequencies over the training set. A layer's "feature" of
cluster x is the mean of its features over the cluster's samples; the within-cluster spread, which the
theory ignores, is reported as ``within_cluster_fraction`` (within-cluster variance / total variance of
the features). The last layer (logits = W f + b, f the penultimate features) is compared with the DTM
of P_XY by :func:`compare_softmax_layer`; a hidden layer through its H-score and the principal angles
between its cluster-mean features and the DTM's top singular subspace.

Clusters of real data are nearly pure (P_{Y|X=x} far from P_Y): the chi-square radius is reported next
to every number, and the local theory is not expected to hold there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from netatlas._deprecate import renamed
from netatlas._errors import NetatlasError
from netatlas.lowrank._compare import compare_softmax_layer, principal_angles
from netatlas.lowrank._dtm import check_joint, dtm_svd, h_score, h_score_population
from netatlas.lowrank._generate import chi2_radius

__all__ = ["AnalysisResult", "DiscreteData", "analyze_snapshots", "discretize", "layer_agreement"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiscreteData:
    """Inputs discretised by k-means.

    Attributes
    ----------
    p_xy : ndarray of shape (n_clusters, n_classes)
        (cluster, label) frequencies; clusters and classes without samples are dropped.
    cluster : ndarray of shape (n_samples,)
        The cluster index of every sample (into the rows of ``p_xy``).
    labels : ndarray of shape (n_samples,)
        Labels re-indexed to the columns of ``p_xy``.
    classes : ndarray of shape (n_classes,)
        The original label of each column.
    centers : ndarray of shape (n_clusters, n_inputs)
    seed : int
    """

    p_xy: np.ndarray
    cluster: np.ndarray
    labels: np.ndarray
    classes: np.ndarray
    centers: np.ndarray
    seed: int

    @property
    def n_clusters(self) -> int:
        return self.p_xy.shape[0]

    def cluster_means(self, values) -> np.ndarray:
        """Mean of per-sample ``values`` (n_samples, d) over each cluster: (n_clusters, d)."""
        v = np.asarray(values, dtype=np.float64).reshape(len(self.cluster), -1)
        sums = np.zeros((self.n_clusters, v.shape[1]))
        np.add.at(sums, self.cluster, v)
        return sums / np.bincount(self.cluster, minlength=self.n_clusters)[:, None]

    def within_cluster_fraction(self, values) -> float:
        """Within-cluster variance of ``values`` over their total variance (0: constant per cluster)."""
        v = np.asarray(values, dtype=np.float64).reshape(len(self.cluster), -1)
        total = float(np.sum((v - v.mean(0)) ** 2))
        within = float(np.sum((v - self.cluster_means(v)[self.cluster]) ** 2))
        return within / total if total > 0 else 0.0

    def to_dict(self) -> dict:
        radius = chi2_radius(self.p_xy)
        return {
            "n_clusters": self.n_clusters,
            "n_classes": self.p_xy.shape[1],
            "n_samples": len(self.cluster),
            "max_chi2_radius": float(radius.max()),
            "rms_chi2_radius": float(np.sqrt(self.p_xy.sum(1) @ radius**2)),
            "singular_values": dtm_svd(self.p_xy).s.tolist(),
            "seed": self.seed,
        }


def discretize(x, y, n_clusters: int = 50, *, seed: int = 0) -> DiscreteData:
    """Discretise inputs by k-means and tabulate the (cluster, label) joint distribution.

    Parameters
    ----------
    x : array or Tensor of shape (n_samples, *input_shape)
    y : array or Tensor of shape (n_samples,) of int
    n_clusters : int
        2 <= n_clusters <= n_samples.
    seed : int

    Returns
    -------
    DiscreteData

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(size=(50, 2)), rng.normal(size=(50, 2)) + 5])
    >>> y = np.repeat([0, 1], 50)
    >>> d = discretize(x, y, 4, seed=0)
    >>> d.p_xy.shape, round(float(d.p_xy.sum()), 12)
    ((4, 2), 1.0)
    """
    from sklearn.cluster import KMeans

    x = _numpy(x).reshape(len(x), -1)
    y = _numpy(y).astype(np.int64).ravel()
    if len(x) != len(y):
        raise ValueError(f"discretize: x has {len(x)} samples but y has {len(y)}")
    if not 2 <= int(n_clusters) <= len(x):
        raise ValueError(
            f"discretize: n_clusters = {n_clusters}; accepted 2 <= n_clusters <= n_samples ({len(x)})"
        )
    km = KMeans(n_clusters=int(n_clusters), n_init=3, random_state=int(seed)).fit(x)
    used, cluster = np.unique(km.labels_, return_inverse=True)
    classes, labels = np.unique(y, return_inverse=True)
    counts = np.zeros((used.size, classes.size))
    np.add.at(counts, (cluster, labels), 1.0)
    return DiscreteData(counts / counts.sum(), cluster, labels, classes, km.cluster_centers_[used], int(seed))


def _numpy(a):
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def layer_agreement(p_xy, features, *, rank: int | None = None) -> dict:
    """How well a (hidden) layer's cluster-level features carry the DTM's top singular subspace.

    Parameters
    ----------
    p_xy : array of shape (n_clusters, n_classes)
    features : array of shape (n_clusters, width)
        The layer's mean features per cluster.
    rank : int, optional
        r, default min(width, min(p_xy.shape) - 1).

    Returns
    -------
    dict
        ``h_score`` (one-sided), ``h_score_max`` (1/2 sum_{i<=r} sigma_i^2), ``h_score_ratio``,
        ``subspace_angles`` (degrees, between span of the weighted centred features and the top-r left
        singular vectors of the DTM: 0 when the features contain that subspace), ``max_angle``, ``rank``.

    Examples
    --------
    >>> p = np.array([[0.3, 0.05], [0.05, 0.3], [0.15, 0.15]])
    >>> agreement = layer_agreement(p, np.array([[1.0], [-1.0], [0.0]]))
    >>> round(agreement["h_score_ratio"], 6)
    1.0
    """
    p = check_joint(p_xy, caller="layer_agreement")
    f = np.asarray(features, dtype=np.float64)
    svd = dtm_svd(p)
    r = min(f.shape[1], min(p.shape) - 1) if rank is None else int(rank)
    p_x = p.sum(1)
    phi = np.sqrt(p_x)[:, None] * (f - p_x @ f)
    h = h_score_population(p, f)
    h_max = 0.5 * float(np.sum(svd.s[:r] ** 2))
    angles = principal_angles(phi, svd.u[:, :r])
    return {
        "h_score": h,
        "h_score_max": h_max,
        "h_score_ratio": h / h_max if h_max > 0 else float("nan"),
        "subspace_angles": angles.tolist(),
        "max_angle": float(np.max(angles)),
        "rank": r,
    }


@dataclass(frozen=True)
class AnalysisResult:
    """Agreement of a classifier with the theory over training snapshots.

    Attributes
    ----------
    data : DiscreteData
    snapshots : list of dict
        One per snapshot: ``step``, ``last`` (a LayerComparison as dict: the last layer against the
        DTM), ``sample_h_score`` (the penultimate features' H-score from the samples themselves),
        ``within_cluster_fraction``, ``accuracy`` (training), ``hidden`` (layer_agreement of the chosen
        hidden layer, with its ``preactivation_spread``) or None.
    layer : str or None
        The hidden layer analysed (node name).
    chi2_radius : float
        The data's max chi-square radius (the local theory needs it small).
    """

    data: DiscreteData
    snapshots: list = field(repr=False)
    layer: str | None
    chi2_radius: float

    def to_dict(self) -> dict:
        return {
            "data": self.data.to_dict(),
            "layer": self.layer,
            "chi2_radius": self.chi2_radius,
            "snapshots": self.snapshots,
        }


def _last_linear(net):
    from netatlas.nets import Linear

    node = net.nodes[-1]
    if not isinstance(node.op, Linear):
        raise NetatlasError(
            f"lowrank analyze: the model's last node is {node.op.describe()} (from {node.name!r}); "
            "the analysis needs a classifier ending in a Linear layer (logits)"
        )
    return node


def _find_node(net, layer):
    try:
        return net.layer(layer)  # the one resolver: module path ("0 (Linear)" from export too), index, '#index'
    except ValueError as exc:
        raise ValueError(f"lowrank analyze: {exc}") from None


def analyze_net(net, data: DiscreteData, x, y=None, *, layer: str | None = None, step: int = 0) -> dict:
    """Compare one network (a :class:`netatlas.nets.Net` or torch module) with the theory of ``data``.

    Returns the snapshot dict described in :class:`AnalysisResult`.
    """
    from netatlas.nets import as_net

    net = as_net(net)
    last = _last_linear(net)
    x_t = torch.as_tensor(_numpy(x)).to(torch.float64).reshape(len(x), -1)
    with torch.no_grad():
        values = net.forward_all(x_t)
    feats = values[last.inputs[0]].numpy()
    logits = values[-1].numpy()
    w = last.op.weight.detach().numpy().astype(np.float64)
    b = last.op.bias.detach().numpy().astype(np.float64)
    # keep only the classes present in the data (columns of p_xy)
    w, b = w[data.classes], b[data.classes]
    comparison = compare_softmax_layer(data.p_xy, data.cluster_means(feats), w, b)
    snap = {
        "step": int(step),
        "last": comparison.to_dict(),
        # with n_clusters - 1 <= width the centred cluster features span everything: angles and
        # H-scores are then trivially perfect; only the product error says something
        "degenerate": bool(data.n_clusters - 1 <= feats.shape[1]),
        "sample_h_score": h_score(feats, data.labels),
        "within_cluster_fraction": data.within_cluster_fraction(feats),
        "accuracy": float(
            np.mean(np.argmax(logits, 1) == (data.classes[data.labels] if y is None else _numpy(y)))
        ),
        "hidden": None,
    }
    if layer is not None:
        index = _find_node(net, layer)
        hidden = values[index].numpy()
        agreement = layer_agreement(data.p_xy, data.cluster_means(hidden))
        node = net.nodes[index]
        pre = values[node.inputs[0]].numpy() if node.op.kind == "activation" else hidden
        agreement["preactivation_spread"] = float(np.max(np.abs(pre - pre.mean(0))))
        agreement["preactivation_std"] = float(np.mean(pre.std(0)))
        agreement["within_cluster_fraction"] = data.within_cluster_fraction(hidden)
        agreement["layer"] = node.name
        snap["hidden"] = agreement
    return snap


@renamed(module="net")
def analyze_snapshots(
    net,
    snapshots,
    x,
    y,
    *,
    n_clusters: int = 50,
    layer: str | None = None,
    seed: int = 0,
    data: DiscreteData | None = None,
) -> AnalysisResult:
    """Analyse a torch classifier at several parameter snapshots (e.g. ``History.snapshots``).

    Parameters
    ----------
    net : torch.nn.Module
        The architecture; it is not modified (each snapshot is loaded into a copy).
    snapshots : sequence of (step, state_dict)
        Use ``[(0, module.state_dict())]`` for the module as it is.
    x, y : arrays or Tensors
        The data the theory is built from (usually the training set).
    n_clusters : int
        k-means clusters discretising x (see the module notes).
    layer : str, optional
        A hidden layer (node name in ``netatlas.nets.from_torch(module).summary()``) to analyse too.
    seed : int
    data : DiscreteData, optional
        A precomputed discretisation of (x, y).

    Returns
    -------
    AnalysisResult
    """
    import copy

    from netatlas.nets import from_torch

    data = data or discretize(x, y, n_clusters, seed=seed)
    work = copy.deepcopy(net)
    out = []
    for step, state in snapshots:
        work.load_state_dict(state)
        out.append(analyze_net(from_torch(work.eval()), data, x, y, layer=layer, step=step))
        logger.info("snapshot %s: product error %.3g", step, out[-1]["last"]["product_error"])
    return AnalysisResult(data, out, layer, float(np.max(chi2_radius(data.p_xy))))
