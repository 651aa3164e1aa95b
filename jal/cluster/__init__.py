"""Clustering and pool-wide picks: one implementation per algorithm, for one device or a mesh.

Every pool-wide function takes ``mesh=None`` (one device; callable inside ``jit`` unless said
otherwise) or a ``jal.parallel`` mesh (the rows padded to a multiple of the device count and
split along ``data``; the ``[n]`` vectors never leave their shard, see :mod:`jal.cluster.topk`).

* :mod:`~jal.cluster.distances`: pairwise / nearest-centroid / ``dist_to(j)`` distances.
* :mod:`~jal.cluster.kmeans`: k-means++ (plain and factored BADGE), Lloyd k-means.
* :mod:`~jal.cluster.kcenter`: greedy k-center (CoreSet).
* :mod:`~jal.cluster.topk`: top-k of the unlabeled rows, uniform scores, :func:`gather_rows`.
* :mod:`~jal.cluster.grouped`: k-means inside every group of a partition (BRAL-T actions).
"""

from jal.cluster.distances import (
  DistFn,
  euclidean_sq_dist,
  factored_sq_dist,
  nearest_centroid,
  pairwise_sq_dists,
)
from jal.cluster.grouped import GroupedKMeans, grouped_kmeans
from jal.cluster.kcenter import kcenter_greedy
from jal.cluster.kmeans import (
  KMeansResult,
  d2_logits,
  kmeans,
  kmeans_plusplus,
  kmeans_plusplus_factored,
  lloyd_loop,
  nearest_to_centroids,
)
from jal.cluster.topk import gather_rows, top_k_unlabeled, uniform_scores

__all__ = [
  "DistFn",
  "GroupedKMeans",
  "KMeansResult",
  "d2_logits",
  "euclidean_sq_dist",
  "factored_sq_dist",
  "gather_rows",
  "grouped_kmeans",
  "kcenter_greedy",
  "kmeans",
  "kmeans_plusplus",
  "kmeans_plusplus_factored",
  "lloyd_loop",
  "nearest_centroid",
  "nearest_to_centroids",
  "pairwise_sq_dists",
  "top_k_unlabeled",
  "uniform_scores",
]
