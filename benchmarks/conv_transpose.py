"""Exact regions through a transposed convolution: the sparse lowering (a zero-spreading GatherLinear
selection and a Conv) against the same net with the layer as one dense Linear (torch's layer applied to
the unit inputs). Both must give the same region count; the times show what the sparse form costs::

    python benchmarks/conv_transpose.py                 # (4, 8, 8) -> ConvTranspose2d(4, 8, 4, stride 2)
    python benchmarks/conv_transpose.py --scale 1.0 --side 8
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from netatlas import Plane
from netatlas.nets import Linear, Net, Node, from_torch
from netatlas.regions import partition


def dense_twin(module, net, shape):
    """``net`` with the nodes before its first activation replaced by torch's first layer as a dense Linear."""
    first = next(i for i, node in enumerate(net.nodes) if node.op.kind == "activation")
    n_in = int(torch.tensor(shape).prod())
    with torch.no_grad():
        bias = module[0](torch.zeros(1, *shape, dtype=torch.float64)).reshape(-1)
        weight = (module[0](torch.eye(n_in, dtype=torch.float64).reshape(n_in, *shape)).reshape(n_in, -1) - bias).T
    nodes = [net.nodes[0], Node(Linear(weight.contiguous(), bias), (0,), (weight.shape[0],), "dense")]
    nodes += [Node(n.op, tuple(j - (first - 2) for j in n.inputs), n.shape, n.name) for n in net.nodes[first:]]
    return Net(nodes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=8, help="input height and width")
    parser.add_argument("--scale", type=float, default=0.3, help="scale of the three inputs the plane goes through")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    shape = (4, args.side, args.side)
    torch.manual_seed(0)
    module = nn.Sequential(nn.ConvTranspose2d(4, 8, 4, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, stride=2),
                           nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))
    module(torch.zeros(1, *shape))
    module = module.double().eval()
    net = from_torch(module, shape)
    twin = dense_twin(module, net, shape)
    g = torch.Generator().manual_seed(0)
    plane = Plane.through(*[args.scale * torch.randn(*shape, generator=g).numpy() for _ in range(3)])
    for _ in range(args.repeats):
        for name, candidate in (("sparse (GatherLinear + Conv)", net), ("dense Linear", twin)):
            start = time.perf_counter()
            part = partition(candidate, plane)
            print(f"{name:30s} {part.num_regions:>9,} regions  {part.method:6s} {time.perf_counter() - start:7.2f} s")


if __name__ == "__main__":
    main()
