"""HPC knowledge shared by the edge runtime and the plugins.

`batch` detects the batch system an edge runs under (SLURM, PBS Pro, none) and describes its
allocation; `launch` starts child edges as batch jobs and keeps reverse SSH tunnels for them.
This package sits below both `workers/` (the edge runtime) and `plugins/`: it imports neither.
"""
