"""costkit: what an Alibaba Cloud IMM image-splicing workload costs, and whether the bill is right.

The flow is sources (IMM, OSS, bills) -> store -> usage -> pricing -> reports and exports.
The CLI (`costkit.cli`) is a thin layer over the functions re-exported here.
"""
__version__ = "0.1.0"
