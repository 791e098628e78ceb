"""Developer tooling: the local control plane (etcd, kube-apiserver, kwok, ...) and Postgres.

Used by the pytest fixtures and by `jangar dev ...` on the command line, so both run the same stack.
"""
