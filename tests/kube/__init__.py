"""Tests of the Kubernetes routers against a real kube-apiserver (marker: kube)."""
